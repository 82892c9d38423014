package dnsserver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

const (
	l4lb = "l4lb.thisdcos.directory."
	dclb = "dclb.thisdcos.directory."
)

// answerCase is one question and the expected reply, in zone text.
type answerCase struct {
	name              string
	qname             string
	qtype             uint16
	qclass            uint16 // 0 = IN
	rcode             int
	aa                bool
	answer, ns, extra []string
}

// answerCases are shared by the in-process, UDP and TCP tests; every reply
// fits in 512 octets.
func answerCases() []answerCase {
	return []answerCase{
		{
			name: "A", qname: "foo.marathon." + l4lb, qtype: dns.TypeA, aa: true,
			answer: []string{"foo.marathon.l4lb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "AAAA of an IPv4-only name is NODATA", qname: "foo.marathon." + l4lb, qtype: dns.TypeAAAA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "AAAA", qname: "qux.marathon." + l4lb, qtype: dns.TypeAAAA, aa: true,
			answer: []string{"qux.marathon.l4lb.thisdcos.directory. 5 IN AAAA {qux.marathon/6}"},
		},
		{
			name: "A of an IPv6-only name is NODATA", qname: "qux.marathon." + l4lb, qtype: dns.TypeA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "ANY gives A and AAAA", qname: "dual.marathon." + l4lb, qtype: dns.TypeANY, aa: true,
			answer: []string{
				"dual.marathon.l4lb.thisdcos.directory. 5 IN A {dual.marathon/4}",
				"dual.marathon.l4lb.thisdcos.directory. 5 IN AAAA {dual.marathon/6}",
			},
		},
		{
			name: "MX of a name is NODATA", qname: "dual.marathon." + l4lb, qtype: dns.TypeMX, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "SRV tcp", qname: "_foo._tcp.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			answer: []string{
				"_foo._tcp.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 53 foo.marathon.l4lb.thisdcos.directory.",
				"_foo._tcp.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 80 foo.marathon.l4lb.thisdcos.directory.",
			},
			extra: []string{"foo.marathon.l4lb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "SRV udp", qname: "_foo._udp.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			answer: []string{"_foo._udp.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 53 foo.marathon.l4lb.thisdcos.directory."},
			extra:  []string{"foo.marathon.l4lb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "SRV with both address families", qname: "_dual._tcp.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			answer: []string{"_dual._tcp.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 443 dual.marathon.l4lb.thisdcos.directory."},
			extra: []string{
				"dual.marathon.l4lb.thisdcos.directory. 5 IN A {dual.marathon/4}",
				"dual.marathon.l4lb.thisdcos.directory. 5 IN AAAA {dual.marathon/6}",
			},
		},
		{
			name: "SRV of a protocol without ports is NXDOMAIN", qname: "_qux._udp.marathon." + l4lb, qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "A at an SRV name is NODATA", qname: "_foo._tcp.marathon." + l4lb, qtype: dns.TypeA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "SRV at an address name is NODATA", qname: "foo.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "dotted VIP name A", qname: "a.b.marathon." + l4lb, qtype: dns.TypeA, aa: true,
			answer: []string{"a.b.marathon.l4lb.thisdcos.directory. 5 IN A {a.b.marathon/4}"},
		},
		{
			name: "dotted VIP name SRV with the dot in the service", qname: "_a.b._tcp.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			answer: []string{"_a.b._tcp.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 8000 a.b.marathon.l4lb.thisdcos.directory."},
			extra:  []string{"a.b.marathon.l4lb.thisdcos.directory. 5 IN A {a.b.marathon/4}"},
		},
		{
			name: "dotted VIP name SRV with the dot in the framework", qname: "_a._tcp.b.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			answer: []string{"_a._tcp.b.marathon.l4lb.thisdcos.directory. 5 IN SRV 0 1 8000 a.b.marathon.l4lb.thisdcos.directory."},
			extra:  []string{"a.b.marathon.l4lb.thisdcos.directory. 5 IN A {a.b.marathon/4}"},
		},
		{
			name: "other framework", qname: "svc.hello-world." + l4lb, qtype: dns.TypeA, aa: true,
			answer: []string{"svc.hello-world.l4lb.thisdcos.directory. 5 IN A {svc.hello-world/4}"},
		},
		{
			name: "unknown name is NXDOMAIN", qname: "nope.marathon." + l4lb, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "name below a name is NXDOMAIN", qname: "x.foo.marathon." + l4lb, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "unknown framework is NXDOMAIN", qname: "nope." + l4lb, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "ns name has no address", qname: "ns." + l4lb, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "framework is an empty non-terminal", qname: "marathon." + l4lb, qtype: dns.TypeA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "protocol label is an empty non-terminal", qname: "_tcp.marathon." + l4lb, qtype: dns.TypeSRV, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "inner label of a dotted name is an empty non-terminal", qname: "b.marathon." + l4lb, qtype: dns.TypeA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "udp label without udp ports is NXDOMAIN", qname: "_udp.hello-world." + l4lb, qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "apex SOA", qname: l4lb, qtype: dns.TypeSOA, aa: true,
			answer: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "apex NS", qname: l4lb, qtype: dns.TypeNS, aa: true,
			answer: []string{"l4lb.thisdcos.directory. 5 IN NS ns.l4lb.thisdcos.directory."},
		},
		{
			name: "apex ANY", qname: l4lb, qtype: dns.TypeANY, aa: true,
			answer: []string{soaLine(l4lb, l4lb), "l4lb.thisdcos.directory. 5 IN NS ns.l4lb.thisdcos.directory."},
		},
		{
			name: "apex A is NODATA", qname: l4lb, qtype: dns.TypeA, aa: true,
			ns: []string{soaLine(l4lb, l4lb)},
		},
		{
			name: "dclb alias A", qname: "foo.marathon." + dclb, qtype: dns.TypeA, aa: true,
			answer: []string{"foo.marathon.dclb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "dclb alias SRV targets the alias", qname: "_foo._udp.marathon." + dclb, qtype: dns.TypeSRV, aa: true,
			answer: []string{"_foo._udp.marathon.dclb.thisdcos.directory. 5 IN SRV 0 1 53 foo.marathon.dclb.thisdcos.directory."},
			extra:  []string{"foo.marathon.dclb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "dclb alias NXDOMAIN has the alias SOA", qname: "nope.marathon." + dclb, qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{soaLine(dclb, dclb)},
		},
		{
			name: "dclb apex SOA", qname: dclb, qtype: dns.TypeSOA, aa: true,
			answer: []string{soaLine(dclb, dclb)},
		},
		{
			name: "mixed case keeps the client's spelling", qname: "FoO.MaRaThOn.L4lB.ThisDCOS.Directory.", qtype: dns.TypeA, aa: true,
			answer: []string{"FoO.MaRaThOn.L4lB.ThisDCOS.Directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "mixed case SRV keeps the client's spelling", qname: "_FOO._TCP.marathon.L4LB.thisdcos.directory.", qtype: dns.TypeSRV, aa: true,
			answer: []string{
				"_FOO._TCP.marathon.L4LB.thisdcos.directory. 5 IN SRV 0 1 53 foo.marathon.l4lb.thisdcos.directory.",
				"_FOO._TCP.marathon.L4LB.thisdcos.directory. 5 IN SRV 0 1 80 foo.marathon.l4lb.thisdcos.directory.",
			},
			extra: []string{"foo.marathon.l4lb.thisdcos.directory. 5 IN A {foo.marathon/4}"},
		},
		{
			name: "mixed case NXDOMAIN SOA owner keeps the client's spelling", qname: "nope.Marathon.L4LB.ThisDCOS.Directory.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true,
			ns: []string{"L4LB.ThisDCOS.Directory. 5 IN SOA ns.l4lb.thisdcos.directory. hostmaster.l4lb.thisdcos.directory. 7 60 180 86400 5"},
		},
		{name: "outside the zones is REFUSED", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "parent of the zones is REFUSED", qname: "thisdcos.directory.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
		{name: "root is REFUSED", qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
		{name: "suffix without a label boundary is REFUSED", qname: "xl4lb.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "escaped dot is not a label boundary", qname: `foo\.l4lb.thisdcos.directory.`, qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "other thisdcos zones are REFUSED", qname: "foo.marathon.other.thisdcos.directory.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "class CH is REFUSED", qname: "foo.marathon." + l4lb, qtype: dns.TypeA, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused},
		{name: "AXFR is REFUSED", qname: l4lb, qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	}
}

func (tt answerCase) query() *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion(tt.qname, tt.qtype)
	if tt.qclass != 0 {
		req.Question[0].Qclass = tt.qclass
	}
	return req
}

// check compares a reply with the case; the question must come back as
// asked.
func (tt answerCase) check(t *testing.T, tbl *discovery.Table, req, m *dns.Msg) {
	t.Helper()
	if m.Id != req.Id || !m.Response {
		t.Errorf("id %d response %v, want id %d response true", m.Id, m.Response, req.Id)
	}
	if m.Rcode != tt.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
	}
	if m.Authoritative != tt.aa {
		t.Errorf("AA %v, want %v", m.Authoritative, tt.aa)
	}
	if m.RecursionAvailable {
		t.Errorf("RA set; the server never recurses")
	}
	if !m.RecursionDesired {
		t.Errorf("RD not copied from the query")
	}
	if m.Truncated {
		t.Errorf("TC set")
	}
	if len(m.Question) != 1 || m.Question[0] != req.Question[0] {
		t.Errorf("question %v, want %v", m.Question, req.Question)
	}
	checkSection(t, tbl, "answer", m.Answer, tt.answer)
	checkSection(t, tbl, "authority", m.Ns, tt.ns)
	checkSection(t, tbl, "additional", m.Extra, tt.extra)
}

func TestAnswer(t *testing.T) {
	tbl := testTable(t)
	s := newTestServer(t, tbl)
	for _, tt := range answerCases() {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.query()
			m := s.Answer(req)
			tt.check(t, tbl, req, m)
			if _, err := m.Pack(); err != nil {
				t.Errorf("Pack: %v", err)
			}
		})
	}
}

func TestAnswerRequestErrors(t *testing.T) {
	s := newTestServer(t, testTable(t))
	query := func(edit func(*dns.Msg)) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
		edit(req)
		return req
	}
	tests := []struct {
		name     string
		req      *dns.Msg
		rcode    int
		question bool
	}{
		{"notify is NOTIMP", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, true},
		{"update is NOTIMP", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented, true},
		{"status is NOTIMP", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus }), dns.RcodeNotImplemented, true},
		{"no question is FORMERR", query(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError, false},
		{"two questions are FORMERR", query(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError, false},
		{"a response is FORMERR", query(func(m *dns.Msg) { m.Response = true }), dns.RcodeFormatError, true},
		{"two OPT records are FORMERR", query(func(m *dns.Msg) { m.SetEdns0(1232, false).SetEdns0(1232, false) }), dns.RcodeFormatError, true},
		{"EDNS version 1 is BADVERS", query(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := s.Answer(tt.req)
			if m.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if m.Id != tt.req.Id || m.Authoritative || len(m.Answer) != 0 || len(m.Ns) != 0 {
				t.Errorf("reply %v: want id %d, no AA, no records", m, tt.req.Id)
			}
			if got := len(m.Question) == 1; got != tt.question {
				t.Errorf("question echoed %v, want %v", got, tt.question)
			}
			if (tt.req.IsEdns0() != nil) != (m.IsEdns0() != nil) {
				t.Errorf("reply OPT %v, query OPT %v: want OPT exactly when the query had one", m.IsEdns0(), tt.req.IsEdns0())
			}
			b, err := m.Pack()
			if err != nil {
				t.Fatalf("Pack: %v", err)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil || back.Rcode != tt.rcode {
				t.Errorf("packed rcode %s (%v), want %s", dns.RcodeToString[back.Rcode], err, dns.RcodeToString[tt.rcode])
			}
		})
	}
}

func TestAnswerEDNS(t *testing.T) {
	s := newTestServer(t, testTable(t))
	tests := []struct {
		name string
		size uint16
		do   bool
	}{
		{"small size", 512, false},
		{"large size with DO", 4096, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
			req.SetEdns0(tt.size, tt.do)
			m := s.Answer(req)
			opt := m.IsEdns0()
			if opt == nil {
				t.Fatalf("no OPT in the reply to an EDNS0 query")
			}
			if opt.UDPSize() != ednsSize || opt.Do() != tt.do || opt.Version() != 0 {
				t.Errorf("OPT size %d do %v version %d, want %d %v 0", opt.UDPSize(), opt.Do(), opt.Version(), ednsSize, tt.do)
			}
			if last := m.Extra[len(m.Extra)-1]; last != dns.RR(opt) {
				t.Errorf("OPT is not the last additional record")
			}
			if len(m.Answer) != 1 {
				t.Errorf("answer %v, want one A", m.Answer)
			}
		})
	}
}

// TestAnswerDoesNotShareRecords checks that two answers share no record:
// callers (Truncate, Pack with an extended rcode) may modify them.
func TestAnswerDoesNotShareRecords(t *testing.T) {
	s := newTestServer(t, testTable(t))
	req := new(dns.Msg)
	req.SetQuestion("_foo._tcp.marathon."+l4lb, dns.TypeSRV)
	a, b := s.Answer(req), s.Answer(req)
	a.Answer[0].Header().Ttl = 999
	a.Answer[0].(*dns.SRV).Port = 1
	if b.Answer[0].Header().Ttl != 5 || b.Answer[0].(*dns.SRV).Port != 53 {
		t.Errorf("changing one answer changed another: %v", b.Answer[0])
	}
	if c := s.Answer(req); c.Answer[0].(*dns.SRV).Port != 53 {
		t.Errorf("changing an answer changed the next one: %v", c.Answer[0])
	}
}

func TestAnswerFollowsTable(t *testing.T) {
	tbl := testTable(t)
	f := newTables(tbl)
	s, err := New(Config{Tables: f})
	if err != nil {
		t.Fatal(err)
	}
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	if m := s.Answer(req); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("before: %v", m)
	}
	// Warm the non-terminal index for the first table, then withdraw
	// everything: the framework must stop being a non-terminal.
	ent := new(dns.Msg)
	ent.SetQuestion("marathon."+l4lb, dns.TypeA)
	if m := s.Answer(ent); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("framework before: %s, want NOERROR", dns.RcodeToString[m.Rcode])
	}
	empty := tbl.WithAnnounced(func(*discovery.VIP) bool { return false })
	empty.Generation = testGeneration + 1
	f.p.Store(empty)
	for _, r := range []*dns.Msg{req, ent} {
		m := s.Answer(r)
		if m.Rcode != dns.RcodeNameError {
			t.Errorf("%s after withdrawal: %s, want NXDOMAIN", r.Question[0].Name, dns.RcodeToString[m.Rcode])
		}
		if len(m.Ns) != 1 || m.Ns[0].(*dns.SOA).Serial != testGeneration+1 {
			t.Errorf("authority %v, want the SOA with serial %d", m.Ns, testGeneration+1)
		}
	}
}

func TestAnswerNilTable(t *testing.T) {
	s := newTestServer(t, nil)
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	if m := s.Answer(req); m.Rcode != dns.RcodeNameError {
		t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

func TestNew(t *testing.T) {
	f := newTables(nil)
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		ttl     uint32
	}{
		{name: "defaults", cfg: Config{Tables: f}, ttl: 5},
		{name: "ttl in seconds", cfg: Config{Tables: f, TTL: 30_500_000_000}, ttl: 30},
		{name: "no tables", cfg: Config{}, wantErr: true},
		{name: "negative ttl", cfg: Config{Tables: f, TTL: -1}, wantErr: true},
		{name: "negative concurrency", cfg: Config{Tables: f, MaxConcurrent: -1}, wantErr: true},
		{name: "bad address", cfg: Config{Tables: f, Addr: "127.0.0.1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && s.ttl != tt.ttl {
				t.Errorf("ttl %d, want %d", s.ttl, tt.ttl)
			}
		})
	}
}

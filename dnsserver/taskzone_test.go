package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// taskTable is a Table whose task zones hold one Marathon app "web" with
// two tasks, its SRV records and an empty non-terminal ("marathon.slave"
// has names below it and none of its own).
func taskTable(tb testing.TB) *discovery.Table {
	tb.Helper()
	a := func(z discovery.RecordZone, name, ip string) discovery.ZoneRecord {
		addr := netip.MustParseAddr(ip)
		typ := discovery.TypeA
		if addr.Is6() {
			typ = discovery.TypeAAAA
		}
		return discovery.ZoneRecord{Zone: z, Type: typ, Name: name, Addr: addr}
	}
	srv := func(name, target string, port uint16) discovery.ZoneRecord {
		return discovery.ZoneRecord{Zone: discovery.ZoneMesos, Type: discovery.TypeSRV, Name: name, Target: target, Port: port}
	}
	m := discovery.ZoneMesos
	tasks := []*discovery.TaskRecords{
		{Framework: "marathon", Name: "web", ID: "web.1", Records: []discovery.ZoneRecord{
			a(m, "web.marathon", "10.0.1.1"), a(m, "web-aaaaa-s1.marathon", "10.0.1.1"),
			a(m, "web.marathon.slave", "10.0.1.1"), a(m, "web-aaaaa-s1.marathon.slave", "10.0.1.1"),
			a(m, "web-aaaaa-s1.marathon", "fd00::1"),
			srv("_web._tcp.marathon", "web-aaaaa-s1.marathon", 31000),
			a(discovery.ZoneDCOS, "web.marathon.autoip", "10.0.1.1"),
		}},
		{Framework: "marathon", Name: "web", ID: "web.2", Records: []discovery.ZoneRecord{
			a(m, "web.marathon", "10.0.1.2"), a(m, "web-bbbbb-s2.marathon", "10.0.1.2"),
			a(m, "web.marathon.slave", "10.0.1.2"), a(m, "web-bbbbb-s2.marathon.slave", "10.0.1.2"),
			srv("_web._tcp.marathon", "web-bbbbb-s2.marathon", 31001),
			a(discovery.ZoneDCOS, "web.marathon.autoip", "10.0.1.2"),
		}},
	}
	cluster := []discovery.ZoneRecord{a(m, "leader", "10.0.0.1"), srv("_leader._tcp", "leader", 5050)}
	t := testTable(tb).WithRecords(tasks, cluster)
	return t
}

func TestTaskZones(t *testing.T) {
	s, err := New(Config{Tables: newTables(taskTable(t)), MesosDomain: "mesos"})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		return s.Answer(req)
	}
	answers := func(m *dns.Msg) []string {
		var out []string
		for _, rr := range m.Answer {
			out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string
		soa   bool // an SOA in the authority section
	}{
		{name: "a name shared by two tasks has both addresses", qname: "web.marathon.mesos.", qtype: dns.TypeA,
			want: []string{"web.marathon.mesos. 60 IN A 10.0.1.1", "web.marathon.mesos. 60 IN A 10.0.1.2"}},
		{name: "the mesos zone has --mesos-ttl, its mirror --ttl", qname: "web.marathon.mesos.thisdcos.directory.", qtype: dns.TypeA,
			want: []string{"web.marathon.mesos.thisdcos.directory. 5 IN A 10.0.1.1", "web.marathon.mesos.thisdcos.directory. 5 IN A 10.0.1.2"}},
		{name: "thisdcos.global is thisdcos.directory", qname: "web.marathon.autoip.dcos.thisdcos.global.", qtype: dns.TypeA,
			want: []string{"web.marathon.autoip.dcos.thisdcos.global. 5 IN A 10.0.1.1", "web.marathon.autoip.dcos.thisdcos.global. 5 IN A 10.0.1.2"}},
		{name: "the client's spelling comes back", qname: "WEB.Marathon.mesos.", qtype: dns.TypeA,
			want: []string{"WEB.Marathon.mesos. 60 IN A 10.0.1.1", "WEB.Marathon.mesos. 60 IN A 10.0.1.2"}},
		{name: "SRV targets are in the zone asked", qname: "_web._tcp.marathon.mesos.thisdcos.directory.", qtype: dns.TypeSRV,
			want: []string{"_web._tcp.marathon.mesos.thisdcos.directory. 5 IN SRV 0 1 31000 web-aaaaa-s1.marathon.mesos.thisdcos.directory.",
				"_web._tcp.marathon.mesos.thisdcos.directory. 5 IN SRV 0 1 31001 web-bbbbb-s2.marathon.mesos.thisdcos.directory."}},
		{name: "AAAA of a name with only A is NODATA", qname: "web.marathon.mesos.", qtype: dns.TypeAAAA, soa: true},
		{name: "TXT of a name is NODATA", qname: "web.marathon.mesos.", qtype: dns.TypeTXT, soa: true},
		{name: "an unknown name is NXDOMAIN", qname: "nope.marathon.mesos.", qtype: dns.TypeA, rcode: dns.RcodeNameError, soa: true},
		{name: "an unknown SRV name is NOERROR in the mesos domain, as mesos-dns", qname: "_nope._tcp.marathon.mesos.", qtype: dns.TypeSRV, soa: true},
		{name: "an unknown SRV name is NXDOMAIN in the mirror", qname: "_nope._tcp.marathon.mesos.thisdcos.directory.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, soa: true},
		{name: "an empty non-terminal is NODATA", qname: "marathon.slave.mesos.", qtype: dns.TypeA, soa: true},
		{name: "cluster records", qname: "leader.mesos.", qtype: dns.TypeA, want: []string{"leader.mesos. 60 IN A 10.0.0.1"}},
		{name: "SOA at the apex is mesos-dns's", qname: "mesos.", qtype: dns.TypeSOA,
			want: []string{"mesos. 60 IN SOA ns1.mesos. root.ns1.mesos. 7 60 600 86400 60"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := ask(tt.qname, tt.qtype)
			if m.Rcode != tt.rcode || !m.Authoritative {
				t.Fatalf("rcode %s AA %v, want %s AA", dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tt.rcode])
			}
			if got := answers(m); !slices.Equal(got, tt.want) {
				t.Errorf("answers\n got %q\nwant %q", got, tt.want)
			}
			if got := len(m.Ns) == 1; got != tt.soa {
				t.Errorf("authority %v, want an SOA: %v", m.Ns, tt.soa)
			}
		})
	}

	t.Run("SRV carries the targets' addresses", func(t *testing.T) {
		m := ask("_web._tcp.marathon.mesos.", dns.TypeSRV)
		var extra []string
		for _, rr := range m.Extra {
			extra = append(extra, strings.ReplaceAll(rr.String(), "\t", " "))
		}
		slices.Sort(extra)
		want := []string{"web-aaaaa-s1.marathon.mesos. 60 IN A 10.0.1.1", "web-aaaaa-s1.marathon.mesos. 60 IN AAAA fd00::1", "web-bbbbb-s2.marathon.mesos. 60 IN A 10.0.1.2"}
		if !slices.Equal(extra, want) {
			t.Errorf("additional\n got %q\nwant %q", extra, want)
		}
	})
	t.Run("answers rotate", func(t *testing.T) {
		firsts := map[string]bool{}
		for range 4 {
			m := ask("web.marathon.mesos.", dns.TypeA)
			if len(m.Answer) != 2 {
				t.Fatalf("answers %v, want 2", m.Answer)
			}
			firsts[m.Answer[0].(*dns.A).A.String()] = true
		}
		if len(firsts) != 2 {
			t.Errorf("first answers over 4 replies: %v, want both addresses", firsts)
		}
	})
	t.Run("no mesos domain", func(t *testing.T) {
		s, err := New(Config{Tables: newTables(taskTable(t))})
		if err != nil {
			t.Fatal(err)
		}
		req := new(dns.Msg)
		req.SetQuestion("web.marathon.mesos.", dns.TypeA)
		if m := s.Answer(req); m.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
		}
	})
}

func TestGlobalVIPZone(t *testing.T) {
	tbl := testTable(t)
	s := newTestServer(t, tbl)
	for _, z := range []string{"l4lb.thisdcos.directory.", "l4lb.thisdcos.global.", "dclb.thisdcos.global."} {
		req := new(dns.Msg)
		req.SetQuestion("foo.marathon."+z, dns.TypeA)
		m := s.Answer(req)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("foo.marathon.%s: rcode %s, answers %v; want one A", z, dns.RcodeToString[m.Rcode], m.Answer)
		}
	}
}

// TestTaskZoneTruncation: a 40-task app's SRV answer (about 1,800 bytes
// with its additional section) is cut to 512 bytes with TC for a client
// without EDNS0, to the client's EDNS0 size (up to 1232) with TC for one
// with it, and comes whole over TCP: unlike mesos-dns, which cuts every UDP
// reply at 512 bytes.
func TestTaskZoneTruncation(t *testing.T) {
	var recs []discovery.ZoneRecord
	for i := range 40 {
		target := fmt.Sprintf("web-%05d-s%d.marathon", i, i%4)
		recs = append(recs,
			discovery.ZoneRecord{Zone: discovery.ZoneMesos, Type: discovery.TypeSRV, Name: "_web._tcp.marathon", Target: target, Port: uint16(31000 + i)},
			discovery.ZoneRecord{Zone: discovery.ZoneMesos, Type: discovery.TypeA, Name: target, Addr: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})})
	}
	tbl := testTable(t).WithRecords([]*discovery.TaskRecords{{Framework: "marathon", Name: "web", ID: "web", Records: recs}}, nil)
	r := start(t, Config{Tables: newTables(tbl), MesosDomain: "mesos"})
	for _, tt := range []struct {
		name    string
		network string
		edns    uint16 // 0: none
		maxLen  int
		tc      bool
	}{
		{name: "no EDNS0", network: "udp", maxLen: 512, tc: true},
		{name: "EDNS0 1232", network: "udp", edns: 1232, maxLen: 1232, tc: true},
		{name: "EDNS0 4096 is served at most 1232", network: "udp", edns: 4096, maxLen: 1232, tc: true},
		{name: "TCP", network: "tcp", maxLen: 65535},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("_web._tcp.marathon.mesos.", dns.TypeSRV)
			if tt.edns > 0 {
				req.SetEdns0(tt.edns, false)
			}
			m := r.exchange(t, tt.network, req)
			m.Compress = true // as the server packed it
			packed, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if len(packed) > tt.maxLen || m.Truncated != tt.tc {
				t.Errorf("reply of %d bytes, TC %v; want at most %d, TC %v", len(packed), m.Truncated, tt.maxLen, tt.tc)
			}
			if !tt.tc && len(m.Answer) != 40 {
				t.Errorf("%d answers over %s, want 40", len(m.Answer), tt.network)
			}
			if tt.edns == 1232 && len(m.Answer) < 20 {
				t.Errorf("%d answers in 1232 bytes, want more than 20 (512 bytes hold about 12)", len(m.Answer))
			}
		})
	}
}

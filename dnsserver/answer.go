package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// ednsSize is the EDNS0 UDP payload size this server advertises and the
// largest UDP answer it sends (DNS flag day 2020: no IP fragmentation).
const ednsSize = 1232

// SOA timers in seconds (UPSTREAM.md §2.2, dcos_dns.erl); the minimum is the
// record TTL.
const (
	soaRefresh = 60
	soaRetry   = 180
	soaExpire  = 86400
)

// zone is one served zone with its fixed SOA/NS names, all lower case and
// fully qualified.
type zone struct {
	name  string // "l4lb.thisdcos.directory."
	ns    string // "ns.<name>"
	mbox  string // "hostmaster.<name>"
	label string // ".<name>", the suffix of every name below the apex
}

func newZone(name string) zone {
	return zone{name: name, ns: "ns." + name, mbox: "hostmaster." + name, label: "." + name}
}

// zones are the served zones: l4lb and its legacy alias dclb (UPSTREAM.md
// §1.3). Both hold the same names.
var zones = [...]zone{
	newZone("l4lb.thisdcos.directory."),
	newZone("dclb.thisdcos.directory."),
}

// Answer builds the reply to req from the current table. It never modifies
// req, always returns a fresh message with req's Id, and does not truncate:
// ServeDNS fits the reply to the transport.
func (s *Server) Answer(req *dns.Msg) *dns.Msg { return s.answer(s.tables.Table(), req) }

// answer is Answer from table t, so that the fast path packs the replies
// of exactly the table it serves them for.
func (s *Server) answer(t *discovery.Table, req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.Compress = true
	if req.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = req.RecursionDesired
		m.CheckingDisabled = req.CheckingDisabled
	}
	if len(req.Question) == 1 {
		m.Question = []dns.Question{req.Question[0]}
	}
	opt, rcode := checkRequest(req)
	if rcode == dns.RcodeSuccess {
		s.answerQuestion(t, m, req.Question[0])
	} else {
		m.Rcode = rcode
	}
	if opt != nil {
		// The OPT record goes last, after any additional data.
		m.Extra = append(m.Extra, replyOPT(opt))
	}
	return m
}

// checkRequest returns the request's OPT record (nil without EDNS0) and the
// rcode for requests this server does not answer, or RcodeSuccess.
func checkRequest(req *dns.Msg) (*dns.OPT, int) {
	var opt *dns.OPT
	opts := 0
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			opts++
		}
	}
	switch {
	case req.Response:
		return opt, dns.RcodeFormatError
	case req.Opcode != dns.OpcodeQuery:
		return opt, dns.RcodeNotImplemented
	case len(req.Question) != 1:
		return opt, dns.RcodeFormatError
	case opts > 1: // RFC 6891 §6.1.1
		return opt, dns.RcodeFormatError
	case opt != nil && opt.Version() != 0: // RFC 6891 §6.1.3
		return opt, dns.RcodeBadVers
	}
	q := req.Question[0]
	switch {
	case q.Qclass != dns.ClassINET:
		return opt, dns.RcodeRefused
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		return opt, dns.RcodeRefused
	}
	return opt, dns.RcodeSuccess
}

// replyOPT is the OPT record of a reply to a query that carried req: our
// payload size, version 0, and the DO bit copied (RFC 3225 §3).
func replyOPT(req *dns.OPT) *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(ednsSize)
	if req.Do() {
		o.SetDo()
	}
	return o
}

// answerQuestion fills m for one IN-class question from t.
func (s *Server) answerQuestion(t *discovery.Table, m *dns.Msg, q dns.Question) {
	lname := asciiLower(q.Name)
	z, ok := zoneOf(lname)
	if !ok {
		z, ok = globalZoneOf(lname)
	}
	if !ok {
		if tz, ok := s.taskZoneOf(lname); ok {
			s.answerTask(t, m, q, lname, tz)
			return
		}
		m.Rcode = dns.RcodeRefused
		return
	}
	m.Authoritative = true
	// The apex as the client spelt it, so 0x20-randomised queries get their
	// own case back in every owner name.
	apex := q.Name[len(q.Name)-len(z.name):]
	rest := ""
	if len(lname) > len(z.name) {
		rest = lname[:len(lname)-len(z.label)]
	}
	answer, extra, err := s.resolve(t, q, z, apex, rest)
	switch {
	case err == nil:
		m.Answer, m.Extra = answer, extra
	case errors.Is(err, discovery.ErrNoData):
		m.Ns = []dns.RR{s.soa(t, z, apex)}
	case errors.Is(err, discovery.ErrNotFound):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa(t, z, apex)}
	default:
		m.Rcode = dns.RcodeServerFailure
	}
}

// zoneOf returns the served zone lname (lower case, fully qualified) is in.
func zoneOf(lname string) (zone, bool) {
	for _, z := range zones {
		if lname == z.name {
			return z, true
		}
		if strings.HasSuffix(lname, z.label) && !escaped(lname, len(lname)-len(z.label)) {
			return z, true
		}
	}
	return zone{}, false
}

// globalZones are the VIP zones under their ".thisdcos.global" names,
// which the full path serves as their ".thisdcos.directory" twins
// (dcos-dns's rename, UPSTREAM.md §2.3).
var globalZones = [...]zone{
	newZone("l4lb.thisdcos.global."),
	newZone("dclb.thisdcos.global."),
}

// globalZoneOf returns the global VIP zone lname is in.
func globalZoneOf(lname string) (zone, bool) {
	for _, z := range globalZones {
		if lname == z.name || strings.HasSuffix(lname, z.label) && !escaped(lname, len(lname)-len(z.label)) {
			return z, true
		}
	}
	return zone{}, false
}

// escaped reports whether the byte at i of a presentation-format name is
// escaped by an odd number of backslashes before it ("a\.l4lb…" is one
// label "a.l4lb", not a name below l4lb).
func escaped(name string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// resolve returns the records for q: rest is the lower-case owner name
// without the zone ("" at the apex). Errors are discovery.ErrNoData for a
// name that exists without records of the type, discovery.ErrNotFound for
// no such name.
func (s *Server) resolve(t *discovery.Table, q dns.Question, z zone, apex, rest string) (answer, extra []dns.RR, err error) {
	if rest == "" {
		return s.apex(t, q.Qtype, z, apex)
	}
	if rest[0] == '_' {
		if key, proto, ok := discovery.ParseSRVName(rest); ok {
			if e, err := t.Lookup(key); err == nil && hasProtocol(e, proto) {
				if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
					return nil, nil, discovery.ErrNoData
				}
				target := key + z.label
				return s.srv(q.Name, target, proto, e), s.addrs(target, e, dns.TypeANY), nil
			}
		}
	} else if e, err := t.Lookup(rest); err == nil {
		rrs := s.addrs(q.Name, e, q.Qtype)
		if len(rrs) == 0 {
			return nil, nil, discovery.ErrNoData
		}
		return rrs, nil, nil
	}
	if s.index(t).nonTerminal(rest) {
		return nil, nil, discovery.ErrNoData
	}
	return nil, nil, discovery.ErrNotFound
}

// apex answers at the zone apex: SOA, NS, or both for ANY.
func (s *Server) apex(t *discovery.Table, qtype uint16, z zone, apex string) ([]dns.RR, []dns.RR, error) {
	switch qtype {
	case dns.TypeSOA:
		return []dns.RR{s.soa(t, z, apex)}, nil, nil
	case dns.TypeNS:
		return []dns.RR{s.ns(z, apex)}, nil, nil
	case dns.TypeANY:
		return []dns.RR{s.soa(t, z, apex), s.ns(z, apex)}, nil, nil
	}
	return nil, nil, discovery.ErrNoData
}

func hasProtocol(e *discovery.NameEntry, proto discovery.Protocol) bool {
	for _, p := range e.Ports {
		if p.Protocol == proto {
			return true
		}
	}
	return false
}

// addrs returns the A and/or AAAA records of e owned by name for qtype (A,
// AAAA or ANY for both); nil for other types.
func (s *Server) addrs(name string, e *discovery.NameEntry, qtype uint16) []dns.RR {
	var rrs []dns.RR
	if (qtype == dns.TypeA || qtype == dns.TypeANY) && e.Addr4.IsValid() {
		rrs = append(rrs, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: ip(e.Addr4)})
	}
	if (qtype == dns.TypeAAAA || qtype == dns.TypeANY) && e.Addr6.IsValid() {
		rrs = append(rrs, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip(e.Addr6)})
	}
	return rrs
}

func ip(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// srv returns one SRV record per port of e with protocol proto, in the
// table's port order, all pointing at target.
func (s *Server) srv(name, target string, proto discovery.Protocol, e *discovery.NameEntry) []dns.RR {
	var rrs []dns.RR
	for _, p := range e.Ports {
		if p.Protocol != proto {
			continue
		}
		rrs = append(rrs, &dns.SRV{
			Hdr:      s.hdr(name, dns.TypeSRV),
			Priority: 0,
			Weight:   1,
			Port:     p.Port,
			Target:   target,
		})
	}
	return rrs
}

// soa is the zone's SOA, owned by apex; its serial is the table generation.
func (s *Server) soa(t *discovery.Table, z zone, apex string) dns.RR {
	var serial uint32
	if t != nil {
		serial = uint32(t.Generation)
	}
	return &dns.SOA{
		Hdr:     s.hdr(apex, dns.TypeSOA),
		Ns:      z.ns,
		Mbox:    z.mbox,
		Serial:  serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  s.ttl,
	}
}

func (s *Server) ns(z zone, apex string) dns.RR {
	return &dns.NS{Hdr: s.hdr(apex, dns.TypeNS), Ns: z.ns}
}

func (s *Server) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: s.ttl}
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay valid
// between a name and its lower-case form; it does not allocate when name
// has no upper-case letter.
func asciiLower(name string) string {
	i := 0
	for i < len(name) && (name[i] < 'A' || name[i] > 'Z') {
		i++
	}
	if i == len(name) {
		return name
	}
	b := []byte(name)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

package dnsserver

// The task zones (discovery.RecordZone): mesos-dns's zone under the mesos
// domain ("mesos." by default), its mirror "mesos.thisdcos.directory." and
// dcos-dns's "dcos.thisdcos.directory.", plus the ".thisdcos.global"
// spellings of every thisdcos zone (UPSTREAM.md §2.3). Their answers come
// from the Table's records index; the decisions where mesos-dns's
// behaviour is an accident are in doc.go.

import (
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// mesos-dns's SOA timers (UPSTREAM.md §3.5); the minimum is the zone TTL.
const (
	mesosSOARefresh = 60
	mesosSOARetry   = 600
	mesosSOAExpire  = 86400
)

// taskZone is one served name of a task zone.
type taskZone struct {
	zone
	records discovery.RecordZone
	ttl     uint32
	// mesosDNS gives mesos-dns's SOA and rcodes (an unknown SRV name is
	// NOERROR, as mesos-dns answers it).
	mesosDNS bool
}

// globalSuffix and directorySuffix: "<x>.thisdcos.global" is served as
// "<x>.thisdcos.directory" (dcos-dns's rename, UPSTREAM.md §2.3).
const (
	globalSuffix    = ".thisdcos.global."
	directorySuffix = ".thisdcos.directory."
)

// taskZones returns the task zones a server with this mesos domain ("" :
// none) and these TTLs serves, longest name first.
func taskZones(mesosDomain string, mesosTTL, ttl uint32) []taskZone {
	var zs []taskZone
	add := func(name string, rz discovery.RecordZone, ttl uint32, mesosDNS bool) {
		z := taskZone{zone: newZone(name), records: rz, ttl: ttl, mesosDNS: mesosDNS}
		if mesosDNS {
			z.ns, z.mbox = "ns1."+name, "root.ns1."+name
		}
		zs = append(zs, z)
	}
	add("mesos.thisdcos.directory.", discovery.ZoneMesos, ttl, false)
	add("mesos.thisdcos.global.", discovery.ZoneMesos, ttl, false)
	add("dcos.thisdcos.directory.", discovery.ZoneDCOS, ttl, false)
	add("dcos.thisdcos.global.", discovery.ZoneDCOS, ttl, false)
	if mesosDomain != "" {
		add(dns.Fqdn(strings.ToLower(mesosDomain)), discovery.ZoneMesos, mesosTTL, true)
	}
	return zs
}

// taskZoneOf returns the task zone lname (lower case, fully qualified) is
// in. Names are matched longest zone first, so a mesos domain that is a
// suffix of another zone never shadows it.
func (s *Server) taskZoneOf(lname string) (taskZone, bool) {
	var best taskZone
	found := false
	for _, z := range s.taskZones {
		if (lname == z.name || strings.HasSuffix(lname, z.label) && !escaped(lname, len(lname)-len(z.label))) &&
			(!found || len(z.name) > len(best.name)) {
			best, found = z, true
		}
	}
	return best, found
}

// answerTask fills m for question q in task zone z from t.
func (s *Server) answerTask(t *discovery.Table, m *dns.Msg, q dns.Question, lname string, z taskZone) {
	m.Authoritative = true
	apex := q.Name[len(q.Name)-len(z.name):]
	if lname == z.name {
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = []dns.RR{s.taskSOA(t, z, apex)}
		case dns.TypeNS:
			m.Answer = []dns.RR{s.taskNS(z, apex)}
		case dns.TypeANY:
			m.Answer = []dns.RR{s.taskSOA(t, z, apex), s.taskNS(z, apex)}
		default:
			m.Ns = []dns.RR{s.taskSOA(t, z, apex)}
		}
		return
	}
	rest := lname[:len(lname)-len(z.label)]
	recs, err := t.Records(z.records, rest)
	if err != nil {
		switch {
		case t.RecordNonTerminal(z.records, rest):
		case z.mesosDNS && q.Qtype == dns.TypeSRV:
			// mesos-dns answers an SRV question for a name it does not
			// know NOERROR (UPSTREAM.md §3.5).
		default:
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{s.taskSOA(t, z, apex)}
		return
	}
	n := s.rotation.Add(1)
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		for _, a := range rotated(recs.A, n) {
			m.Answer = append(m.Answer, &dns.A{Hdr: taskHdr(q.Name, dns.TypeA, z.ttl), A: ip(a)})
		}
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		for _, a := range rotated(recs.AAAA, n) {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: taskHdr(q.Name, dns.TypeAAAA, z.ttl), AAAA: ip(a)})
		}
	}
	if q.Qtype == dns.TypeSRV || q.Qtype == dns.TypeANY {
		m.Answer, m.Extra = s.taskSRV(t, m.Answer, q.Name, z, recs, n)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.taskSOA(t, z, apex)}
	}
}

// taskSRV appends the SRV records of recs, owned by name, to answer and
// returns the additional section: one A and one AAAA (if any) per distinct
// target, as mesos-dns gives them.
func (s *Server) taskSRV(t *discovery.Table, answer []dns.RR, name string, z taskZone, recs *discovery.Records, n uint64) ([]dns.RR, []dns.RR) {
	var extra []dns.RR
	seen := map[string]bool{}
	for _, srv := range rotated(recs.SRV, n) {
		target := srv.Target + z.label
		if srv.Target == "" {
			target = z.name
		}
		answer = append(answer, &dns.SRV{Hdr: taskHdr(name, dns.TypeSRV, z.ttl), Priority: 0, Weight: 1, Port: srv.Port, Target: target})
		if seen[srv.Target] {
			continue
		}
		seen[srv.Target] = true
		tr, err := t.Records(z.records, srv.Target)
		if err != nil {
			continue
		}
		if len(tr.A) > 0 {
			extra = append(extra, &dns.A{Hdr: taskHdr(target, dns.TypeA, z.ttl), A: ip(tr.A[0])})
		}
		if len(tr.AAAA) > 0 {
			extra = append(extra, &dns.AAAA{Hdr: taskHdr(target, dns.TypeAAAA, z.ttl), AAAA: ip(tr.AAAA[0])})
		}
	}
	return answer, extra
}

// rotated returns s rotated left by n mod len(s), in a new slice when it
// moves: answers with several records start at a different one in each
// reply, so that clients taking the first spread over all (mesos-dns
// shuffles; a rotation spreads as well and every reply stays complete).
func rotated[T any](s []T, n uint64) []T {
	if len(s) < 2 {
		return s
	}
	k := int(n % uint64(len(s)))
	if k == 0 {
		return s
	}
	out := make([]T, 0, len(s))
	return append(append(out, s[k:]...), s[:k]...)
}

// taskSOA is z's SOA owned by apex: mesos-dns's for the mesos domain
// (UPSTREAM.md §3.5), the thisdcos zones' for the others. The serial is
// the table generation.
func (s *Server) taskSOA(t *discovery.Table, z taskZone, apex string) dns.RR {
	var serial uint32
	if t != nil {
		serial = uint32(t.Generation)
	}
	soa := &dns.SOA{Hdr: taskHdr(apex, dns.TypeSOA, z.ttl), Ns: z.ns, Mbox: z.mbox, Serial: serial,
		Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: z.ttl}
	if z.mesosDNS {
		soa.Refresh, soa.Retry, soa.Expire = mesosSOARefresh, mesosSOARetry, mesosSOAExpire
	}
	return soa
}

func (s *Server) taskNS(z taskZone, apex string) dns.RR {
	return &dns.NS{Hdr: taskHdr(apex, dns.TypeNS, z.ttl), Ns: z.ns}
}

func taskHdr(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// rotationCounter is the Server's count of replies with task records,
// which rotated uses to turn multi-record answers.
type rotationCounter = atomic.Uint64

// reply.go: the reply a client gets, built from an upstream's answer (or
// none): the client's id, question and EDNS0, RA, and the client's size.
package forward

import (
	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 payload size the forwarder advertises to clients
// and upstreams, and the largest UDP reply it sends (DNS flag day 2020:
// no IP fragmentation); dnsserver uses the same.
const ednsSize = 1232

// anyTTL is the TTL of the RFC 8482 answer to ANY.
const anyTTL = 3600

// reply builds the client's reply to req from the upstream answer up (nil:
// only the header, with rcode). Records are shared with up, never
// modified.
func reply(req, up *dns.Msg, rcode int, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.RecursionDesired = req.RecursionDesired
	m.RecursionAvailable = true
	m.CheckingDisabled = req.CheckingDisabled
	m.Compress = true
	if len(req.Question) == 1 {
		m.Question = []dns.Question{req.Question[0]}
	}
	opt := req.IsEdns0()
	m.Rcode = rcode
	if up != nil {
		m.Rcode = up.Rcode
		m.Truncated = up.Truncated
		m.AuthenticatedData = up.AuthenticatedData && (req.AuthenticatedData || opt != nil && opt.Do())
		m.Answer = append([]dns.RR(nil), up.Answer...)
		m.Ns = append([]dns.RR(nil), up.Ns...)
		for _, rr := range up.Extra {
			switch rr.Header().Rrtype {
			case dns.TypeOPT, dns.TypeTSIG, dns.TypeSIG:
			default:
				m.Extra = append(m.Extra, rr)
			}
		}
	}
	if m.Rcode > 0xF { // extended rcodes belong to the upstream's OPT, not ours
		m.Rcode = dns.RcodeServerFailure
	}
	if opt != nil {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(ednsSize)
		if opt.Do() {
			o.SetDo()
		}
		m.Extra = append(m.Extra, o)
	}
	m.Truncate(clientSize(req, tcp))
	return m
}

// clientSize is the largest reply to req: 64 KiB over TCP; over UDP the
// client's EDNS0 size clamped to [512, ednsSize], 512 without EDNS0 (RFC
// 1035 §4.2.1, RFC 6891 §6.2.5).
func clientSize(req *dns.Msg, tcp bool) int {
	if tcp {
		return dns.MaxMsgSize
	}
	opt := req.IsEdns0()
	if opt == nil {
		return dns.MinMsgSize
	}
	return min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
}

// anyReply is the RFC 8482 §4.2 answer to an ANY query: one HINFO record
// whose CPU is "RFC8482".
func anyReply(req *dns.Msg, tcp bool) *dns.Msg {
	up := new(dns.Msg)
	up.Answer = []dns.RR{&dns.HINFO{
		Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: anyTTL},
		Cpu: "RFC8482",
	}}
	return reply(req, up, dns.RcodeSuccess, tcp)
}

// upstreamQuery is the query sent upstream for req: id, the client's
// question and CD bit, RD, and EDNS0 with our size and the client's DO.
func upstreamQuery(req *dns.Msg, id uint16) *dns.Msg {
	q := new(dns.Msg)
	q.Id = id
	q.RecursionDesired = true
	q.CheckingDisabled = req.CheckingDisabled
	q.Question = []dns.Question{req.Question[0]}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(ednsSize, do)
	return q
}

// wire.go: cached answers kept packed, and the client's reply made from
// those bytes by patching id, flags, question spelling, TTLs and EDNS0 in:
// a cache hit costs no packing (as dnsserver's fast path does for served
// names).
package forward

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// packedAnswer is an answer packed for the cache: id 0, no OPT, and where
// its records' TTLs are.
type packedAnswer struct {
	b      []byte
	qname  int   // length of the question name in wire form
	ttlAt  []int // offsets of the records' TTLs
	ttls   []uint32
	rcode  int
	tc, ad bool
}

// packAnswer packs m (an answer as the cache keeps it) for replies from
// bytes; ok is false when it cannot be (the msg path serves it then).
func packAnswer(m *dns.Msg) (packedAnswer, bool) {
	clean := new(dns.Msg)
	clean.Response = true
	clean.Compress = true
	clean.Rcode = m.Rcode
	clean.Question = m.Question
	clean.Answer, clean.Ns = m.Answer, m.Ns
	for _, rr := range m.Extra {
		switch rr.Header().Rrtype {
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeSIG:
		default:
			clean.Extra = append(clean.Extra, rr)
		}
	}
	if m.Rcode > 0xF || len(m.Question) != 1 {
		return packedAnswer{}, false
	}
	b, err := clean.Pack()
	if err != nil {
		return packedAnswer{}, false
	}
	p := packedAnswer{b: b, rcode: m.Rcode, tc: m.Truncated, ad: m.AuthenticatedData}
	off, ok := skipName(b, 12)
	if !ok || off+4 > len(b) {
		return packedAnswer{}, false
	}
	p.qname = off - 12
	off += 4
	n := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	for range n {
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return packedAnswer{}, false
		}
		p.ttlAt = append(p.ttlAt, off+4)
		p.ttls = append(p.ttls, binary.BigEndian.Uint32(b[off+4:]))
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	}
	if off != len(b) {
		return packedAnswer{}, false
	}
	return p, true
}

// skipName returns the offset after the name at off.
func skipName(b []byte, off int) (int, bool) {
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(b)
		case l&0xC0 != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// reply is the client's reply to req from p, aged by age seconds: nil
// when it must be built as a message (the question does not fit the
// packed one, or the reply exceeds the client's size).
func (p *packedAnswer) reply(req *dns.Msg, age uint32, tcp bool) []byte {
	opt := req.IsEdns0()
	size := len(p.b)
	if opt != nil {
		size += 11
	}
	if size > clientSize(req, tcp) {
		return nil
	}
	out := make([]byte, len(p.b), size)
	copy(out, p.b)
	// The client's question name over ours: same length, maybe other case.
	if n, err := dns.PackDomainName(req.Question[0].Name, out, 12, nil, false); err != nil || n != 12+p.qname {
		return nil
	}
	binary.BigEndian.PutUint16(out, req.Id)
	flags := uint16(1<<15 | uint16(req.Opcode&0xF)<<11 | 1<<7 | uint16(p.rcode))
	if p.tc {
		flags |= 1 << 9
	}
	if req.RecursionDesired {
		flags |= 1 << 8
	}
	if p.ad && (req.AuthenticatedData || opt != nil && opt.Do()) {
		flags |= 1 << 5
	}
	if req.CheckingDisabled {
		flags |= 1 << 4
	}
	binary.BigEndian.PutUint16(out[2:], flags)
	for i, at := range p.ttlAt {
		binary.BigEndian.PutUint32(out[at:], p.ttls[i]-min(p.ttls[i], age))
	}
	if opt != nil {
		do := byte(0)
		if opt.Do() {
			do = 0x80
		}
		out = append(out, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, 0, 0, do, 0, 0, 0)
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	return out
}

package dnsserver

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/miekg/dns"
)

// packer writes a reply in wire format with the compression the fast path
// needs: owner names in the answer and authority sections point into the
// question (so that a reply built for the lower-case name carries any
// client's spelling once the query's question bytes are copied in, exactly
// as the full path answers with q.Name), while every other name (SRV
// targets, SOA and NS data, owners in the additional section) is lower case
// and compressed only against names written outside the question.
//
// It never compresses a name miekg/dns would not compress when packing the
// full path's reply (miekg compresses against every earlier name, case
// sensitively, SRV targets never), so its replies are never shorter than
// the full path's: a reply that fits a UDP limit here fits there too.
type packer struct {
	buf   []byte
	qname string         // lower case, fully qualified
	qoff  map[string]int // suffixes of qname → offset in the question
	names map[string]int // suffixes written outside the question → offset
	flat  bool           // compress nothing, record nothing
	// serialAt is the offset of the SOA serial in buf (0: no SOA yet).
	serialAt int
}

// errUnpackable is returned for records the fast path does not encode; the
// caller leaves such answers to the full path.
var errUnpackable = errors.New("record type not packed by the fast path")

// packReply encodes m, an answer to the lower-case question qname, with
// the fast path's compression. m must have exactly that one question and
// at most one SOA; serialAt is the offset of its serial in the reply (0:
// no SOA), where the fast path writes the serving table's generation.
func packReply(m *dns.Msg, qname string) (b []byte, serialAt int, err error) {
	if len(m.Question) != 1 || m.Question[0].Name != qname {
		return nil, 0, errors.New("reply is not to the packed question")
	}
	p := &packer{buf: make([]byte, 12, 128), qname: qname, qoff: map[string]int{}, names: map[string]int{}}
	binary.BigEndian.PutUint16(p.buf[0:], m.Id)
	binary.BigEndian.PutUint16(p.buf[2:], headerBits(m))
	binary.BigEndian.PutUint16(p.buf[4:], 1)
	binary.BigEndian.PutUint16(p.buf[6:], uint16(len(m.Answer)))
	binary.BigEndian.PutUint16(p.buf[8:], uint16(len(m.Ns)))
	binary.BigEndian.PutUint16(p.buf[10:], uint16(len(m.Extra)))
	if err := p.question(m.Question[0]); err != nil {
		return nil, 0, err
	}
	for _, sec := range []struct {
		rrs      []dns.RR
		ownerInQ bool
	}{{m.Answer, true}, {m.Ns, true}, {m.Extra, false}} {
		for _, rr := range sec.rrs {
			if err := p.rr(rr, sec.ownerInQ); err != nil {
				return nil, 0, err
			}
		}
	}
	return p.buf, p.serialAt, nil
}

// headerBits are the flag bits of m's header as miekg/dns packs them.
func headerBits(m *dns.Msg) uint16 {
	bits := uint16(m.Opcode)<<11 | uint16(m.Rcode&0xF)
	for _, f := range []struct {
		set bool
		bit uint16
	}{
		{m.Response, 1 << 15}, {m.Authoritative, 1 << 10}, {m.Truncated, 1 << 9},
		{m.RecursionDesired, 1 << 8}, {m.RecursionAvailable, 1 << 7}, {m.Zero, 1 << 6},
		{m.AuthenticatedData, 1 << 5}, {m.CheckingDisabled, 1 << 4},
	} {
		if f.set {
			bits |= f.bit
		}
	}
	return bits
}

func (p *packer) question(q dns.Question) error {
	if err := p.name(q.Name, p.qoff, nil); err != nil {
		return err
	}
	p.buf = binary.BigEndian.AppendUint16(p.buf, q.Qtype)
	p.buf = binary.BigEndian.AppendUint16(p.buf, q.Qclass)
	return nil
}

// rr appends one record. ownerInQ lets the owner point into the question.
func (p *packer) rr(rr dns.RR, ownerInQ bool) error {
	h := rr.Header()
	var err error
	if ownerInQ {
		err = p.name(h.Name, p.names, p.qoff)
	} else {
		err = p.name(h.Name, p.names, p.names)
	}
	if err != nil {
		return err
	}
	return p.rdata(rr)
}

// rdata appends rr from its type on: type, class, TTL, length and data.
func (p *packer) rdata(rr dns.RR) error {
	h := rr.Header()
	var err error
	p.buf = binary.BigEndian.AppendUint16(p.buf, h.Rrtype)
	p.buf = binary.BigEndian.AppendUint16(p.buf, h.Class)
	p.buf = binary.BigEndian.AppendUint32(p.buf, h.Ttl)
	lenAt := len(p.buf)
	p.buf = append(p.buf, 0, 0)
	switch r := rr.(type) {
	case *dns.A:
		a := r.A.To4()
		if a == nil {
			return errUnpackable
		}
		p.buf = append(p.buf, a...)
	case *dns.AAAA:
		a := r.AAAA.To16()
		if a == nil {
			return errUnpackable
		}
		p.buf = append(p.buf, a...)
	case *dns.SRV:
		p.buf = binary.BigEndian.AppendUint16(p.buf, r.Priority)
		p.buf = binary.BigEndian.AppendUint16(p.buf, r.Weight)
		p.buf = binary.BigEndian.AppendUint16(p.buf, r.Port)
		err = p.name(r.Target, p.names, nil) // RFC 2782: never compressed
	case *dns.SOA:
		if err = p.name(r.Ns, p.names, p.names); err == nil {
			err = p.name(r.Mbox, p.names, p.names)
		}
		if p.serialAt != 0 {
			return errUnpackable // one serial to patch per reply
		}
		p.serialAt = len(p.buf)
		for _, v := range []uint32{r.Serial, r.Refresh, r.Retry, r.Expire, r.Minttl} {
			p.buf = binary.BigEndian.AppendUint32(p.buf, v)
		}
	case *dns.NS:
		err = p.name(r.Ns, p.names, p.names)
	default:
		return errUnpackable
	}
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(p.buf[lenAt:], uint16(len(p.buf)-lenAt-2))
	return nil
}

// name appends a fully qualified name of plain labels (no escapes),
// pointing at the longest suffix found in from (nil: no compression), and
// records the suffixes it writes in into.
func (p *packer) name(name string, into, from map[string]int) error {
	if !dns.IsFqdn(name) || strings.ContainsAny(name, `\`) || len(name) > 255 {
		return errUnpackable
	}
	if p.flat {
		into, from = nil, nil
	}
	if name == "." {
		name = ""
	}
	for s := name; s != ""; {
		if off, ok := from[s]; ok {
			p.buf = binary.BigEndian.AppendUint16(p.buf, 0xC000|uint16(off))
			return nil
		}
		if into != nil && len(p.buf) < 0x3FFF {
			if _, ok := into[s]; !ok {
				into[s] = len(p.buf)
			}
		}
		i := strings.IndexByte(s, '.')
		if i <= 0 || i > 63 {
			return errUnpackable
		}
		p.buf = append(p.buf, byte(i))
		p.buf = append(p.buf, s[:i]...)
		s = s[i+1:]
	}
	p.buf = append(p.buf, 0)
	return nil
}

// wireName is the wire form of a fully qualified name of plain labels.
func wireName(name string) ([]byte, error) {
	p := &packer{}
	if err := p.name(name, map[string]int{}, nil); err != nil {
		return nil, err
	}
	return p.buf, nil
}

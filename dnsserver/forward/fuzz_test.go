package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func FuzzParseZone(f *testing.F) {
	for _, s := range []string{"mesos=10.0.0.1:61053,10.0.0.2:61053", "a.=::1", ".=[::1]:5353", "x=", "=1.2.3.4", `a\.b=1.1.1.1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, err := ParseZone(s)
		if err != nil {
			return
		}
		if len(z.Upstreams) == 0 || z.Name == "" || z.Name[len(z.Name)-1] != '.' {
			t.Fatalf("ParseZone(%q) = %+v", s, z)
		}
		for _, u := range z.Upstreams {
			back, err := ParseUpstream(u.String())
			if err != nil || back != u || u.Port() == 0 {
				t.Fatalf("upstream %v of %q: round trip %v, %v", u, s, back, err)
			}
		}
	})
}

// Modes of the hostile upstream of FuzzForwardHostile.
const (
	hostileRaw       = iota // the payload as the answer
	hostileAsAnswer         // the payload with our id and QR patched in
	hostileWrongID          // a good answer with another id
	hostileWrongName        // a good answer to another question
	hostileOversized        // a good answer of payload-many records
	hostileSlow             // no answer
	hostileModes
)

// hostile is a raw UDP upstream whose answers FuzzForwardHostile sets.
type hostile struct {
	pc      net.PacketConn
	mode    atomic.Int32
	payload atomic.Pointer[[]byte]
}

func startHostile(t testing.TB) *hostile {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{pc: pc}
	go h.serve()
	t.Cleanup(func() { pc.Close() })
	return h
}

func (h *hostile) serve() {
	buf := make([]byte, 4096)
	for {
		n, from, err := h.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
			continue
		}
		if b := h.answer(q, *h.payload.Load()); b != nil {
			_, _ = h.pc.WriteTo(b, from)
		}
	}
}

func (h *hostile) answer(q *dns.Msg, p []byte) []byte {
	good := new(dns.Msg)
	good.SetReply(q)
	good.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	switch h.mode.Load() {
	case hostileRaw:
		return p
	case hostileAsAnswer:
		b := append([]byte(nil), p...)
		if len(b) >= 3 {
			binary.BigEndian.PutUint16(b, q.Id)
			b[2] |= 0x80
		}
		return b
	case hostileWrongID:
		good.Id = q.Id + 1 + uint16(len(p))
	case hostileWrongName:
		good.Question[0].Name = "x" + string(p) + "."
		if _, ok := dns.IsDomainName(good.Question[0].Name); !ok {
			good.Question[0].Name = "other.example."
		}
	case hostileOversized:
		for i := range min(len(p)*8, 2000) {
			good.Answer = append(good.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{string(rune('a' + i%26))}})
		}
	case hostileSlow:
		return nil
	}
	b, err := good.Pack()
	if err != nil {
		return nil
	}
	return b
}

// FuzzForwardHostile forwards to an upstream that answers what the fuzzer
// makes it: garbage, messages with our id, wrong ids, wrong questions,
// oversized answers, nothing. The client gets a well-formed reply or
// SERVFAIL, always.
func FuzzForwardHostile(f *testing.F) {
	good, _ := (&dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Question: []dns.Question{{Name: "a.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}).Pack()
	for mode := range hostileModes {
		f.Add(uint8(mode), []byte("garbage"), false, uint16(0))
		f.Add(uint8(mode), good, true, uint16(4096))
	}
	f.Add(uint8(hostileAsAnswer), []byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, false, uint16(512))
	f.Add(uint8(hostileOversized), make([]byte, 300), false, uint16(0))
	h := startHostile(f)
	fwd, err := New(Config{
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort(h.pc.LocalAddr().String())},
		NoCache:   true,
		Timeout:   50 * time.Millisecond,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(fwd.Close)
	// A forwarder with a cache, whose every answer is then served from
	// its bytes too.
	cached, err := New(Config{
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort(h.pc.LocalAddr().String())},
		Timeout:   50 * time.Millisecond,
		CacheSize: 4,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(cached.Close)
	n := 0
	f.Fuzz(func(t *testing.T, mode uint8, payload []byte, do bool, edns uint16) {
		h.mode.Store(int32(mode % hostileModes))
		h.payload.Store(&payload)
		req := query("a.example.", dns.TypeA, edns, do)
		checkHostileReply(t, req, fwd.Forward(context.Background(), req, false))
		n++
		req = query(fmt.Sprintf("n%d.example.", n), dns.TypeA, edns, do)
		for range 2 {
			got := new(dns.Msg)
			if err := got.Unpack(cached.ForwardPacked(context.Background(), req, false)); err != nil {
				t.Fatalf("packed reply does not unpack: %v", err)
			}
			checkHostileReply(t, req, got)
		}
	})
}

func checkHostileReply(t *testing.T, req, m *dns.Msg) {
	t.Helper()
	checkReply(t, req, m, false)
	if b, err := m.Pack(); err == nil {
		if err := new(dns.Msg).Unpack(b); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
	}
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure:
	default:
		t.Fatalf("rcode %s", dns.RcodeToString[m.Rcode])
	}
}

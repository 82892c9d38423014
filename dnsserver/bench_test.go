package dnsserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func benchmarkAnswer(b *testing.B, name string, qtype uint16) {
	s := newTestServer(b, testTable(b))
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	if m := s.Answer(req); m.Rcode == dns.RcodeServerFailure {
		b.Fatalf("answer: %v", m)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Answer(req)
	}
}

// BenchmarkAnswerA is the hot path: one A record from the table.
func BenchmarkAnswerA(b *testing.B) { benchmarkAnswer(b, "foo.marathon."+l4lb, dns.TypeA) }

// BenchmarkAnswerAMixedCase adds lower-casing a 0x20-randomised name.
func BenchmarkAnswerAMixedCase(b *testing.B) {
	benchmarkAnswer(b, "FoO.mArAtHoN.L4lB.tHiSdCoS.DiReCtOrY.", dns.TypeA)
}

// BenchmarkAnswerSRV answers two SRV records with the A in additional.
func BenchmarkAnswerSRV(b *testing.B) { benchmarkAnswer(b, "_foo._tcp.marathon."+l4lb, dns.TypeSRV) }

// BenchmarkAnswerNXDOMAIN takes the negative path (non-terminal index).
func BenchmarkAnswerNXDOMAIN(b *testing.B) { benchmarkAnswer(b, "nope.marathon."+l4lb, dns.TypeA) }

// BenchmarkServeUDP is one A query over loopback UDP per iteration, client
// packing and unpacking included.
func BenchmarkServeUDP(b *testing.B) {
	r := start(b, Config{Tables: newTables(testTable(b))})
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(r.udp)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		m, _, err := c.ExchangeWithConn(req, conn)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Answer) != 1 {
			b.Fatalf("answer %v", m.Answer)
		}
	}
}

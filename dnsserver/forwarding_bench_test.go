package dnsserver

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/dnsserver/forward"
)

// echoUpstream answers every query with itself, QR set and one A record
// appended, as cheaply as a server can: the benchmark measures the
// forwarder.
func echoUpstream(b *testing.B) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pc.Close() })
	rr := []byte{0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 || buf[11] != 0 && buf[11] != 1 {
				continue
			}
			// Drop the OPT record, if any, answer with one A.
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			m.Extra = nil
			q, _ := m.Pack()
			q[2] |= 0x80
			q[7] = 1
			_, _ = pc.WriteTo(append(q, rr...), from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// BenchmarkForwardUDP measures forwarded queries through the server, over
// loopback: distinct names (the cache misses) or one name (it hits).
func BenchmarkForwardUDP(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "uncached", true: "cached"}[cached], func(b *testing.B) {
			up := echoUpstream(b)
			f, err := forward.New(forward.Config{Upstreams: []netip.AddrPort{up}, NoCache: !cached})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(f.Close)
			r := start(b, Config{Tables: newTables(testTable(b)), Forwarder: f, Allow: loopback})
			const clients = 8
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			per := b.N/clients + 1
			for c := range clients {
				wg.Go(func() {
					conn, err := net.Dial("udp", r.udp)
					if err != nil {
						b.Error(err)
						return
					}
					defer conn.Close()
					buf := make([]byte, 1500)
					m := new(dns.Msg)
					for i := range per {
						m.SetQuestion("n"+strconv.Itoa(c*per+i)+".example.", dns.TypeA)
						if cached {
							m.SetQuestion("hot.example.", dns.TypeA)
						}
						q, _ := m.Pack()
						if _, err := conn.Write(q); err != nil {
							b.Error(err)
							return
						}
						if _, err := conn.Read(buf); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

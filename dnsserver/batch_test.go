package dnsserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// batchQuery is one query of the batch tests, asked by every client.
type batchQuery struct {
	name string
	msg  func() *dns.Msg
}

func batchQueries() []batchQuery {
	q := func(name string, qtype uint16, edns uint16) func() *dns.Msg {
		return func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion(name, qtype)
			if edns != 0 {
				m.SetEdns0(edns, false)
			}
			return m
		}
	}
	return []batchQuery{
		{"A", q("foo.marathon."+l4lb, dns.TypeA, 0)},
		{"AAAA", q("qux.marathon."+l4lb, dns.TypeAAAA, 0)},
		{"A mixed case EDNS0", q("FoO.mArAtHoN.L4lB.tHiSdCoS.DiReCtOrY.", dns.TypeA, 1232)},
		{"SRV", q("_foo._tcp.marathon."+l4lb, dns.TypeSRV, 1232)},
		{"NXDOMAIN", q("nope.marathon."+l4lb, dns.TypeA, 0)},
		{"NODATA", q("foo.marathon."+l4lb, dns.TypeAAAA, 0)},
		{"big SRV fits EDNS0 4096", q("_big._tcp.marathon."+l4lb, dns.TypeSRV, 4096)},
		{"big SRV truncated at 512", q("_big._tcp.marathon."+l4lb, dns.TypeSRV, 0)},
		{"big SRV truncated at 600", q("_big._tcp.marathon."+l4lb, dns.TypeSRV, 600)},
		{"huge SRV truncated at 1232", q("_huge._tcp.marathon."+l4lb, dns.TypeSRV, 4096)},
		{"SOA", q(l4lb, dns.TypeSOA, 0)},
		{"TXT", q("foo.marathon."+l4lb, dns.TypeTXT, 0)},
		{"outside the zones", q("example.com.", dns.TypeA, 0)},
		{"EDNS0 version 1", func() *dns.Msg {
			m := q("foo.marathon."+l4lb, dns.TypeA, 1232)()
			m.IsEdns0().SetVersion(1)
			return m
		}},
		{"NOTIFY", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetNotify(l4lb)
			return m
		}},
		{"a response: no reply", func() *dns.Msg {
			m := q("foo.marathon."+l4lb, dns.TypeA, 0)()
			m.Response = true
			return m
		}},
	}
}

// sentQuery is a query on the wire: who sent it and what the server must
// reply (nil: nothing).
type sentQuery struct {
	name   string
	client int
	q      []byte
	fast   bool   // the fast path answers it
	reply  []byte // what the client must get
	rcode  int    // of a fast reply
	qtype  uint16 // of a fast reply
}

// TestFastConnBatch sends queries from several client sockets to one
// fastConn at once and checks that ReadFrom returns exactly the queries
// the fast path does not answer, in order, from the right senders (one of
// them last, after a full batch), and that every client gets the right
// reply to each of its queries: the fast path's, or the full path's,
// which the test writes back through the fastConn as miekg/dns would.
func TestFastConnBatch(t *testing.T) {
	tests := []struct {
		name  string
		batch int
	}{
		{"one at a time", 1},
		{"batches of 2", 2},
		{"batches of 5", 5},
		{"full batches", udpBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s, err := New(Config{Tables: newTables(testTable(t)), Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			s.udpBatch = tt.batch
			s.packFast()
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			_ = pc.SetReadBuffer(4 << 20) // all queries must wait in the queue
			c := newFastConn(pc, s)

			const clients, rounds = 4, 2
			var conns []*net.UDPConn
			for range clients {
				cc, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				_ = cc.SetReadBuffer(4 << 20)
				conns = append(conns, cc)
			}

			// The queries, each with an id unique across clients, so that a
			// reply sent to the wrong client shows; the last is one the full
			// path answers.
			var sent []sentQuery
			id := uint16(1)
			ask := func(client int, bq batchQuery) {
				m := bq.msg()
				m.Id = id
				id++
				b, err := m.Pack()
				if err != nil {
					t.Fatalf("pack %s: %v", bq.name, err)
				}
				sq := sentQuery{name: bq.name, client: client, q: b}
				if r, rcode, qtype := s.answerFast(b, nil, make([]byte, 0, 256)); r != nil {
					sq.fast, sq.reply, sq.rcode, sq.qtype = true, r, rcode, qtype
				} else if full, ok := fullUDP(s, b); ok {
					sq.reply = full
				}
				sent = append(sent, sq)
			}
			qs := batchQueries()
			for r := range rounds {
				for i := range qs {
					for k := range clients {
						ask(k, qs[(i+k+r)%len(qs)]) // mixed orders: fast and full interleave
					}
				}
			}
			for _, bq := range qs {
				if bq.name == "SOA" { // the full path's
					ask(0, bq)
				}
			}
			if sent[len(sent)-1].fast {
				t.Fatal("the last query must be the full path's")
			}
			var fast, full int
			for _, sq := range sent {
				if sq.fast {
					fast++
				} else {
					full++
				}
			}
			if fast+full <= udpBatch || fast < clients || full < clients {
				t.Fatalf("%d fast and %d full queries: too few to test batches", fast, full)
			}
			for _, sq := range sent {
				if _, err := conns[sq.client].Write(sq.q); err != nil {
					t.Fatal(err)
				}
			}

			// The server side: what ReadFrom returns, answered as miekg/dns
			// would, through the same conn.
			p := make([]byte, udpReadSize)
			for _, sq := range sent {
				if sq.fast {
					continue
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds a failure only
				n, from, err := c.ReadFrom(p)
				if err != nil {
					t.Fatalf("ReadFrom, waiting for %s from client %d: %v", sq.name, sq.client, err)
				}
				c.s.udpAlive.Add(-1) // as miekg/dns's goroutine would when done with it
				if !bytes.Equal(p[:n], sq.q) {
					t.Fatalf("ReadFrom returned %x, want the %s query %x", p[:n], sq.name, sq.q)
				}
				if want := conns[sq.client].LocalAddr().String(); from.String() != want {
					t.Errorf("%s from %v, want %s", sq.name, from, want)
				}
				if sq.reply != nil {
					if _, err := c.WriteTo(sq.reply, from); err != nil {
						t.Fatalf("write the %s reply: %v", sq.name, err)
					}
				}
			}

			// The client side: every reply, to its own query.
			for k, cc := range conns {
				want := map[uint16]sentQuery{}
				for _, sq := range sent {
					if sq.client == k && sq.reply != nil {
						want[uint16(sq.q[0])<<8|uint16(sq.q[1])] = sq
					}
				}
				buf := make([]byte, 64<<10)
				for len(want) > 0 {
					_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds a failure only
					n, err := cc.Read(buf)
					if err != nil {
						t.Fatalf("client %d: %v, %d replies missing", k, err, len(want))
					}
					got := buf[:n]
					rid := uint16(got[0])<<8 | uint16(got[1])
					sq, ok := want[rid]
					if !ok {
						t.Fatalf("client %d: reply with id %d, not one of its pending queries", k, rid)
					}
					delete(want, rid)
					if !bytes.Equal(got, sq.reply) {
						t.Errorf("client %d, %s (fast %v): reply\n%x\nwant\n%x", k, sq.name, sq.fast, got, sq.reply)
					}
				}
			}

			// Fast answers are counted (before they are written).
			wantCount := map[[2]string]float64{}
			for _, sq := range sent {
				if sq.fast {
					i, j := fastIndex(sq.rcode, sq.qtype)
					wantCount[[2]string{rcodeLabel(fastRcodes[i]), qtypeLabels[fastQtypes[j]]}]++
				}
			}
			for l, n := range wantCount {
				if got := counter(t, reg, "vipbridge_dns_queries_total", "rcode", l[0], "qtype", l[1]); got != n {
					t.Errorf("queries{rcode=%s,qtype=%s} = %v, want %v", l[0], l[1], got, n)
				}
			}

			// Every datagram was read, in batches of at most tt.batch; the
			// plain loop (batches of one) observes nothing.
			read := new(dto.Metric)
			if err := s.metrics.udpBatch.Write(read); err != nil {
				t.Fatal(err)
			}
			h, wantSum := read.GetHistogram(), float64(len(sent))
			if c.batch == nil {
				wantSum = 0
			}
			if h.GetSampleSum() != wantSum || wantSum > 0 && float64(h.GetSampleCount()) < wantSum/float64(tt.batch) {
				t.Errorf("vipbridge_dns_udp_batch_size: %d reads of %v datagrams in all, want %v datagrams in reads of at most %d",
					h.GetSampleCount(), h.GetSampleSum(), wantSum, tt.batch)
			}
		})
	}
}

// TestServerConcurrentClients has clients ask every answer case at once
// over UDP, with one socket at a time, in batches and without, so that
// full-path replies (written by miekg/dns's goroutines) and batched fast
// replies go out on the same sockets together.
func TestServerConcurrentClients(t *testing.T) {
	tests := []struct {
		name           string
		sockets, batch int
	}{
		{"one socket, one at a time", 1, 1},
		{"one socket, batches", 1, udpBatch},
		{"two sockets, batches", 2, udpBatch},
	}
	tbl := testTable(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, Config{Tables: newTables(tbl)}, func(s *Server) {
				s.udpSockets, s.udpBatch = tt.sockets, tt.batch
				s.packFast()
			})
			cases := answerCases()
			const clients = 8
			replies := make([][]*dns.Msg, clients)
			errs := make(chan error, clients)
			var wg sync.WaitGroup
			for k := range clients {
				wg.Go(func() {
					errs <- askAll(r.udp, cases, &replies[k])
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			for k := range clients {
				for i, tc := range cases {
					t.Run(fmt.Sprintf("client %d %s", k, tc.name), func(t *testing.T) {
						req := tc.query()
						req.Id = uint16(i + 1)
						tc.check(t, tbl, req, replies[k][i])
					})
				}
			}
		})
	}
}

// askAll sends the cases' queries from one socket, window at a time
// without waiting (few enough that loopback does not drop them), reads
// the replies and puts them in case order in replies.
func askAll(addr string, cases []answerCase, replies *[]*dns.Msg) error {
	const window = 8
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	*replies = make([]*dns.Msg, len(cases))
	buf := make([]byte, 64<<10)
	for start := 0; start < len(cases); start += window {
		end := min(start+window, len(cases))
		for i := start; i < end; i++ {
			m := cases[i].query()
			m.Id = uint16(i + 1)
			b, err := m.Pack()
			if err != nil {
				return fmt.Errorf("pack %s: %w", cases[i].name, err)
			}
			if _, err := conn.Write(b); err != nil {
				return err
			}
		}
		for range end - start {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds a failure only
			n, err := conn.Read(buf)
			if err != nil {
				return err
			}
			m := new(dns.Msg)
			if err := m.Unpack(buf[:n]); err != nil {
				return err
			}
			i := int(m.Id) - 1
			if i < start || i >= end || (*replies)[i] != nil {
				return errors.New("reply with an unexpected or repeated id")
			}
			(*replies)[i] = m
		}
	}
	return nil
}

// BenchmarkFastConnBatch is one batch per iteration through a fastConn on
// loopback: 63 fast queries and a last one for the full path, which ends
// ReadFrom; then the client reads the 63 replies. Allocations are those of
// returning the full-path query's address. The client's system calls are
// in the time.
func BenchmarkFastConnBatch(b *testing.B) {
	for _, size := range []int{1, udpBatch} {
		b.Run(fmt.Sprintf("batch %d", size), func(b *testing.B) { benchmarkFastConn(b, size) })
	}
}

func benchmarkFastConn(b *testing.B, size int) {
	s := newTestServer(b, testTable(b))
	s.udpBatch = size
	s.packFast()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetReadBuffer(4 << 20)
	c := newFastConn(pc, s)
	cc, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	_ = cc.SetReadBuffer(4 << 20)
	fq := fastQueries(b)["A"]
	soa := new(dns.Msg)
	soa.SetQuestion(l4lb, dns.TypeSOA)
	full, err := soa.Pack()
	if err != nil {
		b.Fatal(err)
	}
	const fast = 63
	p := make([]byte, udpReadSize)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		for range fast {
			if _, err := cc.Write(fq); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := cc.Write(full); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadFrom(p); err != nil {
			b.Fatal(err)
		}
		s.udpAlive.Add(-1) // as miekg/dns's goroutine would when done with it
		for range fast {
			_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := cc.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(fast+1)), "ns/query")
}

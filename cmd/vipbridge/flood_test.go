package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// Flood bounds. The daemon's DNS server takes at most 1024 queries and 1024
// TCP connections at once (dnsserver.Config.MaxConcurrent's default); the
// goroutine bound is three times that (miekg/dns starts a goroutine per UDP
// packet before the server can drop it), the memory bound is generous: they
// catch a leak per query or per connection, not a regression of a few
// percent.
const (
	floodFor       = 3 * time.Second
	floodMax       = 60 * time.Second
	floodUDPPeers  = 2
	floodTCPConns  = 2000
	floodMaxConns  = 1024
	floodHeapSlack = 256 << 20
)

// floodStats is what the flood measured.
type floodStats struct {
	udpSent, tcpOpened, tcpAnswered    atomic.Int64
	controlOK, controlLost, controlBad atomic.Int64
	controlTCPLost                     atomic.Int64
	maxGoroutines, maxHeap             atomic.Uint64
}

func setMax(v *atomic.Uint64, x uint64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// floodQuery returns a query packet: a VIP name, a missing name, a name
// outside the zones, or garbage.
func floodQuery(rng *rand.Rand) []byte {
	names := []string{webName, "nosuch.marathon.l4lb.thisdcos.directory", "example.com", "_web._tcp.marathon.l4lb.thisdcos.directory"}
	if rng.IntN(8) == 0 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(names[rng.IntN(len(names))]), []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY}[rng.IntN(4)])
	m.Id = uint16(rng.Uint32())
	b, _ := m.Pack()
	return b
}

// TestDNSFlood floods the daemon's DNS server over loopback with UDP
// queries and 2,000 TCP connections (idle, querying, and sending half a
// message) while a control client checks its answers; goroutines and heap
// must stay bounded during the flood and come back afterwards.
func TestDNSFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the DNS flood")
	}
	sim := startSim(t, "small")
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, nil)
	var webAddr netip.Addr
	waitFor(t, "web to resolve", func() bool {
		r, err := d.query(webName, dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			webAddr, _ = aRecord(r)
		}
		return webAddr.IsValid()
	})
	runtime.GC()
	g0, h0 := runtime.NumGoroutine(), heapInuse()
	st := &floodStats{}

	// The flood lasts floodFor and at least until every TCP connection is
	// open; floodMax bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), floodMax)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range floodUDPPeers {
		wg.Go(func() { floodUDP(ctx, t, d.addrs.DNS.String(), uint64(i), st) })
	}
	var conns []net.Conn // written by the TCP flood, read after wg.Wait
	wg.Go(func() {
		conns = floodTCP(ctx, d.addrs.DNS.String(), st)
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(floodFor))):
		}
		cancel()
	})
	wg.Go(func() { floodControl(ctx, t, d.addrs.DNS.String(), webAddr, st) })
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			setMax(&st.maxGoroutines, uint64(runtime.NumGoroutine()))
			setMax(&st.maxHeap, heapInuse())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	wg.Wait()
	countTCPAnswers(conns, st)
	for _, c := range conns {
		c.Close()
	}

	took := time.Since(start)
	t.Logf("flood for %v: %d UDP packets sent, %d TCP connections opened, %d answered over TCP; control: %d right, %d lost over UDP, %d lost over TCP, %d wrong",
		took.Round(time.Millisecond), st.udpSent.Load(), st.tcpOpened.Load(), st.tcpAnswered.Load(), st.controlOK.Load(), st.controlLost.Load(), st.controlTCPLost.Load(), st.controlBad.Load())
	t.Logf("goroutines %d before, max %d during; heap in use %d MiB before, max %d MiB during",
		g0, st.maxGoroutines.Load(), h0>>20, st.maxHeap.Load()>>20)
	if n := st.controlBad.Load(); n > 0 {
		t.Errorf("%d wrong answers to the control client during the flood", n)
	}
	if st.controlOK.Load() == 0 {
		t.Errorf("the control client got no answer during the flood")
	}
	if limit := uint64(g0 + 3*floodMaxConns); st.maxGoroutines.Load() > limit {
		t.Errorf("max goroutines during the flood = %d, want ≤ %d", st.maxGoroutines.Load(), limit)
	}
	if limit := h0 + floodHeapSlack; st.maxHeap.Load() > limit {
		t.Errorf("max heap in use during the flood = %d MiB, want ≤ %d MiB", st.maxHeap.Load()>>20, limit>>20)
	}
	waitFor(t, "goroutines to come back after the flood", func() bool { return runtime.NumGoroutine() <= g0+20 })
	runtime.GC()
	if h := heapInuse(); h > h0+64<<20 {
		t.Errorf("heap in use after the flood = %d MiB, was %d MiB before", h>>20, h0>>20)
	}
	if r, err := d.query(webName, dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("web after the flood: %v %v", r, err)
	} else if got, _ := aRecord(r); got != webAddr {
		t.Errorf("web after the flood = %v, want %v", got, webAddr)
	}
}

// floodUDP sends queries as fast as the socket takes them and drains the
// answers without waiting for them.
func floodUDP(ctx context.Context, t *testing.T, addr string, seed uint64, st *floodStats) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Errorf("dial udp: %v", err)
		return
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 3))
	for ctx.Err() == nil {
		if _, err := c.Write(floodQuery(rng)); err == nil {
			st.udpSent.Add(1)
		}
	}
}

// floodTCP opens floodTCPConns connections from floodTCPDialers
// goroutines: a third stay idle, a third send one query, a third send a
// length prefix and half a message. It returns the connections, open.
func floodTCP(ctx context.Context, addr string, st *floodStats) []net.Conn {
	const dialers = 8
	var (
		mu   sync.Mutex
		held []net.Conn
		wg   sync.WaitGroup
	)
	for d := range dialers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(d), 7))
			for i := d; i < floodTCPConns && ctx.Err() == nil; i += dialers {
				c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				st.tcpOpened.Add(1)
				q := floodQuery(rng)
				frame := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				switch i % 3 {
				case 1:
					c.Write(append(frame, q...))
				case 2:
					c.Write(append(frame, q[:len(q)/2]...))
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return held
}

// countTCPAnswers counts the connections with an answer waiting.
func countTCPAnswers(conns []net.Conn, st *floodStats) {
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err == nil && binary.BigEndian.Uint16(n[:]) > 0 {
			st.tcpAnswered.Add(1)
		}
	}
}

// floodControl asks for web's A record every 20 ms over UDP and over TCP
// (redialling when the server closed the connection). A query dropped
// under load is counted; a wrong answer is an error.
func floodControl(ctx context.Context, t *testing.T, addr string, want netip.Addr, st *floodStats) {
	var tcp *dns.Conn
	defer func() {
		if tcp != nil {
			tcp.Close()
		}
	}()
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	check := func(r *dns.Msg, err error, lost *atomic.Int64) {
		switch got, _ := aRecordOf(r); {
		case err != nil:
			lost.Add(1)
		case r.Rcode == dns.RcodeSuccess && got == want && len(r.Answer) == 1:
			st.controlOK.Add(1)
		default:
			st.controlBad.Add(1)
			t.Logf("control: wrong answer %v", r)
		}
	}
	for ctx.Err() == nil {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(webName), dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		check(r, err, &st.controlLost)
		if tcp == nil {
			tcp, _ = (&dns.Client{Net: "tcp", Timeout: time.Second}).Dial(addr)
		}
		err = errors.New("not connected")
		if tcp != nil {
			tcp.SetDeadline(time.Now().Add(time.Second))
			if err = tcp.WriteMsg(m); err == nil {
				r, err = tcp.ReadMsg()
			}
		}
		check(r, err, &st.controlTCPLost)
		if err != nil && tcp != nil {
			tcp.Close() // closed by the server: queries over its bound close the connection
			tcp = nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func aRecordOf(r *dns.Msg) (netip.Addr, bool) {
	if r == nil {
		return netip.Addr{}, false
	}
	return aRecord(r)
}

// packetCrashers holds raw packets the fuzzer once found troublesome; they
// run as seeds of FuzzDNSServerPackets in every `go test`. (None so far.)
var packetCrashers = [][]byte{}

// FuzzDNSServerPackets sends arbitrary bytes to the running daemon over
// UDP and TCP. A reply, if any, must be a well-formed response to the
// same ID; after every input a control query must still get the right
// answer (a panic would kill the process, a wedged server the control).
func FuzzDNSServerPackets(f *testing.F) {
	q := func(name string, qtype uint16, edit func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		if edit != nil {
			edit(m)
		}
		b, _ := m.Pack()
		return b
	}
	f.Add(q(webName, dns.TypeA, nil))
	f.Add(q("_web._tcp.marathon.l4lb.thisdcos.directory", dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(65535, true) }))
	f.Add(q("example.com", dns.TypeANY, nil))
	f.Add(q(webName, dns.TypeA, func(m *dns.Msg) { m.Response = true }))
	f.Add(q(webName, dns.TypeA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }))
	f.Add(q(webName, dns.TypeAXFR, nil))
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}) // name pointing at itself
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})       // counts without records
	f.Add([]byte{})
	for _, p := range packetCrashers {
		f.Add(p)
	}

	sc, err := marathontest.LoadScenario("small")
	if err != nil {
		f.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	f.Cleanup(sim.Close)
	d := startDaemon(f, f.TempDir(), []string{sim.URL()}, nil)
	var webAddr netip.Addr
	waitFor(f, "web to resolve", func() bool {
		r, err := d.query(webName, dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			webAddr, _ = aRecord(r)
		}
		return webAddr.IsValid()
	})
	addr := d.addrs.DNS.String()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		u, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		u.Write(pkt)
		udpControl(t, u, pkt, webAddr)

		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := binary.BigEndian.AppendUint16(nil, uint16(min(len(pkt), 0xffff)))
		c.Write(append(frame, pkt[:min(len(pkt), 0xffff)]...))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err == nil { // else no reply: dropped, connection closed
			reply := make([]byte, binary.BigEndian.Uint16(n[:]))
			if _, err := io.ReadFull(c, reply); err != nil {
				t.Fatalf("truncated TCP reply to %x: %v", pkt, err)
			}
			checkReply(t, reply, pkt)
		}
	})
}

// udpControl sends a control query for web's A record on the socket that
// just sent pkt and reads until its answer comes: it must be right, and a
// reply to pkt read on the way must be well formed.
func udpControl(t *testing.T, u net.Conn, pkt []byte, want netip.Addr) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(webName), dns.TypeA)
	m.Id = 0xc0de
	b, _ := m.Pack()
	u.Write(b)
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	for {
		n, err := u.Read(buf)
		if err != nil {
			t.Fatalf("control query after %x: %v", pkt, err)
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) == nil && r.Id == m.Id && len(r.Question) == 1 && r.Question[0] == m.Question[0] {
			if got, _ := aRecord(r); got != want || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("control query after %x: %v, want %v", pkt, r, want)
			}
			return
		}
		checkReply(t, buf[:n], pkt)
	}
}

// checkReply checks a reply to pkt: it must unpack, be a response and
// carry the query's ID.
func checkReply(t *testing.T, reply, pkt []byte) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("reply to %x does not unpack: %v (%x)", pkt, err, reply)
	}
	if !m.Response || len(pkt) < 2 || m.Id != binary.BigEndian.Uint16(pkt) {
		t.Fatalf("reply to %x: response %v, id %d", pkt, m.Response, m.Id)
	}
}

package forward

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Two queries in flight with one id on one socket cannot both wait there:
// the second is told to use a socket of its own.
func TestMuxIDTaken(t *testing.T) {
	m := &udpMux{addr: blackHole(t).String()}
	defer m.close()
	mc, err := m.conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	q := []byte{0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() { _, err := mc.exchange(ctx, q); first <- err }()
	for waiting := false; !waiting; {
		mc.mu.Lock()
		_, waiting = mc.pending[0x1234]
		mc.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if _, err := mc.exchange(context.Background(), q); !errors.Is(err, errIDTaken) {
		t.Errorf("second exchange with the id: %v, want errIDTaken", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first exchange: %v, want cancelled", err)
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if len(mc.pending) != 0 {
		t.Errorf("%d ids still pending", len(mc.pending))
	}
}

// An answer is handed only to the query waiting for its id; others are
// dropped, and the query gets the answer to its own id.
func TestMuxDemultiplexes(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			stray := append([]byte(nil), buf[:n]...)
			stray[1]++ // an id nobody waits for first
			_, _ = pc.WriteTo(stray, from)
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	m := &udpMux{addr: pc.LocalAddr().String()}
	defer m.close()
	for i := range 20 {
		q := new(dns.Msg)
		q.SetQuestion("a.example.", dns.TypeA)
		q.Id = uint16(1000 + 2*i)
		b, _ := q.Pack()
		mc, err := m.conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, err := mc.exchange(context.Background(), b)
		if err != nil || len(got) != len(b) || got[0] != b[0] || got[1] != b[1] {
			t.Fatalf("query %d: got %x, %v; want its own id back", i, got, err)
		}
	}
}

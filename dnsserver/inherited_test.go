package dnsserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dupUDP returns a second descriptor of pc as a *net.UDPConn, as a
// process that systemd started gets its copy of the socket.
func dupUDP(t *testing.T, pc *net.UDPConn) *net.UDPConn {
	t.Helper()
	f, err := pc.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.UDPConn)
}

func dupTCP(t *testing.T, ln *net.TCPListener) net.Listener {
	t.Helper()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// heldSockets binds a UDP socket and a TCP listener on loopback, each on a
// port of its own, closed when the test ends: the copies systemd keeps.
func heldSockets(t *testing.T) (*net.UDPConn, *net.TCPListener) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return pc, ln
}

// TestServeInheritedSockets serves ready-made sockets (Config.PacketConns
// and Config.Listeners) and answers on both as on bound ones; Addr, which
// names a port nobody listens on, is not bound.
func TestServeInheritedSockets(t *testing.T) {
	held, heldTCP := heldSockets(t)
	tbl := testTable(t)
	s, err := New(Config{Addr: "127.0.0.1:1", Tables: newTables(tbl),
		PacketConns: []*net.UDPConn{dupUDP(t, held)}, Listeners: []net.Listener{dupTCP(t, heldTCP)}})
	if err != nil {
		t.Fatal(err)
	}
	r := serve(t, s)
	if r.udp != held.LocalAddr().String() || r.tcp != heldTCP.Addr().String() {
		t.Fatalf("Ready(%s, %s), want the inherited sockets' %s, %s", r.udp, r.tcp, held.LocalAddr(), heldTCP.Addr())
	}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			for _, tt := range answerCases()[:4] {
				t.Run(tt.name, func(t *testing.T) {
					req := tt.query()
					tt.check(t, tbl, req, r.exchange(t, network, req))
				})
			}
		})
	}
}

// TestInheritedSocketsKeepQueriesAcrossARestart plays systemd across a
// restart: a query sent while no server runs waits in the socket the
// supervisor holds, and the next server, given its own copy, answers it.
func TestInheritedSocketsKeepQueriesAcrossARestart(t *testing.T) {
	held, heldTCP := heldSockets(t)
	tbl := testTable(t)
	runOnce := func() (stop func()) {
		s, err := New(Config{Tables: newTables(tbl),
			PacketConns: []*net.UDPConn{dupUDP(t, held)}, Listeners: []net.Listener{dupTCP(t, heldTCP)}})
		if err != nil {
			t.Fatal(err)
		}
		up := make(chan struct{})
		s.ready = func(net.Addr, net.Addr) { close(up) }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		select {
		case <-up:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		}
	}
	stop := runOnce()
	stop()

	client, err := net.DialUDP("udp", nil, held.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	wire, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write(wire); err != nil { // nobody serves: the kernel queues it
		t.Fatal(err)
	}
	defer runOnce()()
	// The deadline only bounds a failing test.
	if err := client.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := client.Read(buf)
	if err != nil {
		t.Fatalf("the query sent between two servers got no answer: %v", err)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if resp.Id != req.Id || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("answer %v, want one A record for id %d", resp, req.Id)
	}
	// The servers closed their copies only: the held socket still works.
	if _, err := held.WriteToUDP([]byte{0}, client.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Errorf("held socket closed by the server: %v", err)
	}
}

package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// testGeneration is the generation of the test table: the SOA serial.
const testGeneration = 7

// tables is a Tables whose table tests can swap.
type tables struct {
	p atomic.Pointer[discovery.Table]
}

func (f *tables) Table() *discovery.Table { return f.p.Load() }

func newTables(t *discovery.Table) *tables {
	f := new(tables)
	f.p.Store(t)
	return f
}

func vipPort(index int, vip string, protos ...discovery.Protocol) discovery.Port {
	return discovery.Port{
		Kind:          discovery.PortHost,
		HostPortIndex: index,
		Protocols:     protos,
		Labels:        []discovery.Label{{Key: "VIP_0", Value: vip}},
	}
}

func task(id, agent string, hostPorts ...uint16) discovery.Task {
	return discovery.Task{
		ID:        id,
		AgentIP:   netip.MustParseAddr(agent),
		HostPorts: hostPorts,
		State:     discovery.TaskRunning,
	}
}

// bigPorts is how many TCP ports big.marathon has: its SRV answer is over
// 512 octets but under ednsSize. hugePorts makes huge.marathon's answer
// larger than ednsSize. (SRV targets are never compressed, RFC 2782, so each
// record takes about 56 octets.)
const (
	bigPorts  = 15
	hugePorts = 40
)

// manyPorts is an app with n TCP VIP ports base, base+1, … on one task.
func manyPorts(name string, n int, base uint16) discovery.App {
	app := discovery.App{ID: "/" + name, Framework: "marathon"}
	var hostPorts []uint16
	for i := range n {
		app.Ports = append(app.Ports, vipPort(i, fmt.Sprintf("/%s:%d", name, int(base)+i), discovery.TCP))
		hostPorts = append(hostPorts, uint16(32000+i))
	}
	app.Tasks = []discovery.Task{task(name+".1", "10.0.0.9", hostPorts...)}
	return app
}

// testApps declares:
//
//	foo.marathon      A      tcp 53, 80; udp 53
//	qux.marathon      AAAA   tcp 8080
//	dual.marathon     A AAAA tcp 443
//	a.b.marathon      A      tcp 8000 (a VIP name with a dot)
//	svc.hello-world   A      tcp 9000 (another framework)
//	big.marathon      A      tcp 2000..2014
//	huge.marathon     A      tcp 3000..3039
func testApps() []discovery.App {
	tcp, udp := discovery.TCP, discovery.UDP
	return []discovery.App{
		{
			ID: "/foo", Framework: "marathon",
			Ports: []discovery.Port{vipPort(0, "/foo:80", tcp), vipPort(1, "/foo:53", tcp, udp)},
			Tasks: []discovery.Task{task("foo.1", "10.0.0.1", 31000, 31001)},
		},
		{
			ID: "/qux", Framework: "marathon",
			Ports: []discovery.Port{vipPort(0, "/qux:8080", tcp)},
			Tasks: []discovery.Task{task("qux.1", "fd00::1", 31002)},
		},
		{
			ID: "/dual", Framework: "marathon",
			Ports: []discovery.Port{vipPort(0, "/dual:443", tcp)},
			Tasks: []discovery.Task{task("dual.1", "10.0.0.2", 31003), task("dual.2", "fd00::2", 31004)},
		},
		{
			ID: "/dotted", Framework: "marathon",
			Ports: []discovery.Port{vipPort(0, "a.b:8000", tcp)},
			Tasks: []discovery.Task{task("dotted.1", "10.0.0.3", 31005)},
		},
		{
			ID: "hello-world/svc.1", Framework: "hello-world",
			Ports: []discovery.Port{vipPort(0, "/svc:9000", tcp)},
			Tasks: []discovery.Task{task("svc.1", "10.0.0.4", 31006)},
		},
		manyPorts("big", bigPorts, 2000),
		manyPorts("huge", hugePorts, 3000),
	}
}

// testTable builds the table of testApps with generation testGeneration.
func testTable(tb testing.TB) *discovery.Table {
	tb.Helper()
	alloc := discovery.NewAllocator(discovery.AllocConfig{}, nil)
	t := discovery.Build(testApps(), alloc, time.Unix(1700000000, 0))
	if len(t.Errors) > 0 {
		tb.Fatalf("Build: label errors %v", t.Errors)
	}
	t.Generation = testGeneration
	return t
}

func newTestServer(tb testing.TB, tbl *discovery.Table) *Server {
	tb.Helper()
	s, err := New(Config{Tables: newTables(tbl)})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

var placeholder = regexp.MustCompile(`\{([a-z0-9.-]+)/([46])\}`)

// expand replaces "{<name>.<framework>/4}" (or "/6") in a zone line with
// the address the table gave that name, so expectations do not depend on
// the allocator's hash.
func expand(tb testing.TB, tbl *discovery.Table, line string) string {
	tb.Helper()
	return placeholder.ReplaceAllStringFunc(line, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		e, err := tbl.Lookup(sub[1])
		if err != nil {
			tb.Fatalf("expand %s: %v", m, err)
		}
		a := e.Addr4
		if sub[2] == "6" {
			a = e.Addr6
		}
		if !a.IsValid() {
			tb.Fatalf("expand %s: no address", m)
		}
		return a.String()
	})
}

// checkSection compares a section with zone-text lines, in order.
func checkSection(tb testing.TB, tbl *discovery.Table, section string, got []dns.RR, want []string) {
	tb.Helper()
	var g, w []string
	for _, rr := range got {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		g = append(g, rr.String())
	}
	for _, line := range want {
		rr, err := dns.NewRR(expand(tb, tbl, line))
		if err != nil {
			tb.Fatalf("bad expectation %q: %v", line, err)
		}
		w = append(w, rr.String())
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		tb.Errorf("%s section:\n got: %s\nwant: %s", section,
			strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

// soaLine is the SOA of zone (apex spelt as owner) in zone text.
func soaLine(owner, zone string) string {
	return fmt.Sprintf("%s 5 IN SOA ns.%s hostmaster.%s %d 60 180 86400 5", owner, zone, zone, testGeneration)
}

// writer is a dns.ResponseWriter that keeps what is written.
type writer struct {
	remote net.Addr
	msgs   []*dns.Msg
	closed bool
}

func (w *writer) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *writer) RemoteAddr() net.Addr { return w.remote }
func (w *writer) WriteMsg(m *dns.Msg) error {
	w.msgs = append(w.msgs, m)
	return nil
}
func (w *writer) Write(b []byte) (int, error) { return len(b), nil }
func (w *writer) Close() error                { w.closed = true; return nil }
func (w *writer) TsigStatus() error           { return nil }
func (w *writer) TsigTimersOnly(bool)         {}
func (w *writer) Hijack()                     {}

var (
	udpClient = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	tcpClient = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
)

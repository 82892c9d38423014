//go:build linux

package lb

// Tests against a real IPVS kernel. This machine's kernel has no IPVS; run
// them in a throwaway VM with ../shared/tools/kvm-run (make test-kernel):
//
//	CGO_ENABLED=0 go test -c -o /tmp/lb.test ./lb
//	../shared/tools/kvm-run -e VIPBRIDGE_KERNEL_TESTS=1 /tmp/lb.test -test.v
//
// Without IPVS they skip, or fail under VIPBRIDGE_KERNEL_TESTS=1. They
// change the root network namespace (the VM's), so they clean up after
// themselves and never run in parallel. Backends live in network
// namespaces behind veth pairs with TEST-NET-1 (192.0.2.0/24) and
// documentation (2001:db8::/32) addresses and no default route: their
// answers reach the client only through the masquerade rule.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipbridge/vipbridge/discovery"
)

const testIface = "vbtest0"

// kernelIPVS returns an IPVS dataplane on the real kernel whose kernel
// state is removed when t ends.
func kernelIPVS(t testing.TB, cfg IPVSConfig) *IPVS {
	t.Helper()
	requireKernel(t, "IPVS", checkIPVS())
	cfg.Interface = testIface
	if cfg.Ranges == nil {
		cfg.Ranges = testRanges
	}
	x, err := NewIPVS(cfg)
	if err != nil {
		t.Fatalf("NewIPVS() = %v", err)
	}
	t.Cleanup(func() {
		x.Close()
		cleanKernel(t)
	})
	return x
}

// cleanKernel removes every IPVS service, the test interface and the
// nftables table (the VM is the tests' own).
func cleanKernel(t testing.TB) {
	t.Helper()
	h, err := ipvs.New("")
	if err != nil {
		t.Fatalf("ipvs.New() = %v", err)
	}
	defer h.Close()
	if err := h.Flush(); err != nil {
		t.Errorf("flush ipvs: %v", err)
	}
	if l, err := netlink.LinkByName(testIface); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			t.Errorf("delete %s: %v", testIface, err)
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("nftables.New() = %v", err)
	}
	c.DelTable(&nftables.Table{Name: nftTable, Family: nftables.TableFamilyINet})
	_ = c.Flush() // absent already: fine
}

func rawIPVS(t testing.TB) *ipvs.Handle {
	t.Helper()
	h, err := ipvs.New("")
	if err != nil {
		t.Fatalf("ipvs.New() = %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// backendNet is a network namespace reached over a veth pair: the host
// side has .1, the namespace .2 of 192.0.2.<4i>/30 and 2001:db8:<i>::/64.
type backendNet struct {
	ns     netns.NsHandle
	v4, v6 netip.Addr // the namespace's addresses
}

func newBackendNet(t testing.TB, i int) *backendNet {
	t.Helper()
	ns := newNetns(t)
	host, peer := fmt.Sprintf("vbh%d", i), fmt.Sprintf("vbp%d", i)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", host, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	inNS, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	defer inNS.Close()
	root, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	b := &backendNet{
		ns: ns,
		v4: netip.AddrFrom4([4]byte{192, 0, 2, byte(4*i + 2)}),
		v6: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i), 15: 2}),
	}
	for _, side := range []struct {
		h      *netlink.Handle
		name   string
		v4, v6 netip.Addr
	}{
		{root, host, b.v4.Prev(), b.v6.Prev()},
		{inNS, peer, b.v4, b.v6},
	} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		for _, p := range []netip.Prefix{netip.PrefixFrom(side.v4, 30), netip.PrefixFrom(side.v6, 64)} {
			a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD}
			if err := side.h.AddrAdd(l, a); err != nil {
				t.Fatalf("add %s to %s: %v", p, side.name, err)
			}
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", side.name, err)
		}
	}
	return b
}

// in runs fn with the calling thread in b's namespace: sockets fn opens
// stay there.
func (b *backendNet) in(t testing.TB, fn func() error) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(b.ns); err != nil {
		t.Fatal(err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}

// server is a backend: over TCP it writes its name on a line, then echoes
// lines; over UDP it answers each datagram with its name.
type server struct {
	name     string
	addr     netip.AddrPort
	datagram atomic.Int64 // datagrams received
}

func (b *backendNet) serve(t testing.TB, name string, addr netip.Addr, port uint16) *server {
	t.Helper()
	s := &server{name: name, addr: netip.AddrPortFrom(addr, port)}
	var ln net.Listener
	var pc net.PacketConn
	b.in(t, func() (err error) {
		if ln, err = net.Listen("tcp", s.addr.String()); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", s.addr.String())
		return err
	})
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, name)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintln(c, sc.Text())
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.datagram.Add(1)
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
	return s
}

// conn is a client TCP connection to a VIP that knows its backend.
type conn struct {
	net.Conn
	r       *bufio.Reader
	backend string
}

func dialVIP(t testing.TB, vip netip.AddrPort) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", vip, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cc := &conn{Conn: c, r: bufio.NewReader(c)}
	line, err := cc.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read backend name from %s: %v", vip, err)
	}
	cc.backend = strings.TrimSpace(line)
	return cc
}

// echo sends a line and reads it back.
func (c *conn) echo(s string) error {
	if _, err := fmt.Fprintln(c, s); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != s {
		return fmt.Errorf("echo %q = %q", s, got)
	}
	return nil
}

// askUDP sends a datagram from c to vip and returns the answering backend.
func askUDP(c net.PacketConn, vip netip.AddrPort) (string, error) {
	if _, err := c.WriteTo([]byte("?"), net.UDPAddrFromAddrPort(vip)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	n, _, err := c.ReadFrom(buf)
	return string(buf[:n]), err
}

func counts(names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		out[n]++
	}
	return out
}

// fixture is a kernel dataplane with n backend namespaces each serving
// port 8080 (TCP and UDP) on IPv4 and IPv6.
type fixture struct {
	x        *IPVS
	nets     []*backendNet
	servers4 []*server
	servers6 []*server
}

func newFixture(t testing.TB, cfg IPVSConfig, n int) *fixture {
	t.Helper()
	f := &fixture{x: kernelIPVS(t, cfg)}
	for i := range n {
		b := newBackendNet(t, i)
		f.nets = append(f.nets, b)
		f.servers4 = append(f.servers4, b.serve(t, fmt.Sprintf("b%d", i), b.v4, 8080))
		f.servers6 = append(f.servers6, b.serve(t, fmt.Sprintf("b%d6", i), b.v6, 8080))
	}
	return f
}

func backendsOf(ss ...*server) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.addr.String()
	}
	return out
}

func TestKernelSpreadsTCPAndUDP(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 3)
	tb := table(
		vip("tcp web.marathon:80", []string{"11.0.0.1", "fd01:c::1"}, append(backendsOf(f.servers4...), backendsOf(f.servers6...)...)...),
		vip("udp dns.marathon:53", []string{"11.0.0.1"}, backendsOf(f.servers4...)...),
	)
	apply(t, f.x, tb)
	for _, s := range f.x.State()[tb.VIPs.At(0).Key] {
		if s.Status != StatusProgrammed {
			t.Errorf("State() = %+v, want programmed", s)
		}
	}

	for _, vipAddr := range []string{"11.0.0.1:80", "[fd01:c::1]:80"} {
		var got []string
		for range 12 { // kept open: wlc spreads by active connections
			got = append(got, dialVIP(t, netip.MustParseAddrPort(vipAddr)).backend)
		}
		if c := counts(got); len(c) != 3 {
			t.Errorf("12 TCP connections to %s went to %v, want all 3 backends", vipAddr, c)
		}
	}

	var got []string
	for range 12 {
		c, err := net.ListenPacket("udp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		name, err := askUDP(c, netip.MustParseAddrPort("11.0.0.1:53"))
		c.Close()
		if err != nil {
			t.Fatalf("UDP to 11.0.0.1:53: %v", err)
		}
		got = append(got, name)
	}
	if c := counts(got); len(c) != 3 {
		t.Errorf("12 UDP flows to 11.0.0.1:53 went to %v, want all 3 backends", c)
	}
}

// TestKernelMasqueradeIsNeeded shows that the backends answer only through
// the masquerade rule: without it the client's address (the VIP itself, for
// a local client) has no route back from the backend's namespace.
func TestKernelMasqueradeIsNeeded(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 1)
	vipAddr := netip.MustParseAddrPort("11.0.0.11:80")
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.11"}, backendsOf(f.servers4...)...)))
	dialVIP(t, vipAddr).Close()

	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(&nftables.Table{Name: nftTable, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", vipAddr.String(), time.Second); err == nil {
		c.Close()
		t.Fatalf("connected to %s without the masquerade rule; the test topology is wrong", vipAddr)
	}
	f.x.repair(context.Background())
	dialVIP(t, vipAddr).Close()
}

func TestKernelWeightZeroKeepsEstablished(t *testing.T) {
	f := newFixture(t, IPVSConfig{Drain: time.Minute}, 2)
	f.x.drainPoll = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	vipAddr := netip.MustParseAddrPort("11.0.0.2:80")
	both := table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, backendsOf(f.servers4...)...))
	apply(t, f.x, both)
	first := dialVIP(t, vipAddr)
	kept, other := f.servers4[0], f.servers4[1]
	if first.backend != kept.name {
		kept, other = other, kept
	}

	// Unhealthy: weight 0 in the table.
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, kept.addr.String()+" w=0", other.addr.String())))
	for range 5 {
		if c := dialVIP(t, vipAddr); c.backend != other.name {
			t.Fatalf("new connection went to %s at weight 0", c.backend)
		}
	}
	if err := first.echo("still there"); err != nil {
		t.Fatalf("established connection to the weight-0 backend: %v", err)
	}

	// Gone: drains while the connection lives, then is deleted.
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, other.addr.String())))
	time.Sleep(300 * time.Millisecond)
	if err := first.echo("draining"); err != nil {
		t.Fatalf("established connection to the draining backend: %v", err)
	}
	if n := len(renderIPVS(t, rawIPVS(t))); n != 2 {
		t.Fatalf("draining backend deleted while its connection lives")
	}
	first.Close()
	waitFor(t, 5*time.Second, "the drained backend to be deleted", func() bool {
		return len(renderIPVS(t, rawIPVS(t))) == 1
	})
}

func TestKernelDrainTimeEndsConnections(t *testing.T) {
	f := newFixture(t, IPVSConfig{Drain: 500 * time.Millisecond}, 1)
	f.x.drainPoll = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.3"}, backendsOf(f.servers4...)...)))
	c := dialVIP(t, netip.MustParseAddrPort("11.0.0.3:80"))
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.3"})))
	waitFor(t, 5*time.Second, "the busy backend to be deleted after its drain time", func() bool {
		return slices.Equal(renderIPVS(t, rawIPVS(t)), []string{"TCP 11.0.0.3:80 wlc"})
	})
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := c.echo("after the drain time"); err == nil {
		t.Errorf("connection still works after its backend was deleted")
	}
}

func TestKernelRemovedUDPBackendGetsNothing(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 2)
	vipAddr := netip.MustParseAddrPort("11.0.0.4:53")
	apply(t, f.x, table(vip("udp dns.marathon:53", []string{"11.0.0.4"}, backendsOf(f.servers4...)...)))
	c, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name, err := askUDP(c, vipAddr)
	if err != nil {
		t.Fatalf("UDP to %s: %v", vipAddr, err)
	}
	gone, stays := f.servers4[0], f.servers4[1]
	if name != gone.name {
		gone, stays = stays, gone
	}
	apply(t, f.x, table(vip("udp dns.marathon:53", []string{"11.0.0.4"}, stays.addr.String())))
	before := gone.datagram.Load()
	answered := 0
	for range 10 { // the same flow (source port) as before
		if name, err := askUDP(c, vipAddr); err == nil && name == stays.name {
			answered++
		}
	}
	if n := gone.datagram.Load() - before; n != 0 {
		t.Errorf("removed backend received %d more datagrams, want 0", n)
	}
	if answered == 0 {
		t.Errorf("no datagram of the flow reached the remaining backend")
	}
	if got := metricValue(t, f.x.met.opErrors.WithLabelValues("flush_conntrack")); got != 0 {
		t.Errorf("conntrack flush failed %v times", got)
	}
	if got := metricValue(t, f.x.met.ops.WithLabelValues("flush_conntrack")); got != 1 {
		t.Errorf("conntrack flushed %v times, want 1", got)
	}
}

func TestKernelForeignServiceSurvives(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 1)
	h := rawIPVS(t)
	foreign := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("198.51.100.200"), Port: 443}, "rr")
	if err := errors.Join(h.NewService(foreign), h.NewDestination(foreign, toDest(destKey{netip.MustParseAddr("203.0.113.9"), 443}, 7))); err != nil {
		t.Fatal(err)
	}
	want := "TCP 198.51.100.200:443 rr -> 203.0.113.9:443 w=7"
	web := table(vip("tcp web.marathon:80", []string{"11.0.0.5"}, backendsOf(f.servers4...)...))
	for _, tb := range []*discovery.Table{web, table(), web} {
		apply(t, f.x, tb)
		f.x.repair(context.Background())
		if got := renderIPVS(t, h); !slices.Contains(got, want) {
			t.Fatalf("foreign service gone or changed: kernel =\n\t%s", strings.Join(got, "\n\t"))
		}
	}
}

func TestKernelRepairsHandDeletedService(t *testing.T) {
	f := newFixture(t, IPVSConfig{RepairInterval: 200 * time.Millisecond}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	vipAddr := netip.MustParseAddrPort("11.0.0.6:80")
	apply(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.6"}, backendsOf(f.servers4...)...)))
	h := rawIPVS(t)
	want := renderIPVS(t, h)
	// ipvsadm -D -t 11.0.0.6:80; ip route del local 11.0.0.6 dev vbtest0 table local
	if err := h.DelService(toService(serviceKey{Proto: protoTCP, Addr: vipAddr.Addr(), Port: 80}, "")); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName(testIface)
	if err != nil {
		t.Fatal(err)
	}
	route := &netlink.Route{
		LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: vipAddr.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)},
		Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST,
	}
	if err := netlink.RouteDel(route); err != nil {
		t.Fatalf("delete the local route of %s: %v", vipAddr.Addr(), err)
	}
	start := time.Now()
	waitFor(t, 3*time.Second, "the service and the local route to come back", func() bool {
		return slices.Equal(renderIPVS(t, h), want) && slices.Equal(localVIPs(t), []string{"11.0.0.6"})
	})
	t.Logf("service back after %v (repair interval 200ms)", time.Since(start).Round(time.Millisecond))
	if c := dialVIP(t, vipAddr); c.backend != f.servers4[0].name {
		t.Errorf("connection after repair went to %q", c.backend)
	}
	if got := metricValue(t, f.x.met.driftRepairs); got < 2 {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v, want >= 2 (service, address)", got)
	}
}

func TestKernelRestartConverges(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 2)
	b0, b1 := f.servers4[0].addr.String(), f.servers4[1].addr.String()
	stored := table(
		vip("tcp web.marathon:80", []string{"11.0.0.7"}, b0, b1),
		vip("udp dns.marathon:53", []string{"11.0.0.8"}, b0),
		vip("tcp 198.51.100.9:443", []string{"198.51.100.9"}, b1),
	)
	// The first run also had tcp 198.51.100.9:8443, whose removal was
	// stored before the run could delete its service.
	apply(t, f.x, table(append(stored.VIPs.Slice(), vip("tcp 198.51.100.9:8443", []string{"198.51.100.9"}, b0))...))
	f.x.Close()

	second, err := NewIPVS(IPVSConfig{Interface: testIface, Ranges: testRanges})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// The second run is given the stored table first, then Marathon's.
	apply(t, second, stored)
	if lines := renderIPVS(t, rawIPVS(t)); slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TCP 198.51.100.9:8443 ") }) {
		t.Errorf("leftover on the stored IP VIP address survived the stored table: kernel = %q", lines)
	}
	apply(t, second, table(vip("tcp web.marathon:80", []string{"11.0.0.7"}, b1)))
	// The TCP backends that left drain until their connection counts are
	// read: they have none.
	second.drainPass(context.Background())
	checkLines(t, "kernel after restart", renderIPVS(t, rawIPVS(t)), []string{"TCP 11.0.0.7:80 wlc -> " + b1 + " w=1"})
	checkLines(t, "local VIP addresses", localVIPs(t), []string{"11.0.0.7"})
	m, err := newNFTMasq(0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if _, cur, err := m.read(); err != nil || !slices.Equal(sortedAddrs(cur), []string{"11.0.0.7"}) {
		t.Errorf("masquerade set = %v, %v; want 11.0.0.7 only", sortedAddrs(cur), err)
	}
	if c := dialVIP(t, netip.MustParseAddrPort("11.0.0.7:80")); c.backend != f.servers4[1].name {
		t.Errorf("connection after restart went to %q", c.backend)
	}

	// The IP VIP address is released: a service another process puts
	// there later survives a repair.
	h := rawIPVS(t)
	foreign := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("198.51.100.9"), Port: 443}, "rr")
	if err := h.NewService(foreign); err != nil {
		t.Fatal(err)
	}
	second.repair(context.Background())
	checkLines(t, "kernel after a repair", renderIPVS(t, h), []string{"TCP 11.0.0.7:80 wlc -> " + b1 + " w=1", "TCP 198.51.100.9:443 rr"})
	if err := h.DelService(foreign); err != nil {
		t.Fatal(err)
	}
}

// localVIPs lists the addresses made local through the test interface,
// read with github.com/vishvananda/netlink: the local routes through it.
func localVIPs(t testing.TB) []string {
	t.Helper()
	l, err := netlink.LinkByName(testIface)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Table: unix.RT_TABLE_LOCAL, LinkIndex: l.Attrs().Index},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	if err != nil {
		t.Fatalf("list local routes: %v", err)
	}
	var out []string
	for _, r := range rs {
		if r.Type == unix.RTN_LOCAL && r.Protocol == rtprotVIPBridge && r.Dst != nil {
			out = append(out, r.Dst.IP.String())
		}
	}
	slices.Sort(out)
	return out
}

// countingKernel counts the dumps and writes that reach a kernel, and
// passes batches on to batch if not nil.
type countingKernel struct {
	kernel
	batch         batchWriter
	dumps, writes int
}

func (c *countingKernel) writeBatch(ops []op) []error {
	if c.batch == nil {
		errs := make([]error, len(ops))
		for i, o := range ops {
			errs[i] = write(c, o)
		}
		return errs
	}
	c.writes += len(ops)
	return c.batch.writeBatch(ops)
}

func (c *countingKernel) GetServices() ([]*ipvs.Service, error) {
	c.dumps++
	return c.kernel.GetServices()
}
func (c *countingKernel) NewService(s *ipvs.Service) error { c.writes++; return c.kernel.NewService(s) }
func (c *countingKernel) UpdateService(s *ipvs.Service) error {
	c.writes++
	return c.kernel.UpdateService(s)
}
func (c *countingKernel) DelService(s *ipvs.Service) error { c.writes++; return c.kernel.DelService(s) }
func (c *countingKernel) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes++
	return c.kernel.NewDestination(s, d)
}
func (c *countingKernel) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes++
	return c.kernel.UpdateDestination(s, d)
}
func (c *countingKernel) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes++
	return c.kernel.DelDestination(s, d)
}

func TestKernelNoopSyncWritesNothing(t *testing.T) {
	f := newFixture(t, IPVSConfig{}, 2)
	ck := &countingKernel{kernel: f.x.k, batch: f.x.k.(batchWriter)}
	f.x.k = ck
	tb := table(
		vip("tcp web.marathon:80", []string{"11.0.0.10", "fd01:c::10"}, append(backendsOf(f.servers4...), backendsOf(f.servers6...)...)...),
		vip("udp dns.marathon:53", []string{"11.0.0.10"}, backendsOf(f.servers4...)...),
	)
	apply(t, f.x, tb)
	writes, dumps := ck.writes, ck.dumps
	apply(t, f.x, tb)
	if ck.writes != writes || ck.dumps != dumps {
		t.Errorf("no-op Apply: %d writes, %d dumps; want none", ck.writes-writes, ck.dumps-dumps)
	}
	f.x.repair(context.Background())
	if ck.writes != writes || ck.dumps != dumps+1 {
		t.Errorf("no-op repair: %d writes, %d dumps; want 0 writes, 1 dump", ck.writes-writes, ck.dumps-dumps)
	}
	if got := metricValue(t, f.x.met.driftRepairs); got != 0 {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v after a no-op repair, want 0", got)
	}
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

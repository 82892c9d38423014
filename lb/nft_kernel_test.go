//go:build linux

package lb

// Tests of the nftables dataplane against this machine's kernel, natively:
// each runs in a child process of the test binary that lives in a fresh
// network namespace (the "node"), with backends and a client in further
// namespaces behind veth pairs (backendNet). They need root; without it,
// or without nf_tables, they skip, and fail under CI=true or
// VIPBRIDGE_KERNEL_TESTS=1.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/vipbridge/vipbridge/discovery"
)

const netnsChildEnv = "VIPBRIDGE_TEST_NETNS_CHILD"

// requireNFT skips a test that lacks root or nf_tables, or fails it
// under CI=true or VIPBRIDGE_KERNEL_TESTS=1.
func requireNFT(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("VIPBRIDGE_KERNEL_TESTS") == "1" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v (needs root and nf_tables)", what, err)
}

// inOwnNetns runs the calling top-level test in a child process of the
// test binary created in a fresh network namespace, so that the test may
// program "the host" at will. It returns true in the child, which runs
// the test; the parent relays the child's output and verdict and gets
// false.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) == t.Name() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("set lo up: %v", err)
		}
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		requireNFT(t, "start a process in a new network namespace", err)
	}
	text := string(out)
	if err != nil {
		t.Fatalf("in its own network namespace: %v\n%s", err, text)
	}
	t.Log("in its own network namespace:\n" + text)
	if m := regexp.MustCompile(`(?m)^\s*\S+\.go:\d+: (.*)\n--- SKIP`).FindStringSubmatch(text); m != nil || strings.Contains(text, "--- SKIP") {
		t.Skip("skipped in its own network namespace")
	}
	return false
}

// nftFixture is the nftables dataplane on this (the child's) namespace,
// n backend namespaces serving port 8080 (TCP and UDP, IPv4 and IPv6),
// and a client namespace routed through this one (a forwarded client).
// This namespace forwards, and its default routes lead to the client
// namespace, so that its own (local) clients have a route to the VIPs.
type nftFixture struct {
	x        *NFTables
	nets     []*backendNet
	client   *backendNet
	servers4 []*server
	servers6 []*server
}

func newNFTFixture(t *testing.T, cfg NFTConfig, n int) *nftFixture {
	t.Helper()
	requireNFT(t, "nftables features", ProbeNFTables())
	x, err := NewNFTables(cfg)
	if err != nil {
		t.Fatalf("NewNFTables() = %v", err)
	}
	t.Cleanup(x.Close)
	f := &nftFixture{x: x}
	for i := range n {
		b := newBackendNet(t, i)
		f.nets = append(f.nets, b)
		f.servers4 = append(f.servers4, b.serve(t, fmt.Sprintf("b%d", i), b.v4, 8080))
		f.servers6 = append(f.servers6, b.serve(t, fmt.Sprintf("b%d6", i), b.v6, 8080))
	}
	f.client = newBackendNet(t, 9)
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host, err := netlink.LinkByName("vbh9")
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range []netip.Addr{f.client.v4, f.client.v6} {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			t.Fatalf("default route via %s: %v", gw, err)
		}
	}
	f.client.in(t, func() error {
		l, err := netlink.LinkByName("vbp9")
		if err != nil {
			return err
		}
		for _, gw := range []netip.Addr{f.client.v4.Prev(), f.client.v6.Prev()} {
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
				return fmt.Errorf("default route via %s: %w", gw, err)
			}
		}
		return nil
	})
	return f
}

// dialFrom connects to vip from namespace b (nil: this one).
func dialFrom(t testing.TB, b *backendNet, vip netip.AddrPort) *conn {
	t.Helper()
	if b == nil {
		return dialVIP(t, vip)
	}
	var c *conn
	b.in(t, func() error {
		c = dialVIP(t, vip)
		return nil
	})
	return c
}

// udpFrom opens an unconnected UDP socket in b (nil: this namespace).
func udpFrom(t testing.TB, b *backendNet) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	open := func() (err error) {
		pc, err = net.ListenPacket("udp", ":0")
		return err
	}
	if b == nil {
		if err := open(); err != nil {
			t.Fatal(err)
		}
	} else {
		b.in(t, open)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestNFTWeightsSpreadTCPAndUDP(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{}, 2)
	// b1 has weight 2, b0 weight 1: b1 should get about two thirds.
	tb := table(
		vip("tcp web.marathon:80", []string{"11.0.0.1", "fd01:c::1"},
			f.servers4[0].addr.String(), f.servers4[1].addr.String()+" w=2",
			f.servers6[0].addr.String(), f.servers6[1].addr.String()+" w=2"),
		vip("udp dns.marathon:53", []string{"11.0.0.1"}, f.servers4[0].addr.String(), f.servers4[1].addr.String()+" w=2"),
	)
	if err := f.x.Apply(context.Background(), tb); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	for _, s := range f.x.State()[tb.VIPs.At(0).Key] {
		if s.Status != StatusProgrammed {
			t.Errorf("State() = %+v, want programmed", s)
		}
	}
	// 150 samples: b0's count is binomial(150, 1/3), mean 50, sd 5.8;
	// 25..75 is more than 4 sd either side.
	const n = 150
	check := func(what string, got map[string]int, light string) {
		t.Helper()
		if got[light] < 25 || got[light] > 75 {
			t.Errorf("%s: %v; want about %d of %d at %s (weight 1 of 3)", what, got, n/3, n, light)
		}
	}
	for _, c := range []struct {
		name  string
		from  *backendNet
		vip   string
		light string
	}{
		{"local IPv4", nil, "11.0.0.1:80", "b0"},
		{"forwarded IPv4", f.client, "11.0.0.1:80", "b0"},
		{"local IPv6", nil, "[fd01:c::1]:80", "b06"},
		{"forwarded IPv6", f.client, "[fd01:c::1]:80", "b06"},
	} {
		var got []string
		for range n {
			cc := dialFrom(t, c.from, netip.MustParseAddrPort(c.vip))
			got = append(got, cc.backend)
			cc.Close()
		}
		check(c.name+" TCP to "+c.vip, counts(got), c.light)
		t.Logf("%s TCP to %s: %v", c.name, c.vip, counts(got))
	}
	var got []string
	for range n {
		pc := udpFrom(t, nil)
		name, err := askUDP(pc, netip.MustParseAddrPort("11.0.0.1:53"))
		pc.Close()
		if err != nil {
			t.Fatalf("UDP to 11.0.0.1:53: %v", err)
		}
		got = append(got, name)
	}
	check("UDP to 11.0.0.1:53", counts(got), "b0")
	t.Logf("local UDP to 11.0.0.1:53: %v", counts(got))
}

// syncNow runs one sync as Apply does and returns its writes; full reads
// the kernel first, as a repair that found the generation moved.
func syncNow(t testing.TB, x *NFTables, full bool) int {
	t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	if full {
		x.view = nil
	}
	n, err := x.sync(context.Background(), trigApply)
	if err != nil {
		t.Fatalf("sync() = %v", err)
	}
	return n
}

func applyNFT(t testing.TB, x *NFTables, tb *discovery.Table) {
	t.Helper()
	if err := x.Apply(context.Background(), tb); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
}

func TestNFTDrainKeepsEstablished(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{Drain: 2 * time.Second}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	vipAddr := netip.MustParseAddrPort("11.0.0.2:80")
	applyNFT(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, backendsOf(f.servers4...)...)))
	first := dialFrom(t, f.client, vipAddr)
	kept, other := f.servers4[0], f.servers4[1]
	if first.backend != kept.name {
		kept, other = other, kept
	}

	// Unhealthy: weight 0 in the table.
	applyNFT(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, kept.addr.String()+" w=0", other.addr.String())))
	for range 20 {
		if c := dialFrom(t, f.client, vipAddr); c.backend != other.name {
			t.Fatalf("new connection went to %s at weight 0", c.backend)
		}
	}
	if err := first.echo("still there"); err != nil {
		t.Fatalf("established connection to the weight-0 backend: %v", err)
	}

	// Gone: its connection lives on until the drain time is over.
	applyNFT(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.2"}, other.addr.String())))
	for range 20 {
		if c := dialFrom(t, f.client, vipAddr); c.backend != other.name {
			t.Fatalf("new connection went to %s after it left", c.backend)
		}
	}
	if err := first.echo("draining"); err != nil {
		t.Fatalf("established connection to the draining backend: %v", err)
	}
	st := f.x.State()[table(vip("tcp web.marathon:80", nil)).VIPs.At(0).Key]
	if len(st) != 1 || len(st[0].Backends) != 2 || !slices.ContainsFunc(st[0].Backends, func(b BackendState) bool { return b.Draining && b.Addr == kept.addr }) {
		t.Errorf("State() = %+v, want %s draining", st, kept.addr)
	}
	waitFor(t, 30*time.Second, "the drained backend's connection to end after the drain time", func() bool {
		_ = first.SetDeadline(time.Now().Add(2 * time.Second))
		return first.echo("after the drain") != nil
	})
}

func TestNFTRemovedUDPBackendGetsNothing(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{}, 2)
	vipAddr := netip.MustParseAddrPort("11.0.0.4:53")
	applyNFT(t, f.x, table(vip("udp dns.marathon:53", []string{"11.0.0.4"}, backendsOf(f.servers4...)...)))
	c := udpFrom(t, f.client)
	name, err := askUDP(c, vipAddr)
	if err != nil {
		t.Fatalf("UDP to %s: %v", vipAddr, err)
	}
	gone, stays := f.servers4[0], f.servers4[1]
	if name != gone.name {
		gone, stays = stays, gone
	}
	applyNFT(t, f.x, table(vip("udp dns.marathon:53", []string{"11.0.0.4"}, stays.addr.String())))
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
}

func TestNFTNoBackendRefuses(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{}, 1)
	tcp4, tcp6 := netip.MustParseAddrPort("11.0.0.5:80"), netip.MustParseAddrPort("[fd01:c::5]:80")
	applyNFT(t, f.x, table(
		vip("tcp web.marathon:80", []string{"11.0.0.5", "fd01:c::5"}, f.servers4[0].addr.String(), f.servers6[0].addr.String()),
		vip("udp dns.marathon:53", []string{"11.0.0.5"}),
	))
	est := dialFrom(t, f.client, tcp4)
	// Every backend at weight 0: new connections are refused at once, the
	// established one goes on.
	applyNFT(t, f.x, table(
		vip("tcp web.marathon:80", []string{"11.0.0.5", "fd01:c::5"}, f.servers4[0].addr.String()+" w=0", f.servers6[0].addr.String()+" w=0"),
		vip("udp dns.marathon:53", []string{"11.0.0.5"}),
	))
	for _, from := range []*backendNet{nil, f.client} {
		for _, a := range []netip.AddrPort{tcp4, tcp6} {
			var err error
			dial := func() error {
				var c net.Conn
				if c, err = net.DialTimeout("tcp", a.String(), 5*time.Second); err == nil {
					c.Close()
				}
				return nil
			}
			if from == nil {
				dial()
			} else {
				from.in(t, dial)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial %s from %v = %v, want connection refused", a, from != nil, err)
			}
		}
	}
	if err := est.echo("still there"); err != nil {
		t.Errorf("established connection after every backend went to weight 0: %v", err)
	}
	// UDP: an ICMP port unreachable, seen by a connected socket.
	u, err := net.Dial("udp", "11.0.0.5:53")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = u.Write([]byte("?"))
	if _, err := u.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("UDP to 11.0.0.5:53 without backend: read = %v, want connection refused", err)
	}
}

// lbChains lists the service chains of both tables, sorted.
func lbChains(t testing.TB) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		chains, err := c.ListChainsOfTableFamily(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chains {
			if strings.HasPrefix(ch.Table.Name, lbTable) && strings.HasPrefix(ch.Name, chainPrefix) {
				out = append(out, ch.Table.Name+" "+ch.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestNFTForeignTableSurvivesAndDriftIsRepaired(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{RepairInterval: 100 * time.Millisecond}, 1)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	// A foreign process's table, with a NAT chain of its own.
	foreign := c.AddTable(&nftables.Table{Name: "foreign", Family: nftables.TableFamilyIPv4})
	c.AddChain(&nftables.Chain{Name: "pre", Table: foreign, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	vipAddr := netip.MustParseAddrPort("11.0.0.6:80")
	web := table(vip("tcp web.marathon:80", []string{"11.0.0.6", "fd01:c::6"}, f.servers4[0].addr.String(), f.servers6[0].addr.String()))
	for _, tb := range []*discovery.Table{web, table(), web} {
		applyNFT(t, f.x, tb)
		f.x.repair(context.Background(), true)
		if _, err := c.ListChain(foreign, "pre"); err != nil {
			t.Fatalf("foreign table's chain gone: %v", err)
		}
	}
	if n := syncNow(t, f.x, true); n != 0 {
		t.Errorf("sync after reading the kernel back = %d writes, want 0 (read-back differs from intent)", n)
	}
	if n := syncNow(t, f.x, false); n != 0 {
		t.Errorf("no-op sync = %d writes, want 0", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	want := lbChains(t)
	k := serviceKey{Proto: protoTCP, Addr: vipAddr.Addr(), Port: 80}
	fam, _ := f.x.family(k)
	lb4 := &nftables.Table{Name: fam.table.Name, Family: nftables.TableFamilyIPv4} // the service's table
	main4 := &nftables.Table{Name: lbTable, Family: nftables.TableFamilyIPv4}
	tamper := []struct {
		name string
		do   func()
	}{
		// nft flush table ip vipbridge_lb_NN
		{"flushed table", func() { c.FlushTable(lb4) }},
		// nft delete table ip vipbridge_lb_NN
		{"deleted table", func() { c.DelTable(lb4) }},
		// nft delete element ip vipbridge_lb_NN vips { 11.0.0.6 . tcp . 80 }
		{"deleted dispatch element", func() {
			_ = c.SetDeleteElements(&nftables.Set{Table: lb4, Name: lbVIPs}, []nftables.SetElement{{Key: dispatchKey(k)}})
		}},
		// nft flush chain ip vipbridge_lb_NN vip-tcp-11.0.0.6-80
		{"flushed service chain", func() { c.FlushChain(&nftables.Chain{Table: lb4, Name: "vip-tcp-11.0.0.6-80"}) }},
		// nft delete table ip vipbridge_lb (the nobackend set and filter chains)
		{"deleted main table", func() { c.DelTable(main4) }},
	}
	for _, tt := range tamper {
		tt.do()
		if err := c.Flush(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if cc, err := net.DialTimeout("tcp", vipAddr.String(), time.Second); err == nil {
			cc.Close()
			if tt.name != "deleted dispatch element" && tt.name != "deleted main table" {
				t.Errorf("%s: a connection still went through", tt.name)
			}
		}
		waitFor(t, 30*time.Second, tt.name+" to be repaired", func() bool {
			cc, err := net.DialTimeout("tcp", vipAddr.String(), time.Second)
			if err == nil {
				cc.Close()
			}
			return err == nil && slices.Equal(lbChains(t), want)
		})
		dialFrom(t, f.client, vipAddr).Close()
		dialFrom(t, f.client, netip.MustParseAddrPort("[fd01:c::6]:80")).Close()
	}
	if _, err := c.ListChain(foreign, "pre"); err != nil {
		t.Fatalf("foreign table's chain gone: %v", err)
	}
	if got := metricValue(t, f.x.met.driftRepairs); got < float64(len(tamper)) {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v, want >= %d", got, len(tamper))
	}
}

func TestNFTRestartConverges(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{}, 2)
	b0, b1 := f.servers4[0].addr.String(), f.servers4[1].addr.String()
	applyNFT(t, f.x, table(
		vip("tcp web.marathon:80", []string{"11.0.0.7"}, b0, b1),
		vip("udp dns.marathon:53", []string{"11.0.0.8"}, b0),
		vip("tcp old.marathon:80", []string{"11.0.0.9", "fd01:c::9"}, b1, f.servers6[1].addr.String()),
		vip("udp olddns.marathon:53", []string{"11.0.0.10"}, b1),
	))
	f.x.Close()
	// A chain of a kept service in a table that is not its shard's (as a
	// run with another lbShards would leave it).
	web := serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.7"), Port: 80}
	_, i := f.x.family(web)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.AddChain(&nftables.Chain{Name: serviceName(chainPrefix, web), Table: f.x.fams[(i+1)%lbShards].table})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	// A new daemon on the same kernel, with a changed table: the old VIP
	// goes, the others are kept as they are, the stray chain goes.
	x, err := NewNFTables(NFTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	applyNFT(t, x, table(
		vip("tcp web.marathon:80", []string{"11.0.0.7"}, b0, b1),
		vip("udp dns.marathon:53", []string{"11.0.0.8"}, b0, b1),
	))
	var want []string
	for _, k := range []serviceKey{{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.7"), Port: 80}, {Proto: protoUDP, Addr: netip.MustParseAddr("11.0.0.8"), Port: 53}} {
		f, _ := x.family(k)
		want = append(want, f.table.Name+" "+serviceName(chainPrefix, k))
	}
	slices.Sort(want)
	if got := lbChains(t); !slices.Equal(got, want) {
		t.Errorf("chains after restart = %q, want %q", got, want)
	}
	// The backends the earlier run programmed and this table lacks leave
	// as any other: the TCP one drains, the UDP one's flows are deleted.
	old := drainKey{Svc: serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.9"), Port: 80},
		Dest: destKey{Addr: f.servers4[1].addr.Addr(), Port: f.servers4[1].addr.Port()}}
	if _, ok := x.drains[old]; !ok {
		t.Errorf("drains after restart = %v, want %v draining", x.drains, old)
	}
	if got := metricValue(t, x.met.ops.WithLabelValues("flush_conntrack")); got == 0 {
		t.Errorf("no conntrack flush after restart for the removed UDP backend")
	}
	if n := syncNow(t, x, true); n != 0 {
		t.Errorf("sync after restart = %d writes, want 0", n)
	}
	seen := map[string]int{}
	for range 20 {
		seen[dialFrom(t, f.client, netip.MustParseAddrPort("11.0.0.7:80")).backend]++
	}
	if len(seen) != 2 {
		t.Errorf("20 connections after restart went to %v, want both backends", seen)
	}
	if cc, err := net.DialTimeout("tcp", "11.0.0.9:80", time.Second); err == nil {
		cc.Close()
		t.Errorf("the removed VIP 11.0.0.9:80 still connects")
	}
}

// TestNFTWatchRepairsAtOnce: with a repair interval far away, a foreign
// commit to the dataplane's table is repaired from its notification.
func TestNFTWatchRepairsAtOnce(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	f := newNFTFixture(t, NFTConfig{RepairInterval: time.Hour}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.x.Run(ctx) }()
	vipAddr := netip.MustParseAddrPort("11.0.0.10:80")
	applyNFT(t, f.x, table(vip("tcp web.marathon:80", []string{"11.0.0.10"}, f.servers4[0].addr.String())))
	dialFrom(t, f.client, vipAddr).Close()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	fam, _ := f.x.family(serviceKey{Proto: protoTCP, Addr: vipAddr.Addr(), Port: 80})
	c.DelTable(fam.table) // nft delete table ip vipbridge_lb_NN
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted table to come back without a periodic repair", func() bool {
		cc, err := net.DialTimeout("tcp", vipAddr.String(), time.Second)
		if err == nil {
			cc.Close()
		}
		return err == nil
	})
	if got := metricValue(t, f.x.met.driftRepairs); got < 1 {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v, want >= 1", got)
	}
}

// TestNFTRemoveLBTables: what the IPVS dataplane does at start removes
// every table of the nftables dataplane and nothing else.
func TestNFTRemoveLBTables(t *testing.T) {
	ns := newNetns(t)
	requireNFT(t, "nftables features", probeNFTables(int(ns)))
	x, err := NewNFTables(NFTConfig{NetNS: int(ns)})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.Apply(context.Background(), table(vip("tcp web.marathon:80", []string{"11.0.0.1", "fd01:c::1"}, "192.0.2.2:80", "[2001:db8::2]:80"))); err != nil {
		t.Fatal(err)
	}
	n, err := removeLBTables(int(ns))
	if err != nil || n != 2*lbShards {
		t.Errorf("removeLBTables() = %d, %v; want %d", n, err, 2*lbShards)
	}
	c, err := newNFTConn(int(ns))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != nftTable {
		t.Errorf("tables left: %v, want only inet %s", ts, nftTable)
	}
}

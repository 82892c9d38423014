package lb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vipbridge/vipbridge/discovery"
)

var testRanges = []netip.Prefix{netip.MustParsePrefix("11.0.0.0/8"), netip.MustParsePrefix("fd01:c::/64")}

// vip builds a table VIP: spec is "tcp web.marathon:80" or "udp
// 198.51.100.7:53", addrs its VIP addresses, backends "addr:port" with an
// optional " w=0" (or another weight).
func vip(spec string, addrs []string, backends ...string) discovery.VIP {
	f := strings.Fields(spec)
	p, _ := discovery.ParseProtocol(f[0])
	i := strings.LastIndex(f[1], ":")
	host, port := f[1][:i], f[1][i+1:]
	var v discovery.VIP
	v.Key.Protocol = p
	fmt.Sscan(port, &v.Key.Port)
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		v.Key.IP = ip
	} else {
		v.Key.Name = host
	}
	for _, a := range addrs {
		if ip := netip.MustParseAddr(a); ip.Is4() {
			v.Addr4 = ip
		} else {
			v.Addr6 = ip
		}
	}
	for _, b := range backends {
		addr, w, _ := strings.Cut(b, " w=")
		be := discovery.Backend{Addr: netip.MustParseAddrPort(addr), Weight: 1}
		if w != "" {
			fmt.Sscan(w, &be.Weight)
		}
		v.Backends = append(v.Backends, be)
	}
	slices.SortFunc(v.Backends, func(a, b discovery.Backend) int { return a.Addr.Compare(b.Addr) })
	return v
}

func table(vips ...discovery.VIP) *discovery.Table {
	t := discovery.NewTable(vips, nil, nil)
	t.Built = time.Now()
	return t
}

// renderIPVS lists every service and destination of k as sorted text,
// ipvsadm style: "TCP 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=1".
func renderIPVS(t testing.TB, k kernel) []string {
	t.Helper()
	svcs, err := k.GetServices()
	if err != nil {
		t.Fatalf("GetServices() = %v", err)
	}
	var out []string
	for _, s := range svcs {
		sk, _, _ := fromService(s)
		head := fmt.Sprintf("%s %s %s", strings.ToUpper(discovery.Protocol(sk.Proto).String()),
			netip.AddrPortFrom(sk.Addr, sk.Port), s.SchedName)
		ds, err := k.GetDestinations(s)
		if err != nil {
			t.Fatalf("GetDestinations(%s) = %v", sk, err)
		}
		if len(ds) == 0 {
			out = append(out, head)
		}
		for _, d := range ds {
			hd, _ := fromDest(d)
			out = append(out, fmt.Sprintf("%s -> %s w=%d", head, netip.AddrPortFrom(hd.Key.Addr, hd.Key.Port), hd.Weight))
		}
	}
	slices.Sort(out)
	return out
}

// metricValue reads the value of a counter or gauge.
func metricValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

func checkLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s =\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func sortedAddrs(m map[netip.Addr]struct{}) []string {
	var out []string
	for a := range m {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

type fakes struct {
	x   *IPVS
	k   *fakeKernel
	sys *fakeSystem
	reg *prometheus.Registry
}

func newFakes(t testing.TB, cfg IPVSConfig, k *fakeKernel, sys *fakeSystem) fakes {
	t.Helper()
	if cfg.Ranges == nil {
		cfg.Ranges = testRanges
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	x, err := newIPVS(cfg, k, sys)
	if err != nil {
		t.Fatalf("newIPVS() = %v", err)
	}
	return fakes{x: x, k: k, sys: sys, reg: reg}
}

func apply(t testing.TB, x *IPVS, tb *discovery.Table) {
	t.Helper()
	if err := x.Apply(context.Background(), tb); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
}

var webTable = table(
	vip("tcp web.marathon:80", []string{"11.0.0.1", "fd01:c::1"},
		"192.0.2.2:31000", "192.0.2.3:31001 w=0", "[2001:db8::2]:8080"),
	vip("udp 198.51.100.7:53", []string{"198.51.100.7"}, "192.0.2.4:53", "192.0.2.5:53"),
)

func TestIPVSApplyProgramsTable(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	apply(t, f.x, webTable)
	checkLines(t, "kernel", renderIPVS(t, f.k), []string{
		"TCP 11.0.0.1:80 wlc -> 192.0.2.2:31000 w=1",
		"TCP 11.0.0.1:80 wlc -> 192.0.2.3:31001 w=0",
		"TCP [fd01:c::1]:80 wlc -> [2001:db8::2]:8080 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.4:53 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.5:53 w=1",
	})
	wantAddrs := []string{"11.0.0.1", "198.51.100.7", "fd01:c::1"}
	checkLines(t, "interface addresses", sortedAddrs(f.sys.ifAddrs), wantAddrs)
	checkLines(t, "masquerade set", sortedAddrs(f.sys.masq), wantAddrs)

	st := f.x.State()
	web := st[webTable.VIPs.At(0).Key]
	if len(web) != 2 || web[0].Status != StatusProgrammed || web[1].Status != StatusProgrammed {
		t.Fatalf("State()[web] = %+v, want two programmed services", web)
	}
	if got := web[0].Backends; len(got) != 2 || got[1].Weight != 0 || got[1].Draining {
		t.Errorf("State()[web][0].Backends = %+v, want 192.0.2.2 w=1 and 192.0.2.3 w=0", got)
	}
	if got := metricValue(t, f.x.met.services); got != 3 {
		t.Errorf("vipbridge_lb_services = %v, want 3", got)
	}

	// A sync in progress (the lock held) does not block State.
	f.x.mu.Lock()
	done := make(chan struct{})
	go func() { f.x.State(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("State() blocked while a sync ran")
	}
	f.x.mu.Unlock()
}

func TestIPVSNoopSyncWritesNothing(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	apply(t, f.x, webTable)
	writes, dumps := f.k.writes, f.k.dumps
	apply(t, f.x, webTable)
	if f.k.writes != writes || f.k.dumps != dumps {
		t.Errorf("no-op Apply: %d writes, %d dumps; want none", f.k.writes-writes, f.k.dumps-dumps)
	}
	f.x.repair(context.Background())
	if f.k.writes != writes || f.k.dumps != dumps+1 {
		t.Errorf("no-op repair: %d writes, %d dumps; want 0 writes, 1 dump", f.k.writes-writes, f.k.dumps-dumps)
	}
	if got := metricValue(t, f.x.met.driftRepairs); got != 0 {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v after a no-op repair, want 0", got)
	}
}

func TestIPVSLeavesForeignServices(t *testing.T) {
	k := newFakeKernel()
	foreign := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("10.96.0.1"), Port: 443}, "rr")
	inRange := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.9"), Port: 80}, "wlc")
	if err := errors.Join(k.NewService(foreign), k.NewDestination(foreign, toDest(destKey{netip.MustParseAddr("10.0.0.5"), 6443}, 3)),
		k.NewService(inRange)); err != nil {
		t.Fatal(err)
	}
	f := newFakes(t, IPVSConfig{}, k, newFakeSystem())
	for _, tb := range []*discovery.Table{webTable, table(), webTable} {
		apply(t, f.x, tb)
		f.x.repair(context.Background())
		lines := renderIPVS(t, k)
		if !slices.Contains(lines, "TCP 10.96.0.1:443 rr -> 10.0.0.5:6443 w=3") {
			t.Fatalf("foreign service gone or changed: kernel =\n\t%s", strings.Join(lines, "\n\t"))
		}
		if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TCP 11.0.0.9:80") }) {
			t.Errorf("leftover service in the VIP range survived: kernel =\n\t%s", strings.Join(lines, "\n\t"))
		}
	}
}

func TestIPVSRepairsDrift(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	apply(t, f.x, webTable)
	want := renderIPVS(t, f.k)
	// ipvsadm -D, ipvsadm -e -w 5, ip addr del, nft flush set.
	web4 := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1"), Port: 80}, "wlc")
	udp := toService(serviceKey{Proto: protoUDP, Addr: netip.MustParseAddr("198.51.100.7"), Port: 53}, "wlc")
	if err := errors.Join(f.k.DelService(web4), f.k.UpdateDestination(udp, toDest(destKey{netip.MustParseAddr("192.0.2.4"), 53}, 5))); err != nil {
		t.Fatal(err)
	}
	delete(f.sys.ifAddrs, netip.MustParseAddr("fd01:c::1"))
	clear(f.sys.masq)

	f.x.repair(context.Background())
	checkLines(t, "kernel after repair", renderIPVS(t, f.k), want)
	checkLines(t, "interface addresses", sortedAddrs(f.sys.ifAddrs), []string{"11.0.0.1", "198.51.100.7", "fd01:c::1"})
	checkLines(t, "masquerade set", sortedAddrs(f.sys.masq), []string{"11.0.0.1", "198.51.100.7", "fd01:c::1"})
	// add_service + 2 add_backend + update_backend + add_address + masquerade set.
	if got := metricValue(t, f.x.met.driftRepairs); got != 6 {
		t.Errorf("vipbridge_lb_drift_repairs_total = %v, want 6", got)
	}
}

func TestIPVSApplyRereadsStaleView(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	apply(t, f.x, webTable)
	udp := toService(serviceKey{Proto: protoUDP, Addr: netip.MustParseAddr("198.51.100.7"), Port: 53}, "wlc")
	if err := f.k.DelService(udp); err != nil {
		t.Fatal(err)
	}
	next := table(*webTable.VIPs.At(0), vip("udp 198.51.100.7:53", []string{"198.51.100.7"}, "192.0.2.4:53", "192.0.2.5:53", "192.0.2.6:53"))
	apply(t, f.x, next) // the first attempt adds a backend to a missing service
	checkLines(t, "kernel", renderIPVS(t, f.k)[3:], []string{
		"UDP 198.51.100.7:53 wlc -> 192.0.2.4:53 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.5:53 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.6:53 w=1",
	})
}

func TestIPVSDrainsTCPBackends(t *testing.T) {
	f := newFakes(t, IPVSConfig{Drain: time.Minute}, newFakeKernel(), newFakeSystem())
	now := t0
	f.x.now = func() time.Time { return now }
	two := table(vip("tcp web.marathon:80", []string{"11.0.0.1"}, "192.0.2.2:8080", "192.0.2.3:8080"))
	one := table(vip("tcp web.marathon:80", []string{"11.0.0.1"}, "192.0.2.3:8080"))
	svc := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1"), Port: 80}, "wlc")
	setActive := func(n int) {
		f.k.mu.Lock()
		k := destKey{netip.MustParseAddr("192.0.2.2"), 8080}
		d := f.k.dests[fkeyOf(svc)][k]
		d.ActiveConnections = n
		f.k.dests[fkeyOf(svc)][k] = d
		f.k.mu.Unlock()
	}
	apply(t, f.x, two)
	setActive(2)
	apply(t, f.x, one)
	checkLines(t, "kernel while draining", renderIPVS(t, f.k), []string{
		"TCP 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0",
		"TCP 11.0.0.1:80 wlc -> 192.0.2.3:8080 w=1",
	})
	if b := f.x.State()[one.VIPs.At(0).Key][0].Backends[0]; !b.Draining || b.ActiveConns != 0 {
		t.Errorf("State() backend = %+v, want draining (counts not read yet)", b)
	}
	now = now.Add(30 * time.Second)
	f.x.drainPass(context.Background())
	if b := f.x.State()[one.VIPs.At(0).Key][0].Backends[0]; !b.Draining || b.ActiveConns != 2 {
		t.Errorf("State() backend = %+v, want draining with 2 active connections", b)
	}
	setActive(0)
	f.x.drainPass(context.Background())
	checkLines(t, "kernel once drained", renderIPVS(t, f.k), []string{"TCP 11.0.0.1:80 wlc -> 192.0.2.3:8080 w=1"})

	// A busy backend goes when its time is over.
	apply(t, f.x, two)
	setActive(5)
	apply(t, f.x, one)
	now = now.Add(59 * time.Second)
	f.x.drainPass(context.Background())
	if n := len(renderIPVS(t, f.k)); n != 2 {
		t.Fatalf("backend deleted before its drain time")
	}
	now = now.Add(time.Second)
	f.x.drainPass(context.Background())
	checkLines(t, "kernel after the drain time", renderIPVS(t, f.k), []string{"TCP 11.0.0.1:80 wlc -> 192.0.2.3:8080 w=1"})
	if n := len(f.x.drains); n != 0 {
		t.Errorf("%d drains left, want 0", n)
	}
}

func TestIPVSRemovesUDPBackendsAtOnce(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	apply(t, f.x, webTable)
	apply(t, f.x, table(*webTable.VIPs.At(0), vip("udp 198.51.100.7:53", []string{"198.51.100.7"}, "192.0.2.5:53")))
	checkLines(t, "kernel", renderIPVS(t, f.k)[3:], []string{"UDP 198.51.100.7:53 wlc -> 192.0.2.5:53 w=1"})
	apply(t, f.x, table(*webTable.VIPs.At(0)))
	want := []flow{
		{Proto: protoUDP, VIP: netip.MustParseAddrPort("198.51.100.7:53"), Backend: netip.MustParseAddr("192.0.2.4")},
		{Proto: protoUDP, VIP: netip.MustParseAddrPort("198.51.100.7:53"), Backend: netip.MustParseAddr("192.0.2.5")},
	}
	if !slices.Equal(f.sys.flows, want) {
		t.Errorf("flushed flows = %v, want %v", f.sys.flows, want)
	}
	if _, ok := f.sys.ifAddrs[netip.MustParseAddr("198.51.100.7")]; ok {
		t.Errorf("address of the removed IP VIP still on the interface")
	}
}

func TestIPVSRestartConverges(t *testing.T) {
	k, sys := newFakeKernel(), newFakeSystem()
	ipVIP := netip.MustParseAddr("198.51.100.7")
	first := newFakes(t, IPVSConfig{}, k, sys)
	apply(t, first.x, table(append(webTable.VIPs.Slice(),
		vip("tcp api.marathon:443", []string{"11.0.0.2"}, "192.0.2.7:443"),
		vip("tcp web.marathon:8080", []string{"11.0.0.1"}, "192.0.2.8:80"),
		vip("tcp 198.51.100.7:53", []string{"198.51.100.7"}, "192.0.2.4:53"))...))
	// A weight-0 leftover of a drain the first run did not finish.
	web := toService(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1"), Port: 80}, "wlc")
	if err := k.NewDestination(web, toDest(destKey{netip.MustParseAddr("192.0.2.9"), 80}, 0)); err != nil {
		t.Fatal(err)
	}

	// The second run starts from the stored table, which lost the IP VIP
	// tcp 198.51.100.7:53 before the first run removed its service: the
	// service is cleaned because the stored table still has the address.
	second := newFakes(t, IPVSConfig{}, k, sys)
	apply(t, second.x, webTable)
	checkLines(t, "kernel after the stored table", renderIPVS(t, k), []string{
		"TCP 11.0.0.1:80 wlc -> 192.0.2.2:31000 w=1",
		"TCP 11.0.0.1:80 wlc -> 192.0.2.3:31001 w=0",
		"TCP [fd01:c::1]:80 wlc -> [2001:db8::2]:8080 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.4:53 w=1",
		"UDP 198.51.100.7:53 wlc -> 192.0.2.5:53 w=1",
	})
	// Then Marathon's table drops the IP VIP.
	apply(t, second.x, table(*webTable.VIPs.At(0)))
	checkLines(t, "kernel", renderIPVS(t, k), []string{
		"TCP 11.0.0.1:80 wlc -> 192.0.2.2:31000 w=1",
		"TCP 11.0.0.1:80 wlc -> 192.0.2.3:31001 w=0",
		"TCP [fd01:c::1]:80 wlc -> [2001:db8::2]:8080 w=1",
	})
	checkLines(t, "interface addresses", sortedAddrs(sys.ifAddrs), []string{"11.0.0.1", "fd01:c::1"})
	checkLines(t, "masquerade set", sortedAddrs(sys.masq), []string{"11.0.0.1", "fd01:c::1"})
	if _, ok := second.x.ipVIPs[ipVIP]; ok {
		t.Errorf("%s still owned after its services went", ipVIP)
	}
}

// TestIPVSReleasesIPVIPs checks that an IP VIP address is owned while a
// table asks for it or a service on it drains, and released after: a
// service another process then puts there is left alone.
func TestIPVSReleasesIPVIPs(t *testing.T) {
	f := newFakes(t, IPVSConfig{Drain: time.Minute}, newFakeKernel(), newFakeSystem())
	now := t0
	f.x.now = func() time.Time { return now }
	ipVIP := netip.MustParseAddr("198.51.100.8")
	svc := serviceKey{Proto: protoTCP, Addr: ipVIP, Port: 80}
	apply(t, f.x, table(vip("tcp 198.51.100.8:80", []string{"198.51.100.8"}, "192.0.2.2:8080")))
	f.k.mu.Lock()
	d := f.k.dests[svc][destKey{netip.MustParseAddr("192.0.2.2"), 8080}]
	d.ActiveConnections = 1
	f.k.dests[svc][destKey{netip.MustParseAddr("192.0.2.2"), 8080}] = d
	f.k.mu.Unlock()

	owned := func() bool { _, ok := f.x.ipVIPs[ipVIP]; return ok }
	apply(t, f.x, table())
	f.x.drainPass(context.Background())
	if !owned() || len(renderIPVS(t, f.k)) != 1 {
		t.Fatalf("while its backend drains: owned %v, kernel %q; want owned, the service kept", owned(), renderIPVS(t, f.k))
	}
	now = now.Add(time.Minute)
	f.x.drainPass(context.Background())
	if owned() || len(renderIPVS(t, f.k)) != 0 {
		t.Fatalf("after the drain: owned %v, kernel %q; want released, no service", owned(), renderIPVS(t, f.k))
	}

	// Another process takes the address; repairs leave its service be.
	foreign := toService(svc, "rr")
	if err := f.k.NewService(foreign); err != nil {
		t.Fatal(err)
	}
	f.x.repair(context.Background())
	checkLines(t, "kernel after a repair", renderIPVS(t, f.k), []string{"TCP 198.51.100.8:80 rr"})
}

func TestIPVSWriteErrorsShowInState(t *testing.T) {
	f := newFakes(t, IPVSConfig{}, newFakeKernel(), newFakeSystem())
	f.k.fail = syscall.ENOMEM
	err := f.x.Apply(context.Background(), webTable)
	if !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("Apply() = %v, want ENOMEM", err)
	}
	st := f.x.State()[webTable.VIPs.At(1).Key]
	if len(st) != 1 || st[0].Status != StatusError || !strings.Contains(st[0].Reason, "cannot allocate memory") {
		t.Errorf("State()[udp] = %+v, want an error with the reason", st)
	}
	if got := metricValue(t, f.x.met.opErrors.WithLabelValues("add_service")); got == 0 {
		t.Errorf("vipbridge_lb_operation_errors_total{op=add_service} = 0, want > 0")
	}
	f.k.fail = nil
	apply(t, f.x, webTable)
	for k, ss := range f.x.State() {
		for _, s := range ss {
			if s.Status != StatusProgrammed {
				t.Errorf("State()[%v] = %+v after recovery, want programmed", k, s)
			}
		}
	}
}

func TestIPVSRunRepairsUntilCancelled(t *testing.T) {
	f := newFakes(t, IPVSConfig{RepairInterval: 10 * time.Millisecond}, newFakeKernel(), newFakeSystem())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.x.Run(ctx) }()
	apply(t, f.x, webTable)
	want := renderIPVS(t, f.k)
	if err := f.k.DelService(toService(serviceKey{Proto: protoUDP, Addr: netip.MustParseAddr("198.51.100.7"), Port: 53}, "")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(renderIPVS(t, f.k), want) {
		if time.Now().After(deadline) {
			t.Fatalf("hand-deleted service not back after 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}

func TestNewIPVSWithoutKernelSupport(t *testing.T) {
	if checkIPVS() == nil {
		t.Skip("this kernel has IPVS")
	}
	_, err := NewIPVS(IPVSConfig{})
	if err == nil || !strings.Contains(err.Error(), "ip_vs") {
		t.Errorf("NewIPVS() = %v, want an error naming the ip_vs module", err)
	}
}

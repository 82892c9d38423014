//go:build linux

package main

// TestDaemonIPVS runs the whole daemon (`vipbridge run --lb ipvs`) against
// a real IPVS kernel. This machine's kernel has none: the test skips here
// and runs in a throwaway VM (../shared/tools/kvm-run):
//
//	CGO_ENABLED=0 go test -c -o /tmp/vb.test ./cmd/vipbridge
//	../shared/tools/kvm-run --mem 1G -e VIPBRIDGE_KERNEL_TESTS=1 /tmp/vb.test -test.run TestDaemonIPVS -test.v
//
// With VIPBRIDGE_KERNEL_TESTS=1 a kernel without IPVS is a failure. The
// test changes the root network namespace (the VM's) and cleans up after
// itself. Backends live in network namespaces behind veth pairs with
// TEST-NET-1 addresses (192.0.2.0/24) and no route back: their answers
// reach the client only through the daemon's masquerade rule.

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

const (
	kernelIface = "vbtest0"
	// kernelWait bounds every wait: the VM is emulated (TCG) and slow.
	kernelWait = 60 * time.Second
)

// requireIPVS skips without IPVS (or root), unless VIPBRIDGE_KERNEL_TESTS=1
// asks for a failure.
func requireIPVS(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("VIPBRIDGE_KERNEL_TESTS") == "1" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v; run it in the kvm-run VM (see kernel_test.go)", what, err)
}

// kernelBackend is a network namespace behind a veth pair: the root side
// has 192.0.2.<4i+1>/30, the namespace ip = 192.0.2.<4i+2>.
type kernelBackend struct {
	ns netns.NsHandle
	ip netip.Addr
}

func newKernelBackend(t *testing.T, i int) *kernelBackend {
	t.Helper()
	b := &kernelBackend{ns: netns.None(), ip: netip.AddrFrom4([4]byte{192, 0, 2, byte(4*i + 2)})}
	b.enter(t, func() (err error) { // a fresh namespace, kept by handle
		b.ns, err = netns.New()
		return err
	})
	t.Cleanup(func() { b.ns.Close() })
	host, peer := fmt.Sprintf("vbdh%d", i), fmt.Sprintf("vbdp%d", i)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer, PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", host, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	inNS, err := netlink.NewHandleAt(b.ns)
	if err != nil {
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	defer inNS.Close()
	root, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		ip   netip.Addr
	}{{root, host, b.ip.Prev()}, {inNS, peer, b.ip}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: side.ip.AsSlice(), Mask: net.CIDRMask(30, 32)}}
		if err := side.h.AddrAdd(l, a); err != nil {
			t.Fatalf("add %s to %s: %v", side.ip, side.name, err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", side.name, err)
		}
	}
	return b
}

// enter runs fn on a locked thread in b's namespace (or, before b.ns is
// set, in whatever namespace fn creates), then returns the thread to the
// root namespace: sockets fn opens stay in b's.
func (b *kernelBackend) enter(t *testing.T, fn func() error) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if b.ns.IsOpen() {
		if err := netns.Set(b.ns); err != nil {
			t.Fatal(err)
		}
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		requireIPVS(t, "network namespace (needs root)", ferr)
	}
}

// serve accepts TCP connections on b.ip:port and writes name on a line.
func (b *kernelBackend) serve(t *testing.T, name string, port uint16) {
	t.Helper()
	var ln net.Listener
	b.enter(t, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(b.ip, port).String())
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
}

// whoAnswers connects to addr and returns the backend name it reads.
func whoAnswers(addr netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// ipvsLines renders the kernel's IPVS services and destinations, sorted:
// "TCP 11.0.0.1:80 wlc -> 192.0.2.2:31000 w=1", or the service alone
// without destinations.
func ipvsLines(t *testing.T, h *ipvs.Handle) []string {
	t.Helper()
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatalf("GetServices() = %v", err)
	}
	var out []string
	for _, s := range svcs {
		ip, _ := netip.AddrFromSlice(s.Address)
		head := fmt.Sprintf("%s %s %s", map[uint16]string{unix.IPPROTO_TCP: "TCP", unix.IPPROTO_UDP: "UDP"}[s.Protocol],
			netip.AddrPortFrom(ip.Unmap(), s.Port), s.SchedName)
		ds, err := h.GetDestinations(s)
		if err != nil {
			t.Fatalf("GetDestinations(%s) = %v", head, err)
		}
		if len(ds) == 0 {
			out = append(out, head)
		}
		for _, d := range ds {
			dip, _ := netip.AddrFromSlice(d.Address)
			out = append(out, fmt.Sprintf("%s -> %s w=%d", head, netip.AddrPortFrom(dip.Unmap(), d.Port), d.Weight))
		}
	}
	slices.Sort(out)
	return out
}

// cleanKernel removes every IPVS service, the dummy interface and the
// daemon's nftables table (the VM is the test's own).
func cleanKernel(t *testing.T, h *ipvs.Handle) {
	if err := h.Flush(); err != nil {
		t.Errorf("flush ipvs: %v", err)
	}
	if l, err := netlink.LinkByName(kernelIface); err == nil {
		_ = netlink.LinkDel(l)
	}
	if c, err := nftables.New(); err == nil {
		c.DelTable(&nftables.Table{Name: "vipbridge", Family: nftables.TableFamilyINet})
		_ = c.Flush() // absent already: fine
	}
}

func kernelWaitFor(t *testing.T, d *daemon, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(kernelWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s\ndaemon log:\n%s", kernelWait, what, tail(d.logs.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kernelVIP is an element of /v1/vips with the dataplane state.
type kernelVIP struct {
	VIP     string     `json:"vip"`
	State   string     `json:"state"`
	Backend []struct{} `json:"backend"`
}

func TestDaemonIPVS(t *testing.T) {
	requireIPVS(t, "IPVS", lb.CheckIPVS())
	h, err := ipvs.New("")
	if err != nil {
		t.Fatalf("ipvs.New() = %v", err)
	}
	t.Cleanup(func() { cleanKernel(t, h); h.Close() }) // after the daemons stop
	backends := []*kernelBackend{newKernelBackend(t, 0), newKernelBackend(t, 1)}

	// Two agents, one web task on each. Host networking gives each task
	// its agent's first free host port; listeners follow the ground truth.
	sc, err := marathontest.ParseScenario([]byte(fmt.Sprintf(`{
		"agents": [{"ip": %q}, {"ip": %q}],
		"apps": [{"id": "/web", "instances": 2, "network": "host",
			"ports": [{"name": "http", "labels": {"VIP_0": "/web:80"}}]}]
	}`, backends[0].ip, backends[1].ip)))
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	served := map[string]bool{} // backend "ip:port", which is also its answer
	app, _ := sim.App("/web")
	for _, task := range app.Tasks {
		addr := netip.AddrPortFrom(task.AgentIP, task.HostPorts[0])
		backends[slices.IndexFunc(backends, func(b *kernelBackend) bool { return b.ip == task.AgentIP })].serve(t, addr.String(), addr.Port())
		served[addr.String()] = true
	}
	if len(served) != 2 {
		t.Fatalf("ground truth has %d distinct backends, want 2: %+v", len(served), app.Tasks)
	}

	dataDir := t.TempDir()
	start := func() *daemon {
		return startDaemonWith(t, dataDir, []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) {
			c.LB, c.LBInterface, c.LBDrain = "ipvs", kernelIface, 5*time.Second
		})
	}
	resolve := func(d *daemon) netip.AddrPort {
		var addr netip.Addr
		kernelWaitFor(t, d, webName+" to resolve", func() bool {
			r, err := d.query(webName, dns.TypeA)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return false
			}
			addr, _ = aRecord(r)
			return addr.IsValid()
		})
		return netip.AddrPortFrom(addr, 80)
	}
	programmed := func(d *daemon, n int) {
		kernelWaitFor(t, d, fmt.Sprintf("%s:80 programmed with %d backends", webName, n), func() bool {
			var vips []kernelVIP
			if err := d.getJSON("/v1/vips", &vips); err != nil {
				return false
			}
			i := slices.IndexFunc(vips, func(v kernelVIP) bool { return v.VIP == webName+":80" })
			return i >= 0 && vips[i].State == "programmed" && len(vips[i].Backend) == n
		})
	}
	reached := func(vip netip.AddrPort, n int) map[string]int {
		seen := map[string]int{}
		for range n {
			who, err := whoAnswers(vip)
			if err != nil {
				t.Fatalf("connect to %s: %v", vip, err)
			}
			if !served[who] {
				t.Fatalf("%s answered %q, not a backend", vip, who)
			}
			seen[who]++
		}
		return seen
	}

	d := start()
	vip := resolve(d)
	t.Logf("DNS: %s A %s", webName, vip.Addr())
	programmed(d, 2)
	seen := reached(vip, 6)
	t.Logf("6 connections to %s reached %v", vip, seen)
	if len(seen) != 2 {
		t.Errorf("6 connections to %s reached %v, want both backends", vip, seen)
	}

	// Scaling down kills the youngest task, the second agent's.
	if err := sim.ScaleApp("/web", 1); err != nil {
		t.Fatal(err)
	}
	app, _ = sim.App("/web")
	left := netip.AddrPortFrom(app.Tasks[0].AgentIP, app.Tasks[0].HostPorts[0])
	programmed(d, 1)
	if seen := reached(vip, 4); seen[left.String()] != 4 {
		t.Errorf("after scale down, 4 connections to %s reached %v, want only %s", vip, seen, left)
	}
	want := fmt.Sprintf("TCP %s wlc -> %s w=1", vip, left)
	kernelWaitFor(t, d, "the drained backend to leave the kernel", func() bool {
		return slices.Equal(slices.DeleteFunc(ipvsLines(t, h), func(l string) bool { return !strings.HasPrefix(l, "TCP "+vip.String()+" ") }), []string{want})
	})
	before := ipvsLines(t, h)
	t.Logf("kernel before restart: %q", before)

	// Restart on the same data dir, with leftovers planted meanwhile: a
	// weight-0 destination and an orphan service in the VIP range are
	// ours to clean; a service on an address not ours must stay.
	d.stop()
	svc := func(ap netip.AddrPort) *ipvs.Service {
		return &ipvs.Service{AddressFamily: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Address: ap.Addr().AsSlice(),
			Port: ap.Port(), SchedName: "wlc", Netmask: 0xffffffff}
	}
	dest := func(ap netip.AddrPort) *ipvs.Destination {
		return &ipvs.Destination{AddressFamily: unix.AF_INET, Address: ap.Addr().AsSlice(), Port: ap.Port(), ConnectionFlags: ipvs.ConnectionFlagMasq}
	}
	orphan, foreign := netip.MustParseAddrPort("11.255.255.254:9999"), netip.MustParseAddrPort("198.51.100.7:80")
	for _, s := range []netip.AddrPort{orphan, foreign} {
		if err := h.NewService(svc(s)); err != nil {
			t.Fatalf("plant service %s: %v", s, err)
		}
	}
	for _, p := range []struct{ svc, dst netip.AddrPort }{
		{vip, netip.AddrPortFrom(left.Addr(), 31999)}, {orphan, left}, {foreign, left},
	} {
		if err := h.NewDestination(svc(p.svc), dest(p.dst)); err != nil {
			t.Fatalf("plant destination %s in %s: %v", p.dst, p.svc, err)
		}
	}
	t.Logf("kernel while stopped: %q", ipvsLines(t, h))

	d = start()
	if got := resolve(d); got != vip {
		t.Errorf("after restart %s resolves to %s, want %s", webName, got, vip)
	}
	programmed(d, 1)
	wantAfter := slices.Sorted(slices.Values(append(slices.Clone(before), fmt.Sprintf("TCP %s wlc -> %s w=0", foreign, left))))
	kernelWaitFor(t, d, fmt.Sprintf("the kernel to converge after restart to %q", wantAfter), func() bool { return slices.Equal(ipvsLines(t, h), wantAfter) })
	if seen := reached(vip, 2); seen[left.String()] != 2 {
		t.Errorf("after restart, connections to %s reached %v, want only %s", vip, seen, left)
	}
}

//go:build linux

package main

// TestDaemonNFTables runs the whole daemon (`vipbridge run --lb nftables`)
// on this machine's kernel, natively (TestDaemonDataplaneIPVS, the same
// with --lb ipvs, in the kvm-run VM): the test re-runs itself in a child
// process created in a fresh network namespace (the node), with backends
// in namespaces behind veth pairs (newKernelBackend, plus IPv6) and a
// client namespace routed through the node (a forwarded client). It needs
// root and nf_tables; without them it skips, and fails under CI=true or
// VIPBRIDGE_KERNEL_TESTS=1.

import (
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
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

const netnsChildEnv = "VIPBRIDGE_TEST_NETNS_CHILD"

// requireNFTables skips without root or nf_tables, or fails under CI=true
// or VIPBRIDGE_KERNEL_TESTS=1.
func requireNFTables(t *testing.T, what string, err error) {
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
// test binary created in a fresh network namespace. It returns true in
// the child, which runs the test; the parent relays the child's output
// and verdict and gets false.
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
		requireNFTables(t, "start a process in a new network namespace", err)
	}
	if err != nil {
		t.Fatalf("in its own network namespace: %v\n%s", err, out)
	}
	t.Log("in its own network namespace:\n" + string(out))
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("skipped in its own network namespace")
	}
	return false
}

// addV6 gives backend i's veth pair 2001:db8:<i>::1 (node) and ::2 (the
// backend's namespace), and returns the backend's address.
func addV6(t *testing.T, b *kernelBackend, i int) netip.Addr {
	t.Helper()
	ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i), 15: 2})
	add := func(name string, a netip.Addr) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD})
	}
	if err := add(fmt.Sprintf("vbdh%d", i), ip.Prev()); err != nil {
		t.Fatal(err)
	}
	b.enter(t, func() error { return add(fmt.Sprintf("vbdp%d", i), ip) })
	return ip
}

// routeBoth makes the node and client namespace each other's default
// gateway, and lets the node forward: the client is a forwarded client,
// and the node's own processes have a route to the VIPs.
func routeBoth(t *testing.T, client *kernelBackend, client6 netip.Addr, i int) {
	t.Helper()
	for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	def := func(name string, gws ...netip.Addr) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		for _, gw := range gws {
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
				return fmt.Errorf("default route via %s: %w", gw, err)
			}
		}
		return nil
	}
	if err := def(fmt.Sprintf("vbdh%d", i), client.ip, client6); err != nil {
		t.Fatal(err)
	}
	client.enter(t, func() error { return def(fmt.Sprintf("vbdp%d", i), client.ip.Prev(), client6.Prev()) })
}

// whoAnswersFrom is whoAnswers from namespace b (nil: the node).
func whoAnswersFrom(t *testing.T, b *kernelBackend, addr netip.AddrPort) (string, error) {
	if b == nil {
		return whoAnswers(addr)
	}
	var who string
	var err error
	b.enter(t, func() error {
		who, err = whoAnswers(addr)
		return nil
	})
	return who, err
}

// lbChains lists the service chains of the daemon's nftables tables.
func lbChains(t *testing.T) []string {
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
			if strings.HasPrefix(ch.Table.Name, "vipbridge_lb") && strings.HasPrefix(ch.Name, "vip-") {
				out = append(out, ch.Table.Name+" "+ch.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestDaemonNFTables(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	requireNFTables(t, "nftables dataplane probe", lb.ProbeNFTables())
	daemonDataplaneSuite(t, "nftables")
}

// TestDaemonDataplaneIPVS holds the IPVS dataplane to the same
// specification as TestDaemonNFTables, but for the tampering with nftables
// tables (TestDaemonIPVS repairs and restarts IPVS). It needs IPVS: it runs
// in the kvm-run VM (scripts/test-kernel.sh) and skips elsewhere.
func TestDaemonDataplaneIPVS(t *testing.T) {
	requireIPVS(t, "IPVS", lb.CheckIPVS())
	if !inOwnNetns(t) {
		return
	}
	daemonDataplaneSuite(t, "ipvs")
}

// daemonDataplaneSuite runs the daemon with --lb kind on a dual-stack VIP:
// local and forwarded clients over IPv4 and IPv6, then (nftables) a
// foreign table kept and a flushed table repaired, and a restart.
func daemonDataplaneSuite(t *testing.T, kind string) {
	// Four agents, two IPv4 and two IPv6 (backends 0-3), and a client (9).
	var agents []netip.Addr
	var nets []*kernelBackend
	for i := range 4 {
		b := newKernelBackend(t, i)
		nets = append(nets, b)
		if i >= 2 {
			b = &kernelBackend{ns: b.ns, ip: addV6(t, b, i)}
			nets[i] = b
		}
		agents = append(agents, b.ip)
	}
	client := newKernelBackend(t, 9)
	routeBoth(t, client, addV6(t, client, 9), 9)

	sc, err := marathontest.ParseScenario([]byte(fmt.Sprintf(`{
		"agents": [{"ip": %q}, {"ip": %q}, {"ip": %q}, {"ip": %q}],
		"apps": [{"id": "/web", "instances": 4, "network": "host",
			"ports": [{"name": "http", "labels": {"VIP_0": "/web:80"}}]}]
	}`, agents[0], agents[1], agents[2], agents[3])))
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	served := map[string]bool{} // backend "ip:port", which is also its answer
	app, _ := sim.App("/web")
	for _, task := range app.Tasks {
		addr := netip.AddrPortFrom(task.AgentIP, task.HostPorts[0])
		nets[slices.Index(agents, task.AgentIP)].serve(t, addr.String(), addr.Port())
		served[addr.String()] = true
	}
	if len(served) != 4 {
		t.Fatalf("ground truth has %d distinct backends, want 4: %+v", len(served), app.Tasks)
	}

	dataDir := t.TempDir()
	start := func() *daemon {
		return startDaemonWith(t, dataDir, []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) {
			c.LB, c.LBInterface, c.LBDrain, c.LBRepairInterval = kind, kernelIface, 5*time.Second, 200*time.Millisecond
		})
	}
	resolve := func(d *daemon, qtype uint16) netip.Addr {
		var addr netip.Addr
		kernelWaitFor(t, d, fmt.Sprintf("%s %s to resolve", webName, dns.TypeToString[qtype]), func() bool {
			r, err := d.query(webName, qtype)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return false
			}
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					addr, _ = netip.AddrFromSlice(rr.A.To4())
				case *dns.AAAA:
					addr, _ = netip.AddrFromSlice(rr.AAAA)
				}
			}
			return addr.IsValid()
		})
		return addr
	}
	programmed := func(d *daemon) {
		kernelWaitFor(t, d, webName+":80 programmed", func() bool {
			var vips []kernelVIP
			if err := d.getJSON("/v1/vips", &vips); err != nil {
				return false
			}
			i := slices.IndexFunc(vips, func(v kernelVIP) bool { return v.VIP == webName+":80" })
			return i >= 0 && vips[i].State == "programmed" && len(vips[i].Backend) == 4
		})
	}
	// reachAll connects 24 times to each VIP address from the node and
	// from the client, and wants both backends of the family reached.
	reachAll := func(d *daemon, vips ...netip.AddrPort) {
		for _, vip := range vips {
			for _, from := range []*kernelBackend{nil, client} {
				seen := map[string]int{}
				for range 24 {
					who, err := whoAnswersFrom(t, from, vip)
					if err != nil {
						t.Fatalf("connect to %s (forwarded: %v): %v\ndaemon log:\n%s", vip, from != nil, err, tail(d.logs.String(), 3000))
					}
					if !served[who] {
						t.Fatalf("%s answered %q, not a backend", vip, who)
					}
					seen[who]++
				}
				if len(seen) != 2 {
					t.Errorf("24 connections to %s (forwarded: %v) reached %v, want both backends of its family", vip, from != nil, seen)
				}
			}
		}
	}

	d := start()
	vip4, vip6 := netip.AddrPortFrom(resolve(d, dns.TypeA), 80), netip.AddrPortFrom(resolve(d, dns.TypeAAAA), 80)
	t.Logf("DNS: %s A %s AAAA %s", webName, vip4.Addr(), vip6.Addr())
	programmed(d)
	reachAll(d, vip4, vip6)
	if kind != "nftables" {
		d.stop()
		d = start()
		programmed(d)
		reachAll(d, vip4, vip6)
		return
	}

	// A foreign table survives; a hand-flushed table of ours comes back.
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	foreign := c.AddTable(&nftables.Table{Name: "foreign", Family: nftables.TableFamilyINet})
	c.AddChain(&nftables.Chain{Name: "in", Table: foreign, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, "vipbridge_lb") {
			c.FlushTable(tb) // nft flush table ip vipbridge_lb…
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	kernelWaitFor(t, d, "the flushed table to be repaired", func() bool {
		who, err := whoAnswersFrom(t, nil, vip4)
		return err == nil && served[who]
	})
	reachAll(d, vip4)
	chains := lbChains(t)

	// Restart on the same data dir with an orphan planted meanwhile.
	d.stop()
	lb4 := &nftables.Table{Name: "vipbridge_lb", Family: nftables.TableFamilyIPv4}
	c.AddChain(&nftables.Chain{Name: "vip-tcp-11.255.255.254-9999", Table: lb4})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	d = start()
	programmed(d)
	kernelWaitFor(t, d, fmt.Sprintf("the chains after restart to be %q", chains), func() bool { return slices.Equal(lbChains(t), chains) })
	reachAll(d, vip4, vip6)
	if _, err := c.ListChain(foreign, "in"); err != nil {
		t.Errorf("the foreign table's chain is gone: %v", err)
	}
}

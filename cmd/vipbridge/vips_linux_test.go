//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/moby/ipvs"

	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// TestVIPsIPVS runs the daemon with --lb ipvs on a real IPVS kernel, makes
// connections through a VIP, and checks `vipbridge vips` shows the
// kernel's scheduler and the connections IPVS counted. It skips here and
// runs in the kvm-run VM (scripts/test-kernel.sh), like TestDaemonIPVS.
func TestVIPsIPVS(t *testing.T) {
	requireIPVS(t, "IPVS", lb.CheckIPVS())
	h, err := ipvs.New("")
	if err != nil {
		t.Fatalf("ipvs.New() = %v", err)
	}
	t.Cleanup(func() { cleanKernel(t, h); h.Close() }) // after the daemon stops
	b := newKernelBackend(t, 0)
	sc, err := marathontest.ParseScenario([]byte(fmt.Sprintf(`{"agents": [{"ip": %q}],
		"apps": [{"id": "/web", "instances": 1, "network": "host", "ports": [{"name": "http", "labels": {"VIP_0": "/web:80"}}]}]}`, b.ip)))
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	app, _ := sim.App("/web")
	backend := netip.AddrPortFrom(b.ip, app.Tasks[0].HostPorts[0])
	b.serve(t, backend.String(), backend.Port())
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) {
		c.LB, c.LBInterface = "ipvs", kernelIface
	})
	var vip netip.Addr
	kernelWaitFor(t, d, webName+" programmed", func() bool {
		r, err := d.query(webName, dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		vip, _ = aRecord(r)
		v, ok := d.vip(webName + ":80")
		return ok && len(v.Backend) == 1
	})
	for range 3 {
		if who, err := whoAnswers(netip.AddrPortFrom(vip, 80)); err != nil || who != backend.String() {
			t.Fatalf("connect to %s:80: %q, %v; want %s", vip, who, err, backend)
		}
	}
	line := regexp.MustCompile(`(?m)^  -> ` + regexp.QuoteMeta(backend.String()) + ` +1 +(\d+) +(\d+) +\S+$`)
	// The counts are the kernel's as of lb's last read, which the
	// periodic repair (lb.DefaultRepairInterval, 30 s) renews: the wait
	// spans a few of them.
	var out string
	deadline := time.Now().Add(3 * lb.DefaultRepairInterval)
	for {
		out, err = vipsOutput(t, d.addrs.HTTP.String(), "web.marathon")
		if m := line.FindStringSubmatch(out); err == nil && m != nil && m[1]+m[2] != "00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vipbridge vips shows no connection to %s after %v: %v\n%s", backend, 3*lb.DefaultRepairInterval, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("vipbridge vips web.marathon:\n%s", out)
	if want := fmt.Sprintf("TCP  %s:80 wlc programmed %s:80\n", vip, webName); !strings.Contains(out, want) {
		t.Errorf("vipbridge vips prints no %q:\n%s", want, out)
	}
}

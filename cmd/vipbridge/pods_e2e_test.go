package main

// End to end for Marathon pods: the demo's /cache pod, whose redis
// endpoint sits on a container network without a host port and whose
// metrics endpoint has one, through the daemon's DNS and /v1/vips; scale,
// kill and health follow the event stream.

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

const (
	cacheName   = "cache.marathon.l4lb.thisdcos.directory"
	metricsName = "cache-metrics.marathon.l4lb.thisdcos.directory"
)

// vipBackends returns name's backends as sorted "ip:port w=<weight>".
func vipBackends(d *daemon, name string) []string {
	v, ok := d.vip(name)
	if !ok {
		return nil
	}
	var out []string
	for _, b := range v.Backend {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(b.IP), uint16(b.Port)).String()+" w="+string(rune('0'+b.Weight)))
	}
	slices.Sort(out)
	return out
}

// podBackends returns the backends the simulator's instances of pod id
// should give: instance IP : container port, or agent : host port.
func podBackends(t *testing.T, sim *marathontest.Server, id string, hostPort bool, port uint16) []string {
	t.Helper()
	ins, err := sim.PodInstances(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range ins {
		if hostPort {
			out = append(out, netip.AddrPortFrom(in.AgentIP, in.HostPorts[0]).String()+" w=1")
		} else {
			out = append(out, netip.AddrPortFrom(in.IPs[0], port).String()+" w=1")
		}
	}
	slices.Sort(out)
	return out
}

func waitBackends(t *testing.T, d *daemon, name string, want func() []string) {
	t.Helper()
	var got []string
	waitFor(t, name+" backends", func() bool {
		got = vipBackends(d, name)
		return slices.Equal(got, want())
	})
}

func TestPodsEndToEnd(t *testing.T) {
	sim := startSim(t, "demo")
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()})
	redis := func() []string { return podBackends(t, sim, "/cache", false, 6379) }
	metrics := func() []string { return podBackends(t, sim, "/cache", true, 0) }

	t.Run("container network endpoint: instance IP : containerPort", func(t *testing.T) {
		waitBackends(t, d, cacheName+":6379", redis)
		for _, b := range redis() {
			if !netip.MustParsePrefix("127.1.0.0/16").Contains(netip.MustParseAddrPort(b[:len(b)-4]).Addr()) {
				t.Errorf("backend %s is not a container IP", b)
			}
		}
	})
	t.Run("host port endpoint: agent : host port", func(t *testing.T) {
		waitBackends(t, d, metricsName+":9121", metrics)
	})
	t.Run("VIP name resolves", func(t *testing.T) {
		waitFor(t, cacheName+" A", func() bool {
			r, err := d.query(cacheName, dns.TypeA)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return false
			}
			a, ok := aRecord(r)
			return ok && netip.MustParsePrefix("11.0.0.0/8").Contains(a)
		})
	})
	t.Run("instances get mesos-dns names", func(t *testing.T) {
		ins, _ := sim.PodInstances("/cache")
		var want []string
		for _, in := range ins {
			want = append(want, in.AgentIP.String())
		}
		slices.Sort(want)
		want = slices.Compact(want)
		waitFor(t, "cache.marathon.mesos A", func() bool {
			r, err := d.query("cache.marathon.mesos", dns.TypeA)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return false
			}
			var got []string
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = append(got, a.A.String())
				}
			}
			slices.Sort(got)
			return slices.Equal(got, want)
		})
	})
	t.Run("scale up follows", func(t *testing.T) {
		if err := sim.ScalePod("/cache", 3); err != nil {
			t.Fatal(err)
		}
		waitBackends(t, d, cacheName+":6379", redis)
		waitBackends(t, d, metricsName+":9121", metrics)
		if n := len(redis()); n != 3 {
			t.Fatalf("simulator has %d instances, want 3", n)
		}
	})
	t.Run("killed instance disappears (events only, no deployment)", func(t *testing.T) {
		ins, _ := sim.PodInstances("/cache")
		if err := sim.KillPodInstance(ins[0].ID); err != nil {
			t.Fatal(err)
		}
		waitBackends(t, d, cacheName+":6379", redis)
		waitBackends(t, d, metricsName+":9121", metrics)
	})
	t.Run("health flip drains", func(t *testing.T) {
		spec := marathontest.PodSpec{ID: "/checked", Instances: 1, HealthChecks: true, Containers: []marathontest.ContainerSpec{
			{Name: "app", Endpoints: []marathontest.EndpointSpec{{Name: "http", Labels: map[string]string{"VIP_0": "/checked:80"}}}}}}
		if err := sim.AddPod(spec); err != nil {
			t.Fatal(err)
		}
		name := "checked.marathon.l4lb.thisdcos.directory:80"
		ins, _ := sim.PodInstances("/checked")
		backend := netip.AddrPortFrom(ins[0].AgentIP, ins[0].HostPorts[0]).String()
		waitBackends(t, d, name, func() []string { return []string{backend + " w=1"} })
		if err := sim.SetPodHealth(ins[0].ID, false); err != nil {
			t.Fatal(err)
		}
		waitBackends(t, d, name, func() []string { return []string{backend + " w=0"} })
		if err := sim.SetPodHealth(ins[0].ID, true); err != nil {
			t.Fatal(err)
		}
		waitBackends(t, d, name, func() []string { return []string{backend + " w=1"} })
	})
	t.Run("pods are in /records", func(t *testing.T) {
		var recs struct {
			Records []struct {
				Name string `json:"name"`
			} `json:"records"`
		}
		if err := d.getJSON("/records", &recs); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, r := range recs.Records {
			names[r.Name] = true
		}
		for _, n := range []string{cacheName + ".", metricsName + ".", "cache.marathon.mesos."} {
			if !names[n] && !names[strings.TrimSuffix(n, ".")] {
				t.Errorf("/records lacks %s", n)
			}
		}
		if !strings.Contains(d.logs.String(), "pod fetched") {
			t.Errorf("no pod was fetched after an event")
		}
	})
	t.Run("removed pod goes NXDOMAIN", func(t *testing.T) {
		if err := sim.RemovePod("/cache"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, cacheName+" NXDOMAIN", func() bool {
			r, err := d.query(cacheName, dns.TypeA)
			return err == nil && r.Rcode == dns.RcodeNameError
		})
	})
}

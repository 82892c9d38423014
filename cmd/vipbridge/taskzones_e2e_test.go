package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// taskZoneScenario is "small" plus a framework that is not Marathon, whose
// task only the Mesos source knows.
func taskZoneScenario() *marathontest.Scenario {
	return &marathontest.Scenario{
		Agents: []marathontest.Agent{{ID: "tz-S0", IP: netip.MustParseAddr("127.0.0.2")}, {ID: "tz-S1", IP: netip.MustParseAddr("127.0.0.3")}},
		Apps: []marathontest.AppSpec{
			{ID: "/web", Instances: 2, Ports: []marathontest.PortSpec{{Name: "http", Labels: map[string]string{"VIP_0": "/web:80"}}}},
			{ID: "/db", Instances: 1, HealthChecks: true, Ports: []marathontest.PortSpec{{Name: "pg", Labels: map[string]string{"VIP_0": "/db:5432"}}}},
		},
		Frameworks: []marathontest.Framework{{Name: "hello-world", Tasks: []marathontest.FrameworkTask{
			{ID: "hello-0-server__1", Name: "hello-0-server", Agent: 1, Ports: []marathontest.DiscoveryPort{{Number: 31900, Name: "api", Protocol: "tcp", Scope: "host"}}},
		}}},
	}
}

// srvTargets are the targets of name's SRV answer, sorted.
func srvTargets(d *daemon, name string) []string {
	r, err := d.query(name, dns.TypeSRV)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, s.Target)
		}
	}
	slices.Sort(out)
	return out
}

// aAnswers are the A answers of name, sorted.
func aAnswers(d *daemon, name string) []string {
	r, err := d.query(name, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestTaskZonesEndToEnd follows a Marathon app through scale, kill, health
// flip and delete in every zone (.mesos, its mirror, autoip, l4lb), a
// non-Marathon task from the Mesos source, and a restart with both
// upstreams down that answers every zone from bbolt.
func TestTaskZonesEndToEnd(t *testing.T) {
	sim := marathontest.NewServer(taskZoneScenario())
	t.Cleanup(sim.Close)
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, []string{sim.URL()}, []string{sim.MesosURL()})

	const (
		webSRV    = "_web._tcp.marathon.mesos"
		mirrorSRV = "_web._tcp.marathon.mesos.thisdcos.directory"
		autoip    = "web.marathon.autoip.dcos.thisdcos.directory"
	)
	// every zone tells the same story: n tasks in .mesos and its mirror,
	// n backends in l4lb, and autoip names the agents .mesos names (the
	// host IP source).
	consistent := func(n int) bool {
		mesos, mirror := srvTargets(d, webSRV), srvTargets(d, mirrorSRV)
		v, _ := d.vip(webName + ":80")
		agents := aAnswers(d, autoip)
		return len(mesos) == n && len(mirror) == n && len(v.Backend) == n && len(agents) > 0 &&
			slices.Equal(agents, aAnswers(d, "web.marathon.mesos"))
	}
	waitFor(t, "2 web tasks in every zone", func() bool { return consistent(2) })

	t.Run("canonical names resolve to the agent", func(t *testing.T) {
		for _, target := range srvTargets(d, webSRV) {
			if got := aAnswers(d, target); len(got) != 1 || !netip.MustParsePrefix("127.0.0.0/8").Contains(netip.MustParseAddr(got[0])) {
				t.Errorf("%s A = %v, want one agent address", target, got)
			}
		}
	})
	t.Run("scale up appears in every zone", func(t *testing.T) {
		if err := sim.ScaleApp("/web", 3); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "3 web tasks in every zone", func() bool { return consistent(3) })
	})
	t.Run("a killed task leaves every zone", func(t *testing.T) {
		if err := sim.KillTask(sim.TaskIDs("/web")[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "2 web tasks in every zone", func() bool { return consistent(2) })
	})
	t.Run("health drains in l4lb and keeps the task in .mesos, as mesos-dns", func(t *testing.T) {
		id := sim.TaskIDs("/db")[0]
		if err := sim.SetHealth(id, false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "db weight 0", func() bool {
			v, ok := d.vip(dbName + ":5432")
			return ok && len(v.Backend) == 1 && v.Backend[0].Weight == 0
		})
		if got := aAnswers(d, "db.marathon.mesos"); len(got) != 1 {
			t.Errorf("db.marathon.mesos A = %v while unhealthy, want the task (mesos-dns names running tasks)", got)
		}
		if err := sim.SetHealth(id, true); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another framework's task comes from the Mesos source", func(t *testing.T) {
		waitFor(t, "hello-0-server in .mesos and autoip", func() bool {
			return slices.Equal(aAnswers(d, "hello-0-server.hello-world.mesos"), []string{"127.0.0.3"}) &&
				slices.Equal(aAnswers(d, "hello-0-server.hello-world.autoip.dcos.thisdcos.directory"), []string{"127.0.0.3"}) &&
				len(srvTargets(d, "_api._hello-0-server._tcp.hello-world.mesos")) == 1
		})
		if got := aAnswers(d, "leader.mesos"); len(got) != 1 {
			t.Errorf("leader.mesos A = %v, want the simulated master", got)
		}
	})

	webMesos := srvTargets(d, webSRV)
	t.Run("restart with both upstreams down answers every zone from bbolt", func(t *testing.T) {
		d.stop()
		marathonURL, mesosURL := sim.URL(), sim.MesosURL()
		sim.Close()
		d2 := startDaemon(t, dataDir, []string{marathonURL}, []string{mesosURL})
		// The first table holds the stored VIPs; the task zones follow in
		// the next round (discovery's tableBuilder.next).
		waitFor(t, webSRV+" from bbolt", func() bool { return slices.Equal(srvTargets(d2, webSRV), webMesos) })
		if got := aAnswers(d2, "hello-0-server.hello-world.mesos"); !slices.Equal(got, []string{"127.0.0.3"}) {
			t.Errorf("hello-0-server.hello-world.mesos after restart = %v, want [127.0.0.3]", got)
		}
		if got := aAnswers(d2, "leader.mesos"); len(got) != 1 {
			t.Errorf("leader.mesos after restart = %v, want the stored leader", got)
		}
		if got := aAnswers(d2, autoip); len(got) == 0 {
			t.Errorf("%s after restart: no answer", autoip)
		}
		digAnswers(t, d2, "hello-0-server.hello-world.mesos", "127.0.0.3")
	})
	t.Run("a deleted app leaves every zone", func(t *testing.T) {
		sim := marathontest.NewServer(taskZoneScenario())
		t.Cleanup(sim.Close)
		d := startDaemon(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()})
		waitFor(t, "web in .mesos", func() bool { return len(srvTargets(d, webSRV)) == 2 })
		if err := sim.DeleteApp("/web"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "web NXDOMAIN in .mesos, autoip and l4lb", func() bool {
			for _, name := range []string{"web.marathon.mesos", autoip, webName} {
				if r, err := d.query(name, dns.TypeA); err != nil || r.Rcode != dns.RcodeNameError {
					return false
				}
			}
			return true
		})
	})
}

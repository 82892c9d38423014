package main

// The Mesos operator stream end to end: the daemon follows the simulated
// master's SUBSCRIBE stream (through a standby's 307) and never polls
// /master/state; another framework's task start, health change and kill
// reach DNS; a master failover withdraws nothing that still runs; a
// framework merely named "marathon" keeps its VIPs from the start.

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

func streamScenario() *marathontest.Scenario {
	return &marathontest.Scenario{
		Agents: []marathontest.Agent{{IP: netip.MustParseAddr("127.0.0.2")}, {IP: netip.MustParseAddr("127.0.0.3")}},
		Apps: []marathontest.AppSpec{{ID: "/web", Instances: 2,
			Ports: []marathontest.PortSpec{{Name: "http", Protocol: "tcp", Labels: map[string]string{"VIP_0": "/web:80"}}}}},
		// Named "marathon", but not the followed Marathon (another ID).
		Frameworks: []marathontest.Framework{{ID: "other-marathon-0001", Name: "marathon", Tasks: []marathontest.FrameworkTask{
			{ID: "kafka-0", Name: "kafka-0", Agent: 1, Ports: []marathontest.DiscoveryPort{{Number: 9092, Scope: "host", Labels: map[string]string{"VIP_0": "/kafka:9092"}}}},
		}}},
	}
}

func TestMesosStreamEndToEnd(t *testing.T) {
	sim := marathontest.NewServer(streamScenario(), marathontest.WithStandbyMaster())
	t.Cleanup(sim.Close)
	// No Mesos resync within the test: what it sees comes from the stream.
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.StandbyMesosURL()}, func(c *config) {
		c.MesosInterval = time.Hour
	})

	t.Run("a framework named marathon that is not Marathon keeps its VIP", func(t *testing.T) {
		waitFor(t, "kafka's VIP with its backend", func() bool {
			v, ok := d.vip("kafka.marathon.l4lb.thisdcos.directory:9092")
			return ok && slices.Equal(backendSet(v), []string{"127.0.0.3:9092 w=1"})
		})
		waitFor(t, "kafka-0.marathon.mesos", func() bool { return slices.Equal(aAnswers(d, "kafka-0.marathon.mesos"), []string{"127.0.0.3"}) })
		waitFor(t, "web's VIP from Marathon", func() bool {
			v, ok := d.vip(webName + ":80")
			return ok && len(v.Backend) == 2
		})
	})

	t.Run("another framework's task starts, changes health and dies", func(t *testing.T) {
		const vipName = "spark.spark.l4lb.thisdcos.directory:4040"
		healthy := false
		if err := sim.StartFrameworkTask("spark", marathontest.FrameworkTask{ID: "spark-1", Name: "driver", Agent: 0, Healthy: &healthy,
			Ports: []marathontest.DiscoveryPort{{Number: 4040, Scope: "host", Labels: map[string]string{"VIP_0": "/spark:4040"}}}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spark's VIP, drained while unhealthy", func() bool {
			v, ok := d.vip(vipName)
			return ok && slices.Equal(backendSet(v), []string{"127.0.0.2:4040 w=0"})
		})
		waitFor(t, "driver.spark.mesos", func() bool { return slices.Equal(aAnswers(d, "driver.spark.mesos"), []string{"127.0.0.2"}) })
		if err := sim.SetFrameworkTaskHealth("spark-1", true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spark's backend at weight 1 once healthy", func() bool {
			v, ok := d.vip(vipName)
			return ok && slices.Equal(backendSet(v), []string{"127.0.0.2:4040 w=1"})
		})
		if err := sim.KillFrameworkTask("spark-1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "spark gone from l4lb and .mesos", func() bool {
			_, ok := d.vip(vipName)
			return !ok && aAnswers(d, "driver.spark.mesos") == nil
		})
	})

	t.Run("a master failover withdraws nothing still running", func(t *testing.T) {
		sim.FailoverMesos()
		waitFor(t, "the new master's stream", func() bool { return sim.MesosSubscribers() == 1 })
		for range 20 { // the new master's first snapshot has no task
			if v, ok := d.vip("kafka.marathon.l4lb.thisdcos.directory:9092"); !ok || len(v.Backend) != 1 {
				t.Fatalf("kafka's VIP after the failover = %+v, %v; want its backend kept", v, ok)
			}
			if got := aAnswers(d, "kafka-0.marathon.mesos"); !slices.Equal(got, []string{"127.0.0.3"}) {
				t.Fatalf("kafka-0.marathon.mesos after the failover = %v, want kept", got)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sim.ReregisterAgents()
		waitFor(t, "kafka still served once the agents are back", func() bool {
			v, ok := d.vip("kafka.marathon.l4lb.thisdcos.directory:9092")
			return ok && slices.Equal(backendSet(v), []string{"127.0.0.3:9092 w=1"})
		})
	})

	if n := sim.MesosRequests("/master/state"); n != 0 {
		t.Errorf("%d /master/state requests, want none", n)
	}
	if n := sim.MesosRequests("/api/v1"); n < 2 {
		t.Errorf("%d /api/v1 requests, want the standby's redirect and the leader's subscriptions", n)
	}
}

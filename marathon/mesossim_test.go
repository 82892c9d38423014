package marathon

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// simScenario has Marathon's web app and a framework that is named
// "marathon" too but is not the followed Marathon.
func simScenario() *marathontest.Scenario {
	return &marathontest.Scenario{
		Agents: []marathontest.Agent{{IP: netip.MustParseAddr("127.0.0.2")}, {IP: netip.MustParseAddr("127.0.0.3")}},
		Apps: []marathontest.AppSpec{{ID: "/web", Instances: 2,
			Ports: []marathontest.PortSpec{{Name: "http", Protocol: "tcp", Labels: map[string]string{"VIP_0": "/web:80"}}}}},
		Frameworks: []marathontest.Framework{{ID: "other-marathon-0001", Name: "marathon", Tasks: []marathontest.FrameworkTask{
			{ID: "kafka-0", Agent: 1, Ports: []marathontest.DiscoveryPort{{Number: 9092, Scope: "host", Labels: map[string]string{"VIP_0": "/kafka:9092"}}}},
		}}},
	}
}

// frameworkApps lists the IDs of the apps of a Mesos source snapshot.
func snapshotIDs(t *testing.T, s *MesosStream) []string {
	t.Helper()
	st, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return appIDs(st)
}

// TestMesosStreamSimulator: the simulator's master, subscribed through a
// standby's 307, streams another framework's task start, health change and
// kill; Marathon's own tasks (known by framework ID) are left out, a
// framework merely named "marathon" is not; nothing polls /master/state.
func TestMesosStreamSimulator(t *testing.T) {
	sim := marathontest.NewServer(simScenario(), marathontest.WithStandbyMaster())
	t.Cleanup(sim.Close)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{sim.URL()}, MesosURLs: []string{sim.StandbyMesosURL()}})
	noDNS(c)
	s, rec := runStream(t, c)
	rec.waitFor(t, "the subscription", atLeast("subscribed", 1))
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Fatalf("apps = %q, want the other marathon's kafka-0 only", got)
	}

	healthy := false
	if err := sim.StartFrameworkTask("spark", marathontest.FrameworkTask{ID: "spark-1", Agent: 0, Healthy: &healthy,
		Ports: []marathontest.DiscoveryPort{{Number: 4040, Scope: "host", Labels: map[string]string{"VIP_0": "/spark:4040"}}}}); err != nil {
		t.Fatal(err)
	}
	running := func(u discovery.Update) bool {
		return u.Kind == discovery.UpdateAppReplace && u.App.ID == "spark/spark-1" && u.App.Tasks[0].State == discovery.TaskRunning
	}
	us := rec.waitFor(t, "spark-1 running", func(us []discovery.Update) bool { return slices.ContainsFunc(us, running) })
	if task := us[slices.IndexFunc(us, running)].App.Tasks[0]; task.Health != discovery.HealthUnhealthy || task.AgentIP != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("spark-1 = %+v, want unhealthy, on 127.0.0.2", task)
	}
	if err := sim.SetFrameworkTaskHealth("spark-1", true); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "spark-1 healthy", func(us []discovery.Update) bool {
		return slices.ContainsFunc(us, func(u discovery.Update) bool {
			return u.Kind == discovery.UpdateAppReplace && u.App.ID == "spark/spark-1" && u.App.Tasks[0].Health == discovery.HealthHealthy
		})
	})
	if err := sim.KillFrameworkTask("spark-1"); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "spark-1 removed", func(us []discovery.Update) bool {
		return slices.ContainsFunc(us, func(u discovery.Update) bool {
			return u.Kind == discovery.UpdateAppRemoved && u.AppID == "spark/spark-1"
		})
	})
	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Errorf("apps after scaling Marathon's web = %q, want kafka-0 only", got)
	}
	if n := sim.MesosRequests("/master/state"); n != 0 {
		t.Errorf("%d /master/state requests, want none", n)
	}
}

// TestMesosStreamSimulatorWithoutSubscribe: a master without the operator
// API is polled.
func TestMesosStreamSimulatorWithoutSubscribe(t *testing.T) {
	sim := marathontest.NewServer(simScenario(), marathontest.WithoutSubscribe())
	t.Cleanup(sim.Close)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{sim.URL()}, MesosURLs: []string{sim.MesosURL()}})
	noDNS(c)
	s, _ := runStream(t, c)
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Errorf("apps = %q, want kafka-0", got)
	}
	if n := sim.MesosRequests("/master/state"); n != 1 {
		t.Errorf("%d /master/state requests, want 1", n)
	}
}

// TestMesosStreamSimulatorFailover: the simulated master fails over; its
// first snapshot lacks every task; nothing is withdrawn, and the tasks are
// back as TASK_ADDED once the agents re-register.
func TestMesosStreamSimulatorFailover(t *testing.T) {
	sim := marathontest.NewServer(simScenario())
	t.Cleanup(sim.Close)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{sim.URL()}, MesosURLs: []string{sim.MesosURL()}})
	noDNS(c)
	s, rec := runStream(t, c)
	rec.waitFor(t, "the subscription", atLeast("subscribed", 1))
	sim.FailoverMesos()
	rec.waitFor(t, "the new master's subscription", atLeast("subscribed", 2))
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Errorf("apps right after the failover = %q, want kafka-0 kept", got)
	}
	sim.ReregisterAgents()
	rec.waitFor(t, "kafka-0 added again", func(us []discovery.Update) bool {
		return slices.ContainsFunc(us, func(u discovery.Update) bool {
			return u.Kind == discovery.UpdateAppReplace && u.App.ID == "marathon/kafka-0" && u.App.Tasks[0].State == discovery.TaskRunning
		})
	})
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Errorf("apps after re-registration = %q, want kafka-0", got)
	}
}

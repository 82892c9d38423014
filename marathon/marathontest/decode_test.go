package marathontest_test

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// These tests run the simulator's output through the production decoders
// of package marathon and compare with the simulator's ground truth, so the
// two sides cannot drift apart silently.

func literal(host string) netip.Addr {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip
}

// checkTask compares a decoded task with the ground truth; task IPs only
// matter for container networking (DESIGN "Backends").
func checkTask(t *testing.T, app marathontest.App, got discovery.Task, want marathontest.Task) {
	t.Helper()
	if got.AgentIP != want.AgentIP {
		t.Errorf("%s task %s AgentIP = %v, want %v", app.ID, want.ID, got.AgentIP, want.AgentIP)
	}
	if !slices.Equal(got.HostPorts, want.HostPorts) {
		t.Errorf("%s task %s HostPorts = %v, want %v", app.ID, want.ID, got.HostPorts, want.HostPorts)
	}
	if app.Network != marathontest.NetworkHost && !slices.Equal(got.IPs, want.IPs) {
		t.Errorf("%s task %s IPs = %v, want %v", app.ID, want.ID, got.IPs, want.IPs)
	}
	if got.State != discovery.TaskRunning {
		t.Errorf("%s task %s State = %v, want running", app.ID, want.ID, got.State)
	}
	wantHealth := discovery.HealthNone
	if want.Healthy != nil {
		wantHealth = discovery.HealthUnhealthy
		if *want.Healthy {
			wantHealth = discovery.HealthHealthy
		}
	}
	if got.Health != wantHealth {
		t.Errorf("%s task %s Health = %v, want %v", app.ID, want.ID, got.Health, wantHealth)
	}
}

func TestDecodeAppsAgreesWithTruth(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []marathontest.Option
	}{
		{name: "1.5"},
		{name: "1.4", opts: []marathontest.Option{marathontest.WithLegacyShape()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDemo(t, tt.opts...)
			if err := s.SetHealth(s.TaskIDs("/shop/web")[0], false); err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(s.URL() + "/v2/apps?embed=apps.tasks")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			apps, err := marathon.DecodeApps(resp.Body, literal)
			if err != nil {
				t.Fatalf("DecodeApps: %v", err)
			}
			byID := map[string]discovery.App{}
			for _, a := range apps {
				byID[a.ID] = a
			}
			for _, want := range s.Apps() {
				got, ok := byID[want.ID]
				if !ok {
					t.Errorf("app %s not decoded", want.ID)
					continue
				}
				if got.HealthChecks != want.HealthChecks {
					t.Errorf("%s HealthChecks = %v, want %v", want.ID, got.HealthChecks, want.HealthChecks)
				}
				checkPorts(t, want, got)
				tasks := map[string]discovery.Task{}
				for _, task := range got.Tasks {
					tasks[task.ID] = task
				}
				for _, wt := range want.Tasks {
					gt, ok := tasks[wt.ID]
					if !ok {
						t.Errorf("%s task %s not decoded", want.ID, wt.ID)
						continue
					}
					checkTask(t, want, gt, wt)
					if gt.AgentID != wt.AgentID {
						t.Errorf("%s task %s AgentID = %q, want %q", want.ID, wt.ID, gt.AgentID, wt.AgentID)
					}
				}
			}
		})
	}
}

// checkPorts compares port kinds and VIP labels.
func checkPorts(t *testing.T, want marathontest.App, got discovery.App) {
	t.Helper()
	if len(got.Ports) != len(want.Ports) {
		t.Errorf("%s: %d ports decoded, want %d", want.ID, len(got.Ports), len(want.Ports))
		return
	}
	for i, wp := range want.Ports {
		gp := got.Ports[i]
		kind := discovery.PortHost
		switch {
		case want.Network == marathontest.NetworkBridge:
			kind = discovery.PortMapped
		case want.Network == marathontest.NetworkContainer && wp.HostPort != nil:
			kind = discovery.PortMapped
		case want.Network == marathontest.NetworkContainer:
			kind = discovery.PortContainer
		}
		if gp.Kind != kind {
			t.Errorf("%s port %d kind = %v, want %v", want.ID, i, gp.Kind, kind)
		}
		if kind == discovery.PortContainer && gp.ContainerPort != wp.ContainerPort {
			t.Errorf("%s port %d container port = %d, want %d", want.ID, i, gp.ContainerPort, wp.ContainerPort)
		}
		wantProtos, _ := discovery.ParseProtocols(wp.Protocol)
		if !slices.Equal(gp.Protocols, wantProtos) {
			t.Errorf("%s port %d protocols = %v, want %v", want.ID, i, gp.Protocols, wantProtos)
		}
		for k, v := range wp.Labels {
			if !slices.Contains(gp.Labels, discovery.Label{Key: k, Value: v}) {
				t.Errorf("%s port %d labels %v lack %s=%s", want.ID, i, gp.Labels, k, v)
			}
		}
	}
}

func TestDecodeEventsAgreeWithTruth(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	if err := s.ScaleApp("/db/postgres", 3); err != nil {
		t.Fatal(err)
	}
	shop := s.TaskIDs("/shop/web")[1]
	if err := s.SetHealth(shop, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp("/batch"); err != nil {
		t.Fatal(err)
	}
	db, _ := s.App("/db/postgres")
	newest := db.Tasks[2]

	var running, unhealthy, removed bool
	for !removed {
		f, err := st.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Heartbeat {
			continue
		}
		ups, err := marathon.DecodeEvent(f.Event, []byte(f.Data), literal)
		if err != nil {
			t.Fatalf("DecodeEvent(%s, %s): %v", f.Event, f.Data, err)
		}
		for _, u := range ups {
			switch {
			case u.Kind == discovery.UpdateTask && u.Task.ID == newest.ID && u.Task.State == discovery.TaskRunning && f.Event == "status_update_event":
				running = true
				if !slices.Equal(u.Task.IPs, newest.IPs) || u.AppID != "/db/postgres" || u.Task.AgentID != newest.AgentID {
					t.Errorf("status update of %s = %+v, want IPs %v on agent %s", newest.ID, u, newest.IPs, newest.AgentID)
				}
			case u.Kind == discovery.UpdateHealth && u.Health == discovery.HealthUnhealthy:
				unhealthy = unhealthy || u.TaskID != "" && strings.HasPrefix(shop, u.TaskID)
			case u.Kind == discovery.UpdateAppRemoved && u.AppID == "/batch":
				removed = true
			}
		}
	}
	if !running || !unhealthy {
		t.Errorf("decoded updates: running %v, unhealthy %v; want both", running, unhealthy)
	}
}

func TestDecodeMesosStateAgreesWithTruth(t *testing.T) {
	s := newDemo(t)
	resp, err := http.Get(s.MesosURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st, agents, err := marathon.DecodeMesosState(resp.Body, s.FrameworkID())
	if err != nil {
		t.Fatalf("DecodeMesosState: %v", err)
	}
	apps := st.Apps
	if len(agents) == 0 {
		t.Errorf("no agents decoded")
	}
	for name, ip := range agents {
		if !ip.IsLoopback() {
			t.Errorf("agent %s = %v, want a loopback address", name, ip)
		}
	}
	want := map[string]netip.Addr{
		"hello-world/hello-world-0-server__5f0e7f4c-2c7b-4c63-8f4a-0d6c3a7f0001": netip.MustParseAddr("127.1.200.1"),
		"hello-world/hello-world-1-server__5f0e7f4c-2c7b-4c63-8f4a-0d6c3a7f0002": netip.MustParseAddr("127.1.200.2"),
	}
	if len(apps) != len(want) {
		t.Errorf("decoded %d apps from other frameworks, want %d: %+v", len(apps), len(want), apps)
	}
	for _, a := range apps {
		ip, ok := want[a.ID]
		if !ok {
			t.Errorf("unexpected app %s", a.ID)
			continue
		}
		if a.Framework != "hello-world" || len(a.Tasks) != 1 || !slices.Contains(a.Tasks[0].IPs, ip) || a.Tasks[0].Health != discovery.HealthHealthy {
			t.Errorf("app %s = %+v, want framework hello-world, one healthy task with IP %v", a.ID, a, ip)
		}
		if len(a.Ports) != 1 || a.Ports[0].Kind != discovery.PortContainer || a.Ports[0].ContainerPort != 8000 ||
			!slices.Contains(a.Ports[0].Labels, discovery.Label{Key: "VIP_0", Value: "/api.hello-world:80"}) {
			t.Errorf("app %s ports = %+v", a.ID, a.Ports)
		}
	}

	// With no framework excluded, Marathon's own tasks decode too, with the
	// host ports Marathon reports.
	resp2, err := http.Get(s.MesosURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	allState, _, err := marathon.DecodeMesosState(resp2.Body, "")
	if err != nil {
		t.Fatal(err)
	}
	all := allState.Apps
	web, _ := s.App("/web")
	found := 0
	for _, a := range all {
		for _, task := range a.Tasks {
			for _, wt := range web.Tasks {
				if task.ID == wt.ID {
					found++
					if task.AgentIP != wt.AgentIP {
						t.Errorf("mesos task %s agent %v, want %v", wt.ID, task.AgentIP, wt.AgentIP)
					}
				}
			}
		}
	}
	if found != len(web.Tasks) {
		t.Errorf("found %d of %d /web tasks in the Mesos state", found, len(web.Tasks))
	}
}

// TestMesosStateNamesAgreeWithTruth decodes the simulator's Mesos state
// with no framework excluded (Mesos-only mode) and checks what mesos-dns
// and dcos-dns name things by: Marathon's tasks carry the reversed,
// dot-joined app id as task and DiscoveryInfo name, their agent, their
// port resources; the cluster has the leader, Marathon's framework by pid
// and every agent by pid. Marathon's /v2/apps agrees on every task's agent.
func TestMesosStateNamesAgreeWithTruth(t *testing.T) {
	s := newDemo(t)
	resp, err := http.Get(s.MesosURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st, _, err := marathon.DecodeMesosState(resp.Body, "")
	if err != nil {
		t.Fatalf("DecodeMesosState: %v", err)
	}
	byTask := map[string]discovery.Task{}
	for _, a := range st.Apps {
		if !a.FromMesos {
			t.Errorf("app %s: FromMesos false", a.ID)
		}
		byTask[a.Tasks[0].ID] = a.Tasks[0]
	}
	for _, app := range s.Apps() {
		parts := strings.Split(strings.Trim(app.ID, "/"), "/")
		slices.Reverse(parts)
		name := strings.Join(parts, ".")
		for _, want := range app.Tasks {
			got, ok := byTask[want.ID]
			if !ok {
				t.Errorf("task %s of %s missing from the Mesos state", want.ID, app.ID)
				continue
			}
			if got.Name != name || got.AgentID != want.AgentID || got.Discovery == nil || got.Discovery.Name != name ||
				got.ResourcePorts != len(want.HostPorts) {
				t.Errorf("task %s = name %q agent %q discovery %+v resource ports %d; want name %q, agent %q, %d resource ports",
					want.ID, got.Name, got.AgentID, got.Discovery, got.ResourcePorts, name, want.AgentID, len(want.HostPorts))
			}
		}
	}

	c := st.Cluster
	mesos := strings.TrimPrefix(s.MesosURL(), "http://")
	if c.Leader.String() != mesos {
		t.Errorf("leader = %v, want %s", c.Leader, mesos)
	}
	var fw *discovery.Framework
	for i := range c.Frameworks {
		if c.Frameworks[i].Name == s.Framework() {
			fw = &c.Frameworks[i]
		}
	}
	if fw == nil || fw.ID == "" || !fw.Addr.Addr().IsLoopback() || fw.Addr.Port() == 0 {
		t.Errorf("frameworks = %+v, want %s with an id and a loopback pid", c.Frameworks, s.Framework())
	}
	agents := map[string]bool{}
	for _, a := range c.Agents {
		if !a.Addr.Addr().IsLoopback() || a.Addr.Port() != 5051 {
			t.Errorf("agent %+v, want a loopback pid on 5051", a)
		}
		agents[a.ID] = true
	}

	appsResp, err := http.Get(s.URL() + "/v2/apps?embed=apps.tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer appsResp.Body.Close()
	apps, err := marathon.DecodeApps(appsResp.Body, literal)
	if err != nil {
		t.Fatalf("DecodeApps: %v", err)
	}
	for _, a := range apps {
		for _, task := range a.Tasks {
			if task.AgentID == "" || !agents[task.AgentID] || byTask[task.ID].AgentID != task.AgentID {
				t.Errorf("Marathon task %s on agent %q, Mesos says %q (agents %v)", task.ID, task.AgentID, byTask[task.ID].AgentID, agents)
			}
		}
	}
}

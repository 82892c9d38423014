package marathon

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

// checkApps asserts that decoded apps are well formed: IDs set, every port
// usable (known protocols, a container port or a non-negative host port
// index) and, for Mesos tasks, host port indexes inside the task's host
// ports.
func checkApps(t *testing.T, apps []discovery.App, mesos bool) {
	t.Helper()
	for _, a := range apps {
		if a.ID == "" || a.Framework == "" {
			t.Fatalf("app %+v: empty ID or framework", a)
		}
		for _, p := range a.Ports {
			checkPort(t, a.ID, p)
		}
		for _, task := range a.Tasks {
			if task.ID == "" {
				t.Fatalf("app %s: task without ID", a.ID)
			}
			for _, ip := range task.IPs {
				if !ip.IsValid() || ip.Is4In6() || ip.Zone() != "" {
					t.Fatalf("app %s task %s: bad IP %v", a.ID, task.ID, ip)
				}
			}
			if !task.HealthAt.IsZero() && task.Health == discovery.HealthNone {
				t.Fatalf("app %s task %s: a health result time %v without a result", a.ID, task.ID, task.HealthAt)
			}
			if task.AgentIP.IsValid() && task.AgentIP.Is4In6() {
				t.Fatalf("app %s task %s: mapped agent IP %v", a.ID, task.ID, task.AgentIP)
			}
			if !mesos {
				continue
			}
			if a.ID != a.Framework+"/"+task.ID || len(a.Tasks) != 1 || !a.FromMesos {
				t.Fatalf("mesos app %s: want ID <framework>/<task id>, one task and FromMesos, got %d tasks, FromMesos %v", a.ID, len(a.Tasks), a.FromMesos)
			}
			if task.ResourcePorts < 0 || task.ResourcePorts > len(task.HostPorts) {
				t.Fatalf("mesos app %s: %d resource ports of %d host ports", a.ID, task.ResourcePorts, len(task.HostPorts))
			}
			for _, ip := range []netip.Addr{task.DockerIP, task.MesosIP} {
				if ip.IsValid() && (ip.Is4In6() || ip.Zone() != "") {
					t.Fatalf("mesos app %s: bad label IP %v", a.ID, ip)
				}
			}
			for _, p := range a.Ports {
				if p.Kind != discovery.PortContainer && p.HostPortIndex >= len(task.HostPorts) {
					t.Fatalf("mesos app %s: port index %d beyond %d host ports", a.ID, p.HostPortIndex, len(task.HostPorts))
				}
			}
		}
	}
}

// checkCluster checks a decoded Cluster: every framework and agent has an
// ID (or a framework a name), and addresses are unmapped.
func checkCluster(t *testing.T, c *discovery.Cluster) {
	t.Helper()
	if c == nil {
		t.Fatalf("no cluster decoded")
	}
	unmapped := func(what string, ap netip.AddrPort) {
		if ap.IsValid() && (ap.Addr().Is4In6() || ap.Addr().Zone() != "") {
			t.Fatalf("%s address %v", what, ap)
		}
	}
	unmapped("leader", c.Leader)
	for _, f := range c.Frameworks {
		if f.ID == "" && f.Name == "" {
			t.Fatalf("framework without ID or name: %+v", f)
		}
		unmapped("framework "+f.ID, f.Addr)
	}
	for _, a := range c.Agents {
		if a.ID == "" {
			t.Fatalf("agent without ID: %+v", a)
		}
		unmapped("agent "+a.ID, a.Addr)
	}
}

func checkPort(t *testing.T, appID string, p discovery.Port) {
	t.Helper()
	if len(p.Protocols) == 0 {
		t.Fatalf("app %s: port without protocol: %+v", appID, p)
	}
	for _, proto := range p.Protocols {
		if proto != discovery.TCP && proto != discovery.UDP {
			t.Fatalf("app %s: port protocol %v", appID, proto)
		}
	}
	switch p.Kind {
	case discovery.PortContainer:
		if p.ContainerPort == 0 {
			t.Fatalf("app %s: container port 0", appID)
		}
	case discovery.PortHost, discovery.PortMapped:
		if p.HostPortIndex < 0 {
			t.Fatalf("app %s: negative host port index", appID)
		}
	default:
		t.Fatalf("app %s: port kind %d", appID, p.Kind)
	}
}

// checkUpdates asserts that decoded updates are well formed.
func checkUpdates(t *testing.T, updates []discovery.Update) {
	t.Helper()
	for _, u := range updates {
		switch u.Kind {
		case discovery.UpdateTask:
			if u.AppID == "" || u.TaskID == "" || u.Task.ID != u.TaskID {
				t.Fatalf("task update %+v: missing or inconsistent IDs", u)
			}
		case discovery.UpdateHealth:
			if u.TaskID == "" || u.Health > discovery.HealthUnhealthy {
				t.Fatalf("health update %+v", u)
			}
		case discovery.UpdateApp:
			if u.AppID == "" || u.App.ID != u.AppID {
				t.Fatalf("app update %+v: missing or inconsistent IDs", u)
			}
			checkApps(t, []discovery.App{u.App}, false)
		case discovery.UpdateAppRemoved:
			if u.AppID == "" {
				t.Fatalf("app removal without app ID")
			}
		case discovery.UpdateResync:
			if u.Reason == "" {
				t.Fatalf("resync without reason")
			}
		default:
			t.Fatalf("update kind %d", u.Kind)
		}
	}
}

// addUpstreamSeeds adds every upstream file matching the patterns as a
// seed, when the upstream fixtures are present.
func addUpstreamSeeds(f *testing.F, add func([]byte), patterns ...string) {
	dir := os.Getenv(upstreamtest.Env)
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "fixtures", "upstream")
	}
	for _, p := range patterns {
		matches, _ := filepath.Glob(filepath.Join(dir, p))
		for _, m := range matches {
			if data, err := os.ReadFile(m); err == nil && len(data) < 256<<10 {
				add(data)
			}
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, tt := range eventTests {
		f.Add(tt.eventType, []byte(tt.data))
	}
	for _, tt := range eventCrashers {
		f.Add(tt.eventType, []byte(tt.data))
	}
	addUpstreamSeeds(f, func(data []byte) {
		for _, fr := range splitSSE(data) {
			f.Add(fr.event, []byte(fr.data))
		}
	}, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt")
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		updates, err := DecodeEvent(eventType, data, fakeResolve)
		if err != nil {
			if len(updates) != 0 {
				t.Fatalf("DecodeEvent(%q) returned updates with error %v", eventType, err)
			}
			return
		}
		checkUpdates(t, updates)
	})
}

func FuzzDecodeApps(f *testing.F) {
	f.Add([]byte(`{"apps":[{"id":"/a","networks":[{"mode":"container","name":"n"}],"container":{"portMappings":[{"containerPort":80,"hostPort":0},{"containerPort":81}]},"labels":{"VIP_PORT3":"udp://1.2.3.4:53"},"tasks":[{"id":"t","host":"agent-1","ports":[1],"ipAddresses":[{"ipAddress":"::ffff:1.2.3.4"}]}]}]}`))
	f.Add([]byte(`{"apps":[{"id":"/b","ports":[0],"container":{"docker":{"network":"BRIDGE","portMappings":[{"containerPort":0,"protocol":"tcp,udp"}]}}}]}`))
	f.Add([]byte(`{"apps":[{"id":"/c","ipAddress":{"discovery":{"ports":[{"number":-1}]}}}]}`))
	f.Add([]byte(`{"apps":[{"id":"/d","tasks":[{"id":"t","healthCheckResults":[{"alive":true,"lastSuccess":"2015-06-24T14:57:06.466Z","lastFailure":"x\u0041"},{"alive":false,"lastSuccess":7,"lastFailure":null}]}]}]}`))
	addUpstreamSeeds(f, func(data []byte) { f.Add(data) },
		"mesosphere-marathon-lb/tests/*.json", "allegro-marathon-consul/apps/testdata/apps.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		apps, err := DecodeApps(bytes.NewReader(data), fakeResolve)
		if err == nil {
			checkApps(t, apps, false)
		}
		app, err := DecodeApp(data, fakeResolve)
		if err == nil {
			checkApps(t, []discovery.App{app}, false)
		}
	})
}

func FuzzDecodeMesosState(f *testing.F) {
	for _, tt := range mesosTests {
		f.Add([]byte(tt.state))
	}
	addUpstreamSeeds(f, func(data []byte) { f.Add(data) },
		"dcos-dcos-net/apps/dcos_l4lb/testdata/*.json", "dcos-dcos-net/apps/dcos_net/test/vip-labels.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		st, agents, err := DecodeMesosState(bytes.NewReader(data), "")
		if err != nil {
			return
		}
		apps := st.Apps
		checkApps(t, apps, true)
		checkCluster(t, st.Cluster)
		for host, ip := range agents {
			if host == "" || !ip.IsValid() {
				t.Fatalf("agents[%q] = %v", host, ip)
			}
		}
		// Leaving out one framework's tasks (by ID) leaves out no other.
		for _, fw := range st.Cluster.Frameworks {
			without, _, err := DecodeMesosState(bytes.NewReader(data), fw.ID)
			if err != nil || len(without.Apps) > len(apps) {
				t.Fatalf("without framework %q: %d apps, %v; with: %d", fw.ID, len(without.Apps), err, len(apps))
			}
		}
	})
}

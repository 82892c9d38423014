package marathon

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

var (
	tcp     = []discovery.Protocol{discovery.TCP}
	udp     = []discovery.Protocol{discovery.UDP}
	tcpUDP  = []discovery.Protocol{discovery.TCP, discovery.UDP}
	agentIP = netip.MustParseAddr("10.0.0.9")
)

// fakeResolve resolves every "agent*" host to agentIP, nothing else.
func fakeResolve(host string) netip.Addr {
	if strings.HasPrefix(host, "agent") {
		return agentIP
	}
	return netip.Addr{}
}

func vip(key, value string) []discovery.Label { return []discovery.Label{{Key: key, Value: value}} }

func TestDecodeAppPorts(t *testing.T) {
	tests := []struct {
		name string
		app  string
		want []discovery.Port
	}{
		{
			name: "1.5 host networking portDefinitions",
			app: `{"id":"/a","networks":[{"mode":"host"}],"portDefinitions":[
				{"port":0,"protocol":"tcp","name":"http","labels":{"VIP_0":"/a:80"}},
				{"port":0,"protocol":"tcp,udp","labels":{"VIP_1":"10.0.0.1:53"}}]}`,
			want: []discovery.Port{
				{Kind: discovery.PortHost, HostPortIndex: 0, Protocols: tcp, Name: "http", Labels: vip("VIP_0", "/a:80")},
				{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: tcpUDP, Labels: vip("VIP_1", "10.0.0.1:53")},
			},
		},
		{
			name: "no networks means host",
			app:  `{"id":"/a","portDefinitions":[{"port":10000,"protocol":"udp"}]}`,
			want: []discovery.Port{{Kind: discovery.PortHost, Protocols: udp}},
		},
		{
			name: "1.5 bridge: null hostPort is a dynamic host port",
			app: `{"id":"/a","networks":[{"mode":"container/bridge"}],"container":{"portMappings":[
				{"containerPort":80,"hostPort":0,"labels":{"VIP_0":"/a:80"}},
				{"containerPort":81,"protocol":"udp"}]}}`,
			want: []discovery.Port{
				{Kind: discovery.PortMapped, HostPortIndex: 0, Protocols: tcp, Labels: vip("VIP_0", "/a:80")},
				{Kind: discovery.PortMapped, HostPortIndex: 1, Protocols: udp},
			},
		},
		{
			name: "1.5 container network: only mappings with hostPort count",
			app: `{"id":"/a","networks":[{"mode":"container","name":"dcos"}],"container":{"portMappings":[
				{"containerPort":80,"hostPort":0},
				{"containerPort":8080,"labels":{"VIP_0":"/a:8080"}},
				{"containerPort":9090,"hostPort":31000}]}}`,
			want: []discovery.Port{
				{Kind: discovery.PortMapped, HostPortIndex: 0, Protocols: tcp},
				{Kind: discovery.PortContainer, ContainerPort: 8080, Protocols: tcp, Labels: vip("VIP_0", "/a:8080")},
				{Kind: discovery.PortMapped, HostPortIndex: 1, Protocols: tcp},
			},
		},
		{
			name: "1.4 docker BRIDGE portMappings",
			app: `{"id":"/a","ports":[10000],"container":{"type":"DOCKER","docker":{"network":"BRIDGE","portMappings":[
				{"containerPort":80,"hostPort":0,"servicePort":10000,"protocol":"tcp","labels":{"VIP_0":"/a:80"}}]}}}`,
			want: []discovery.Port{{Kind: discovery.PortMapped, Protocols: tcp, Labels: vip("VIP_0", "/a:80")}},
		},
		{
			name: "1.4 docker HOST uses portDefinitions",
			app: `{"id":"/a","container":{"docker":{"network":"HOST","portMappings":[{"containerPort":1}]}},
				"portDefinitions":[{"port":0},{"port":0,"protocol":"udp"}]}`,
			want: []discovery.Port{
				{Kind: discovery.PortHost, HostPortIndex: 0, Protocols: tcp},
				{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: udp},
			},
		},
		{
			name: "1.4 docker USER with ipAddress",
			app: `{"id":"/a","ipAddress":{"networkName":"dcos"},"container":{"docker":{"network":"USER","portMappings":[
				{"containerPort":80,"labels":{"VIP_0":"/a:80"}}]}}}`,
			want: []discovery.Port{{Kind: discovery.PortContainer, ContainerPort: 80, Protocols: tcp, Labels: vip("VIP_0", "/a:80")}},
		},
		{
			name: "1.4 ipAddress discovery ports",
			app: `{"id":"/a","ipAddress":{"networkName":"dcos","discovery":{"ports":[
				{"number":8080,"name":"rest","protocol":"tcp","labels":{"VIP_0":"/a:80"}}]}}}`,
			want: []discovery.Port{{Kind: discovery.PortContainer, ContainerPort: 8080, Protocols: tcp, Name: "rest", Labels: vip("VIP_0", "/a:80")}},
		},
		{
			name: "legacy ports with minuteman VIP_PORT0 app label",
			app:  `{"id":"/app1","ports":[10000,10001],"labels":{"vip_PORT1":"tcp://1.2.3.4:5000","owner":"x"}}`,
			want: []discovery.Port{
				{Kind: discovery.PortHost, HostPortIndex: 0, Protocols: tcp},
				{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: tcp, Labels: vip("vip_PORT1", "tcp://1.2.3.4:5000")},
			},
		},
		{
			name: "VIP_PORT label beyond the declared ports gets a port of its own",
			app:  `{"id":"/a","labels":{"VIP_PORT2":"udp://1.2.3.4:53"}}`,
			want: []discovery.Port{{Kind: discovery.PortHost, HostPortIndex: 2, Protocols: udp, Labels: vip("VIP_PORT2", "udp://1.2.3.4:53")}},
		},
		{
			name: "invalid protocol drops the port but keeps later indexes",
			app:  `{"id":"/a","portDefinitions":[{"port":0,"protocol":"sctp"},{"port":0,"protocol":"TCP"}]}`,
			want: []discovery.Port{{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: tcp}},
		},
		{
			name: "container port 0 without host port is dropped",
			app:  `{"id":"/a","networks":[{"mode":"container","name":"n"}],"container":{"portMappings":[{"containerPort":0}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := DecodeApp([]byte(tt.app), nil)
			if err != nil {
				t.Fatalf("DecodeApp: %v", err)
			}
			if !reflect.DeepEqual(app.Ports, tt.want) {
				t.Errorf("DecodeApp(%s).Ports =\n%+v\nwant\n%+v", tt.app, app.Ports, tt.want)
			}
			if app.Framework != DefaultFramework {
				t.Errorf("Framework = %q, want %q", app.Framework, DefaultFramework)
			}
		})
	}
}

func TestDecodeAppTasks(t *testing.T) {
	started := time.Date(2015, 6, 24, 14, 57, 6, 466e6, time.UTC)
	tests := []struct {
		name string
		task string
		want discovery.Task
	}{
		{
			name: "running, all checks alive",
			task: `{"id":"t1","host":"agent-1","state":"TASK_RUNNING","ports":[31000,31001],
				"ipAddresses":[{"ipAddress":"172.17.0.2","protocol":"IPv4"},{"ipAddress":"fd00::2","protocol":"IPv6"}],
				"healthCheckResults":[{"alive":true},{"alive":true}],"startedAt":"2015-06-24T14:57:06.466Z"}`,
			want: discovery.Task{ID: "t1", Host: "agent-1", AgentIP: agentIP, State: discovery.TaskRunning,
				HostPorts: []uint16{31000, 31001}, Health: discovery.HealthHealthy, Updated: started,
				IPs: []netip.Addr{netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("fd00::2")}},
		},
		{
			name: "one check failing",
			task: `{"id":"t2","host":"10.1.1.1","state":"TASK_RUNNING","healthCheckResults":[{"alive":true},{"alive":false}]}`,
			want: discovery.Task{ID: "t2", Host: "10.1.1.1", AgentIP: netip.MustParseAddr("10.1.1.1"),
				State: discovery.TaskRunning, Health: discovery.HealthUnhealthy},
		},
		{
			name: "result times: the latest success or failure of any check",
			task: `{"id":"t5","state":"TASK_RUNNING","healthCheckResults":[
				{"alive":true,"lastSuccess":"2015-06-24T14:57:06.466Z","lastFailure":"2015-06-24T14:57:05.000Z"},
				{"alive":false,"lastSuccess":null,"lastFailure":"2015-06-24T14:57:01.000Z"}]}`,
			want: discovery.Task{ID: "t5", State: discovery.TaskRunning, Health: discovery.HealthUnhealthy, HealthAt: started},
		},
		{
			name: "result times garbage, wrong type or absent: unknown",
			task: `{"id":"t6","state":"TASK_RUNNING","healthCheckResults":[
				{"alive":true,"lastSuccess":"yesterday","lastFailure":""},{"alive":true,"lastSuccess":"2015-13-45T99:00:00Z"},{"alive":true,"lastSuccess":12,"lastFailure":{"t":"2015-06-24T14:57:06.466Z"}},
				{"alive":true,"lastSuccess":"2015-06-24T14:57:06.466\\"},{"alive":true}]}`,
			want: discovery.Task{ID: "t6", State: discovery.TaskRunning, Health: discovery.HealthHealthy},
		},
		{
			name: "result time with a JSON escape",
			task: `{"id":"t7","state":"TASK_RUNNING","healthCheckResults":[{"alive":true,"lastSuccess":"2015-06-24T14:57:06.466\u005a"}]}`,
			want: discovery.Task{ID: "t7", State: discovery.TaskRunning, Health: discovery.HealthHealthy, HealthAt: started},
		},
		{
			name: "pre-0.10 task without state but started",
			task: `{"id":"t3","host":"unknown.example","state":null,"stagedAt":"2015-06-24T14:57:06.466Z","startedAt":"2015-06-24T14:57:06.466Z"}`,
			want: discovery.Task{ID: "t3", Host: "unknown.example", State: discovery.TaskRunning, Updated: started},
		},
		{
			name: "killing, bad IP and out-of-range port kept as unknown",
			task: `{"id":"t4","state":"TASK_KILLING","ports":[70000],"ipAddresses":[{"ipAddress":"bogus"}]}`,
			want: discovery.Task{ID: "t4", State: discovery.TaskKilling, HostPorts: []uint16{0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := DecodeApp([]byte(`{"id":"/a","tasks":[`+tt.task+`]}`), fakeResolve)
			if err != nil {
				t.Fatalf("DecodeApp: %v", err)
			}
			if len(app.Tasks) != 1 || !reflect.DeepEqual(app.Tasks[0], tt.want) {
				t.Errorf("tasks = %+v, want [%+v]", app.Tasks, tt.want)
			}
		})
	}
}

func TestDecodeAppErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{name: "not JSON", data: `{`},
		{name: "no id", data: `{"instances":1}`},
		{name: "labels not strings", data: `{"id":"/a","labels":{"VIP_0":1}}`},
		{name: "array", data: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if app, err := DecodeApp([]byte(tt.data), nil); err == nil {
				t.Errorf("DecodeApp(%s) = %+v, want error", tt.data, app)
			}
		})
	}
	if _, err := DecodeApps(strings.NewReader(`{"apps":[{"id":""}]}`), nil); err == nil {
		t.Errorf("DecodeApps with an app without id: want error")
	}
}

func TestFrameworkTaskState(t *testing.T) {
	tests := []struct {
		in   string
		want discovery.TaskState
	}{
		{"TASK_RUNNING", discovery.TaskRunning},
		{"task_running", discovery.TaskRunning},
		{"TASK_KILLING", discovery.TaskKilling},
		{"TASK_STAGING", discovery.TaskStarting},
		{"TASK_UNREACHABLE", discovery.TaskStarting},
		{"TASK_GONE_BY_OPERATOR", discovery.TaskTerminal},
		{"TASK_LOST", discovery.TaskTerminal},
		{"", discovery.TaskStarting},
		{"RUNNING", discovery.TaskStarting},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := FrameworkTaskState(tt.in); got != tt.want {
				t.Errorf("FrameworkTaskState(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// decodeUpstreamApps decodes a Marathon response or definition of any
// upstream shape: {"apps": […]}, {"app": {…}}, a bare app, or a group tree
// ({"apps": […], "groups": […]}, walked recursively).
func decodeUpstreamApps(t *testing.T, data []byte) []discovery.App {
	t.Helper()
	var probe struct {
		App    json.RawMessage   `json:"app"`
		Apps   []json.RawMessage `json:"apps"`
		Groups []json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if probe.App == nil && probe.Apps == nil && probe.Groups == nil {
		app, err := DecodeApp(data, fakeResolve)
		if err != nil {
			t.Fatalf("DecodeApp: %v", err)
		}
		return []discovery.App{app}
	}
	if probe.App != nil {
		app, err := DecodeApp(data, fakeResolve)
		if err != nil {
			t.Fatalf("DecodeApp: %v", err)
		}
		return []discovery.App{app}
	}
	var out []discovery.App
	if probe.Groups == nil {
		apps, err := DecodeApps(bytes.NewReader(data), fakeResolve)
		if err != nil {
			t.Fatalf("DecodeApps: %v", err)
		}
		return apps
	}
	for _, raw := range probe.Apps {
		app, err := DecodeApp(raw, fakeResolve)
		if err != nil {
			t.Fatalf("DecodeApp(group app): %v", err)
		}
		out = append(out, app)
	}
	for _, g := range probe.Groups {
		out = append(out, decodeUpstreamApps(t, g)...)
	}
	return out
}

// TestDecodeUpstreamApps decodes every upstream Marathon app file and
// checks that the output is well formed.
func TestDecodeUpstreamApps(t *testing.T) {
	dir := upstreamtest.Dir(t)
	var files []string
	for _, pattern := range []string{
		"mesosphere-marathon-lb/tests/*.json",
		"mesosphere-marathon-lb/ci/backends/*.json",
		"mesosphere-marathon-lb/ci/backends_1.9/*.json",
		"allegro-marathon-consul/apps/testdata/app*.json",
		"gambol99-go-marathon/tests/app-definitions/TestApplicationString*.json",
		"dcos-dcos-ui/tests/_fixtures/*/groups.json",
		"dcos-minuteman/example/app.json",
		"mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/app.json",
		"mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/app_list.json",
		"mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/group.json",
		"mesosphere-marathon/benchmark/src/main/resources/mocks/json/real/155_100.json",
	} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("no upstream files match %s", pattern)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			apps := decodeUpstreamApps(t, data)
			// marathon-1-pod-group holds only pods, no apps.
			if len(apps) == 0 && !strings.Contains(rel, "pod-group") {
				t.Fatalf("no apps decoded")
			}
			checkApps(t, apps, false)
		})
	}
}

// findApp returns the app with the given id.
func findApp(t *testing.T, apps []discovery.App, id string) discovery.App {
	t.Helper()
	for _, a := range apps {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no app %s among %d apps", id, len(apps))
	return discovery.App{}
}

// TestDecodeUpstreamAppsExpected pins concrete ports and tasks of a few
// upstream files.
func TestDecodeUpstreamAppsExpected(t *testing.T) {
	upstreamtest.Dir(t) // skip or fail here once, not from inside the subtests
	read := func(t *testing.T, rel string) []discovery.App {
		t.Helper()
		return decodeUpstreamApps(t, upstreamtest.File(t, rel))
	}
	t.Run("docs app.json: 1.4 BRIDGE mapping with lower-case vip label", func(t *testing.T) {
		app := findApp(t, read(t, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/app.json"), "/foo")
		want := []discovery.Port{{Kind: discovery.PortMapped, Protocols: tcp, Name: "http", Labels: vip("vip", "192.168.0.1:80")}}
		if !reflect.DeepEqual(app.Ports, want) || !app.HealthChecks {
			t.Errorf("ports = %+v healthChecks=%v, want %+v and true", app.Ports, app.HealthChecks, want)
		}
	})
	t.Run("minuteman example: vip_PORT0 on legacy port 0", func(t *testing.T) {
		app := findApp(t, read(t, "dcos-minuteman/example/app.json"), "/app1")
		want := []discovery.Port{{Kind: discovery.PortHost, Protocols: tcp, Labels: vip("vip_PORT0", "tcp://1.2.3.4:5000")}}
		if !reflect.DeepEqual(app.Ports, want) {
			t.Errorf("ports = %+v, want %+v", app.Ports, want)
		}
	})
	t.Run("dcos-ui groups: container-mode VIP_0 notnet:1234 with task IP", func(t *testing.T) {
		app := findApp(t, read(t, "dcos-dcos-ui/tests/_fixtures/marathon-1-task/groups.json"), "/net")
		if len(app.Ports) == 0 || app.Ports[0].Kind != discovery.PortContainer ||
			!reflect.DeepEqual(app.Ports[0].Labels, vip("VIP_0", "notnet:1234")) {
			t.Fatalf("ports = %+v, want a container port labelled VIP_0=notnet:1234", app.Ports)
		}
		if len(app.Tasks) != 1 || !reflect.DeepEqual(app.Tasks[0].IPs, []netip.Addr{netip.MustParseAddr("9.0.2.130")}) {
			t.Errorf("tasks = %+v, want one task with IP 9.0.2.130", app.Tasks)
		}
		sleep := findApp(t, read(t, "dcos-dcos-ui/tests/_fixtures/marathon-1-task/groups.json"), "/sleep")
		if len(sleep.Ports) == 0 || sleep.Ports[0].Kind != discovery.PortHost ||
			!reflect.DeepEqual(sleep.Ports[0].Labels, vip("VIP_0", "/new-service-1:126")) {
			t.Errorf("/sleep ports = %+v, want host port labelled VIP_0=/new-service-1:126", sleep.Ports)
		}
	})
	t.Run("marathon-lb 1.5 capture: container/bridge mapping, host port 1565", func(t *testing.T) {
		app := findApp(t, read(t, "mesosphere-marathon-lb/tests/marathon15_apps.json"), "/pywebserver")
		want := []discovery.Port{{Kind: discovery.PortMapped, Protocols: tcp, Name: "test"}}
		if !reflect.DeepEqual(app.Ports, want) {
			t.Errorf("ports = %+v, want %+v", app.Ports, want)
		}
		task := app.Tasks[0]
		if !reflect.DeepEqual(task.HostPorts, []uint16{1565}) || task.AgentIP != netip.MustParseAddr("10.0.2.148") ||
			task.State != discovery.TaskRunning || task.AgentID != "db7b40e2-791c-445f-b373-183e2a648a86-S1" {
			t.Errorf("task = %+v, want host ports [1565] on 10.0.2.148, running, on agent …-S1 (slaveId)", task)
		}
	})
	t.Run("marathon-consul apps.json: 1.4 BRIDGE tcp and udp mappings, healthy task", func(t *testing.T) {
		app := findApp(t, read(t, "allegro-marathon-consul/apps/testdata/apps.json"), "/bridged-webapp")
		want := []discovery.Port{
			{Kind: discovery.PortMapped, HostPortIndex: 0, Protocols: tcp},
			{Kind: discovery.PortMapped, HostPortIndex: 1, Protocols: udp},
		}
		if !reflect.DeepEqual(app.Ports, want) {
			t.Errorf("ports = %+v, want %+v", app.Ports, want)
		}
		if app.Tasks[0].Health != discovery.HealthHealthy || app.Tasks[1].Health != discovery.HealthNone {
			t.Errorf("health = %v, %v, want healthy, none", app.Tasks[0].Health, app.Tasks[1].Health)
		}
	})
	t.Run("go-marathon 1.4 and 1.5 shapes agree", func(t *testing.T) {
		old := read(t, "gambol99-go-marathon/tests/app-definitions/TestApplicationString-output.json")
		cur := read(t, "gambol99-go-marathon/tests/app-definitions/TestApplicationString-1.5-output.json")
		if !reflect.DeepEqual(old[0].Ports, cur[0].Ports) || len(cur[0].Ports) != 2 || cur[0].Ports[1].Kind != discovery.PortMapped {
			t.Errorf("1.4 ports %+v, 1.5 ports %+v: want the same two mapped ports", old[0].Ports, cur[0].Ports)
		}
	})
	t.Run("benchmark mock: 100 host apps", func(t *testing.T) {
		apps := read(t, "mesosphere-marathon/benchmark/src/main/resources/mocks/json/real/155_100.json")
		if len(apps) != 100 {
			t.Errorf("decoded %d apps, want 100", len(apps))
		}
	})
}

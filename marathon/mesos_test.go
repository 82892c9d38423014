package marathon

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

type mesosTest struct {
	name      string
	state     string
	framework string
	want      []discovery.App
	cluster   *discovery.Cluster
	agents    map[string]netip.Addr
}

var (
	agent1 = netip.MustParseAddr("10.0.0.1")
	ip9    = netip.MustParseAddr("9.0.1.130")
)

var mesosTests = []mesosTest{
	{
		name: "master state: scopes, protocols, number 0, latest status, excluded framework",
		state: `{"pid":"master@10.0.0.100:5050","leader":"master@10.0.0.100:5050","slaves":[{"id":"S1","hostname":"agent-1","pid":"slave(1)@10.0.0.1:5051"}],
		"frameworks":[
		 {"id":"F1","name":"marathon","pid":"scheduler-abc@10.0.0.100:15101","tasks":[{"id":"m1","slave_id":"S1","state":"TASK_RUNNING"}]},
		 {"id":"F2","name":"hello-world","hostname":"10.0.0.7","tasks":[{"id":"t1","name":"hello-0-server","slave_id":"S1","state":"TASK_RUNNING",
		   "resources":{"ports":"[31000-31001]"},
		   "discovery":{"name":"hello","ports":{"ports":[
		     {"number":31001,"protocol":"TCP","labels":{"labels":[{"key":"VIP_0","value":"/web:80"}]}},
		     {"number":8080,"protocol":"udp","labels":{"labels":[{"key":"VIP_1","value":"/dns:53"},{"key":"network-scope","value":"container"}]}},
		     {"number":0,"protocol":"tcp","labels":{"labels":[{"key":"VIP_2","value":"/zero:1"}]}},
		     {"number":9000,"protocol":"sctp","labels":{"labels":[{"key":"VIP_3","value":"/sctp:1"}]}},
		     {"number":32000,"protocol":"tcp","labels":{"labels":[{"key":"network-scope","value":"host"}]}}]}},
		   "statuses":[
		     {"state":"TASK_RUNNING","timestamp":15,"labels":[{"key":"Docker.NetworkSettings.IPAddress","value":"172.17.0.1"}]},
		     {"state":"TASK_RUNNING","timestamp":20,"healthy":false,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"9.0.1.130"}],"ip_address":"9.0.1.130"}]},
		      "labels":[{"key":"Docker.NetworkSettings.IPAddress","value":"172.17.0.2"},{"key":"MesosContainerizer.NetworkSettings.IPAddress","value":"9.0.1.130"}]},
		     {"state":"TASK_STARTING","timestamp":10,"healthy":true}]}]}],
		"completed_frameworks":[{"id":"F0","name":"gone","pid":"scheduler-x@10.0.0.9:1"}]}`,
		framework: "F1",
		want: []discovery.App{{ID: "hello-world/t1", Framework: "hello-world", HealthChecks: true, FromMesos: true,
			Ports: []discovery.Port{
				{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: tcp, Labels: vip("VIP_0", "/web:80")},
				{Kind: discovery.PortContainer, ContainerPort: 8080, Protocols: udp,
					Labels: []discovery.Label{{Key: "VIP_1", Value: "/dns:53"}, {Key: "network-scope", Value: "container"}}},
				{Kind: discovery.PortHost, HostPortIndex: 2, Protocols: tcp, Labels: vip("network-scope", "host")},
			},
			Tasks: []discovery.Task{{ID: "t1", Host: "agent-1", AgentIP: agent1, State: discovery.TaskRunning,
				Health: discovery.HealthUnhealthy, IPs: []netip.Addr{ip9}, HostPorts: []uint16{31000, 31001, 32000},
				Name: "hello-0-server", AgentID: "S1", ResourcePorts: 2,
				DockerIP: netip.MustParseAddr("172.17.0.2"), MesosIP: ip9,
				Discovery: &discovery.DiscoveryInfo{Name: "hello", Ports: []discovery.DiscoveryPort{
					{Number: 31001, Protocol: "TCP"}, {Number: 8080, Protocol: "udp"}, {Number: 0, Protocol: "tcp"},
					{Number: 9000, Protocol: "sctp"}, {Number: 32000, Protocol: "tcp"}}}}}}},
		cluster: &discovery.Cluster{Leader: netip.MustParseAddrPort("10.0.0.100:5050"),
			Frameworks: []discovery.Framework{
				{ID: "F1", Name: "marathon", Addr: netip.MustParseAddrPort("10.0.0.100:15101")},
				{ID: "F2", Name: "hello-world", Addr: netip.MustParseAddrPort("10.0.0.7:0")}},
			Agents: []discovery.Agent{{ID: "S1", Hostname: "agent-1", Addr: netip.MustParseAddrPort("10.0.0.1:5051")}}},
		agents: map[string]netip.Addr{"agent-1": agent1},
	},
	{
		name: "agent state: executors, legacy vip_PORT labels, health check without result",
		state: `{"id":"S1","pid":"slave(1)@10.0.0.1:5051","hostname":"agent-1","frameworks":[{"name":"marathon","executors":[{"tasks":[
		  {"id":"t2","slave_id":"S1","state":"TASK_KILLING","framework_id":"F1","health_check":{"type":"HTTP"},
		   "resources":{"ports":"[31000-31000, 31005-31006]"},
		   "labels":[{"key":"vip_PORT2","value":"udp://1.2.3.4:53"},{"key":"VIP_PORT9","value":"tcp://1.2.3.4:80"},{"key":"owner","value":"x"}],
		   "statuses":[{"state":"TASK_RUNNING","timestamp":1}]}]}]}]}`,
		want: []discovery.App{{ID: "marathon/t2", Framework: "marathon", HealthChecks: true, FromMesos: true,
			Ports: []discovery.Port{{Kind: discovery.PortHost, HostPortIndex: 2, Protocols: udp, Labels: vip("vip_PORT2", "udp://1.2.3.4:53")}},
			Tasks: []discovery.Task{{ID: "t2", Host: "agent-1", AgentIP: agent1, State: discovery.TaskKilling,
				HostPorts: []uint16{31000, 31005, 31006}, AgentID: "S1", ResourcePorts: 3}}}},
		cluster: &discovery.Cluster{Frameworks: []discovery.Framework{{Name: "marathon"}},
			Agents: []discovery.Agent{{ID: "S1", Hostname: "agent-1", Addr: netip.MustParseAddrPort("10.0.0.1:5051")}}},
		agents: map[string]netip.Addr{"agent-1": agent1},
	},
	{
		name: "v1 operator GET_STATE",
		state: `{"type":"GET_STATE","get_state":{
		  "get_agents":{"agents":[{"agent_info":{"id":{"value":"S1"},"hostname":"10.0.0.1"}}]},
		  "get_frameworks":{"frameworks":[{"framework_info":{"id":{"value":"F1"},"name":"marathon-user","hostname":"10.0.0.5"}}]},
		  "get_tasks":{"launched_tasks":[{"task_id":{"value":"t3"},"name":"t3-name","framework_id":{"value":"F1"},"agent_id":{"value":"S1"},"state":"TASK_RUNNING",
		    "labels":{"labels":[{"key":"vip_port0","value":"tcp://def:80"}]},
		    "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":9999,"end":10000}]}}],
		    "discovery":{"ports":{"ports":[{"number":10000,"protocol":"tcp","labels":{"labels":[{"key":"VIP_0","value":"/abc:80"}]}}]}},
		    "statuses":[{"state":"TASK_RUNNING","timestamp":5,"healthy":true}]}]}}}`,
		framework: "marathon",
		want: []discovery.App{{ID: "marathon-user/t3", Framework: "marathon-user", HealthChecks: true, FromMesos: true,
			Ports: []discovery.Port{
				{Kind: discovery.PortHost, HostPortIndex: 1, Protocols: tcp, Labels: vip("VIP_0", "/abc:80")},
				{Kind: discovery.PortHost, HostPortIndex: 0, Protocols: tcp, Labels: vip("vip_port0", "tcp://def:80")},
			},
			Tasks: []discovery.Task{{ID: "t3", Host: "10.0.0.1", AgentIP: agent1, State: discovery.TaskRunning,
				Health: discovery.HealthHealthy, HostPorts: []uint16{9999, 10000}, Name: "t3-name", AgentID: "S1", ResourcePorts: 2,
				Discovery: &discovery.DiscoveryInfo{Ports: []discovery.DiscoveryPort{{Number: 10000, Protocol: "tcp"}}}}}}},
		cluster: &discovery.Cluster{
			Frameworks: []discovery.Framework{{ID: "F1", Name: "marathon-user", Addr: netip.MustParseAddrPort("10.0.0.5:0")}},
			Agents:     []discovery.Agent{{ID: "S1", Hostname: "10.0.0.1"}}},
		agents: map[string]netip.Addr{"10.0.0.1": agent1},
	},
	{
		name:  "unknown agent and no frameworks",
		state: `{"leader":"master@mesos.example:5050","slaves":[{"id":"S9","hostname":"nohost","pid":"slave(1)@nohost:5051"}],"frameworks":[{"id":"F","tasks":[{"id":"x","slave_id":"S7"}]}]}`,
		want:  []discovery.App{{ID: "F/x", Framework: "F", FromMesos: true, Tasks: []discovery.Task{{ID: "x", AgentID: "S7"}}}},
		cluster: &discovery.Cluster{Frameworks: []discovery.Framework{{ID: "F"}},
			Agents: []discovery.Agent{{ID: "S9", Hostname: "nohost"}}},
		agents: map[string]netip.Addr{},
	},
	{
		name:    "fuzz crasher: framework without name or id is skipped",
		state:   `{"frAmeworks":[{"tAsks":[{"id":"0"}]}]}`,
		cluster: &discovery.Cluster{},
		agents:  map[string]netip.Addr{},
	},
}

func TestDecodeMesosState(t *testing.T) {
	for _, tt := range mesosTests {
		t.Run(tt.name, func(t *testing.T) {
			st, agents, err := DecodeMesosState(strings.NewReader(tt.state), tt.framework)
			if err != nil {
				t.Fatalf("DecodeMesosState: %v", err)
			}
			if !reflect.DeepEqual(st.Apps, tt.want) {
				t.Errorf("apps =\n%+v\nwant\n%+v", st.Apps, tt.want)
			}
			if !reflect.DeepEqual(st.Cluster, tt.cluster) {
				t.Errorf("cluster =\n%+v\nwant\n%+v", st.Cluster, tt.cluster)
			}
			if !reflect.DeepEqual(agents, tt.agents) {
				t.Errorf("agents = %v, want %v", agents, tt.agents)
			}
		})
	}
}

func TestDecodeMesosStateErrors(t *testing.T) {
	tests := []struct{ name, state string }{
		{"not JSON", `{`},
		{"labels of wrong type", `{"frameworks":[{"tasks":[{"id":"x","labels":7}]}]}`},
		{"tasks not a list", `{"frameworks":[{"tasks":{}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := DecodeMesosState(strings.NewReader(tt.state), ""); err == nil {
				t.Errorf("DecodeMesosState(%s): want error", tt.state)
			}
		})
	}
}

func TestExpandPorts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []uint16
	}{
		{"ranges", "[31000-31001, 31005-31005]", []uint16{31000, 31001, 31005}},
		{"single", "[80]", []uint16{80}},
		{"empty", "[]", nil},
		{"garbage and reversed skipped", "[a-b, 5-3, 7-7, 70000-70001]", []uint16{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expandPorts(parsePortRanges(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("expandPorts(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if n := len(expandPorts([][2]int{{0, 65535}, {0, 65535}})); n != maxTaskPorts {
		t.Errorf("expansion of two full ranges gave %d ports, want the cap %d", n, maxTaskPorts)
	}
}

// TestDecodeUpstreamMesosStates decodes every upstream Mesos state in
// /state or GET_STATE form.
func TestDecodeUpstreamMesosStates(t *testing.T) {
	dir := upstreamtest.Dir(t)
	var files []string
	for _, pattern := range []string{
		"dcos-dcos-net/apps/dcos_l4lb/testdata/*.json",
		"dcos-dcos-net/apps/dcos_l4lb/test/dcos_l4lb_mesos_poller_SUITE_data/*.json",
		"dcos-dcos-net/apps/dcos_dns/priv/*.json",
		"dcos-mesos_state/test/mesos_state_SUITE_data/*.json",
		"mesosphere-mesos-dns/factories/fake.json",
		"dcos-dcos-net/apps/dcos_net/test/vip-labels.json",
		"dcos-dcos-net/apps/dcos_net/test/tcp-and-udp.json",
		"dcos-dcos-net/apps/dcos_net/test/unhealthy.json",
		"dcos-dcos-net/apps/dcos_net/test/dns-hostname.json",
	} {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(m) == 0 {
			t.Fatalf("no upstream files match %s", pattern)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _, err := DecodeMesosState(fh, "")
			if err != nil {
				t.Fatalf("DecodeMesosState: %v", err)
			}
			checkApps(t, st.Apps, true)
			checkCluster(t, st.Cluster)
		})
	}
}

// TestDecodeUpstreamMesosExpected pins what the dcos-net tests expect of the
// v1 GET_STATE files (apps/dcos_net/test/dcos_net_mesos_listener_tests.erl).
func TestDecodeUpstreamMesosExpected(t *testing.T) {
	upstreamtest.Dir(t) // skip or fail here once, not from inside the subtests
	decode := func(t *testing.T, rel string) []discovery.App {
		t.Helper()
		st, _, err := DecodeMesosState(strings.NewReader(string(upstreamtest.File(t, rel))), "")
		if err != nil {
			t.Fatalf("DecodeMesosState(%s): %v", rel, err)
		}
		apps := st.Apps
		if len(apps) != 1 {
			t.Fatalf("%s: %d apps, want 1", rel, len(apps))
		}
		return apps
	}
	t.Run("vip-labels: /abc:80, /cbd:80, /xyz:443 and legacy tcp://def:80, tcp://jkl:80", func(t *testing.T) {
		app := decode(t, "dcos-dcos-net/apps/dcos_net/test/vip-labels.json")[0]
		var values []string
		for _, p := range app.Ports {
			for _, l := range p.Labels {
				values = append(values, l.Value)
			}
		}
		want := []string{"/abc:80", "/cbd:80", "/xyz:443", "tcp://def:80", "tcp://jkl:80"}
		if !reflect.DeepEqual(values, want) {
			t.Errorf("label values = %v, want %v", values, want)
		}
	})
	t.Run("tcp-and-udp: /app:80 on one port in both protocols", func(t *testing.T) {
		app := decode(t, "dcos-dcos-net/apps/dcos_net/test/tcp-and-udp.json")[0]
		protos := map[discovery.Protocol]bool{}
		for _, p := range app.Ports {
			if reflect.DeepEqual(p.Labels, vip("VIP_0", "/app:80")) {
				protos[p.Protocols[0]] = true
			}
		}
		if !protos[discovery.TCP] || !protos[discovery.UDP] {
			t.Errorf("ports = %+v, want /app:80 on a tcp and a udp port", app.Ports)
		}
	})
	// The task has a health_check but no status carries "healthy": upstream
	// weighs it 0, which is HealthNone on an app with health checks.
	t.Run("unhealthy: container-scope /foobar:80, health check without result", func(t *testing.T) {
		app := decode(t, "dcos-dcos-net/apps/dcos_net/test/unhealthy.json")[0]
		if len(app.Ports) != 1 || app.Ports[0].Kind != discovery.PortContainer || app.Ports[0].ContainerPort != 80 ||
			!app.HealthChecks || app.Tasks[0].Health != discovery.HealthNone {
			t.Errorf("app = %+v, want one container port 80, health checks, task health none", app)
		}
	})
}

// TestDecodeUpstreamMesosDNSState pins what mesos-dns names from its own
// test state (mesosphere/mesos-dns factories/fake.json): the leader,
// frameworks by pid (IPv6 too; none without a pid and a literal hostname),
// agents, task names, DiscoveryInfo, and the label IPs of the TASK_RUNNING
// status with the highest timestamp, which is not the last one listed.
func TestDecodeUpstreamMesosDNSState(t *testing.T) {
	st, _, err := DecodeMesosState(strings.NewReader(string(upstreamtest.File(t, upstreamMesosState))), "")
	if err != nil {
		t.Fatalf("DecodeMesosState: %v", err)
	}
	c := st.Cluster
	if want := netip.MustParseAddrPort("1.2.3.4:5050"); c.Leader != want {
		t.Errorf("leader = %v, want %v", c.Leader, want)
	}
	frameworks := map[string]netip.AddrPort{}
	for _, f := range c.Frameworks {
		frameworks[f.Name] = f.Addr
	}
	for name, want := range map[string]netip.AddrPort{
		"ipv6-framework": netip.MustParseAddrPort("[2001:db8::1]:25501"),
		"chronos with a space AND MIXED CASE-2.0.1": netip.MustParseAddrPort("1.2.3.12:25501"),
		"no pid":   {},
		"marathon": netip.MustParseAddrPort("1.2.3.11:25501"),
	} {
		if got, ok := frameworks[name]; !ok || got != want {
			t.Errorf("framework %q addr = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if len(c.Frameworks) != 4 {
		t.Errorf("%d frameworks, want the 4 active ones: %+v", len(c.Frameworks), c.Frameworks)
	}
	if len(c.Agents) != 4 || c.Agents[3].Addr != netip.MustParseAddrPort("[2001:db8::1]:5051") ||
		c.Agents[0].ID != "20140916-194712-631065744-5050-4798-2" {
		t.Errorf("agents = %+v, want 4 in state order, the last at [2001:db8::1]:5051", c.Agents)
	}

	tasks := map[string]discovery.Task{}
	for _, a := range st.Apps {
		tasks[a.Tasks[0].Name] = a.Tasks[0]
	}
	liquor := tasks["liquor.store"]
	wantDI := &discovery.DiscoveryInfo{Name: "liquor.store", Ports: []discovery.DiscoveryPort{
		{Number: 80, Name: "http", Protocol: "tcp"}, {Number: 443, Name: "https", Protocol: "tcp"}}}
	if !reflect.DeepEqual(liquor.Discovery, wantDI) || liquor.DockerIP != netip.MustParseAddr("10.3.0.1") ||
		liquor.AgentID != "20140803-125133-3041283216-5050-2410-0" || liquor.ResourcePorts != 2 {
		t.Errorf("liquor.store = %+v, want DiscoveryInfo %+v, Docker IP 10.3.0.1 (latest running status), its agent, 2 resource ports", liquor, wantDI)
	}
	if nginx := tasks["nginx"]; nginx.MesosIP != netip.MustParseAddr("10.3.0.3") || nginx.DockerIP.IsValid() {
		t.Errorf("nginx = %+v, want Mesos IP 10.3.0.3 and no Docker IP", nginx)
	}
	toy := tasks["toy-store"]
	wantIPs := []netip.Addr{netip.MustParseAddr("12.0.1.3"), netip.MustParseAddr("12.0.1.2"), netip.MustParseAddr("fd01:b::1:8000:2")}
	if !reflect.DeepEqual(toy.IPs, wantIPs) {
		t.Errorf("toy-store IPs = %v, want %v", toy.IPs, wantIPs)
	}
}

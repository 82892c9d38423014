package marathon

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

const (
	upstreamPodGroup  = "dcos-dcos-ui/tests/_fixtures/marathon-1-pod-group/groups.json"
	upstreamTaskGroup = "dcos-dcos-ui/tests/_fixtures/marathon-1-task/groups.json"
)

// groupPods returns the PodStatus objects a GET /v2/groups body embeds,
// depth first, as raw JSON.
func groupPods(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	type group struct {
		Pods   []json.RawMessage `json:"pods"`
		Groups []json.RawMessage `json:"groups"`
	}
	var out []json.RawMessage
	var walk func(raw []byte)
	walk = func(raw []byte) {
		var g group
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("decode group: %v", err)
		}
		out = append(out, g.Pods...)
		for _, sub := range g.Groups {
			walk(sub)
		}
	}
	walk(body)
	return out
}

// decodeGroupPods decodes the pods of an upstream groups fixture both
// ways, one at a time (DecodePod) and as a ::status list (DecodePods), and
// checks that they agree.
func decodeGroupPods(t *testing.T, rel string) map[string]discovery.App {
	t.Helper()
	raws := groupPods(t, upstreamtest.File(t, rel))
	parts := make([][]byte, len(raws))
	for i, r := range raws {
		parts[i] = r
	}
	list, err := DecodePods(bytes.NewReader(append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')), nil)
	if err != nil {
		t.Fatalf("DecodePods(%s): %v", rel, err)
	}
	checkApps(t, list, false)
	out := map[string]discovery.App{}
	for i, raw := range raws {
		one, err := DecodePod(raw, nil)
		if err != nil {
			t.Fatalf("DecodePod(%s pod %d): %v", rel, i, err)
		}
		if !appsEqual(one, list[i]) {
			t.Fatalf("DecodePod and DecodePods differ for %s:\n%+v\n%+v", one.ID, one, list[i])
		}
		out[one.ID] = one
	}
	return out
}

func appsEqual(a, b discovery.App) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// vipLines builds apps and returns the Table's VIP lines.
func vipLines(apps ...discovery.App) []string {
	s := strings.TrimSpace(discovery.Build(apps, nil, time.Unix(0, 0)).String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestDecodePodsUpstreamCustomVIP is the DC/OS UI's /customvip: a VIP on
// an endpoint with hostPort 0 on the container network "dcos". The
// endpoint has an allocated host port, so the backend is agent : host
// port, not the container IP (facts B.4 row 4).
func TestDecodePodsUpstreamCustomVIP(t *testing.T) {
	pods := decodeGroupPods(t, upstreamPodGroup)
	p, ok := pods["/customvip"]
	if !ok {
		t.Fatalf("no /customvip among %v", slices.Collect(func(yield func(string) bool) {
			for id := range pods {
				yield(id)
			}
		}))
	}
	wantPorts := []discovery.Port{{Kind: discovery.PortMapped, HostPortIndex: 0, Protocols: []discovery.Protocol{discovery.TCP},
		Name: "foo", Labels: []discovery.Label{{Key: "VIP_0", Value: "/bar:500"}}}}
	if !slices.EqualFunc(p.Ports, wantPorts, func(a, b discovery.Port) bool {
		return appsEqual(discovery.App{Ports: []discovery.Port{a}}, discovery.App{Ports: []discovery.Port{b}})
	}) {
		t.Errorf("ports = %+v, want %+v", p.Ports, wantPorts)
	}
	if len(p.Tasks) != 1 {
		t.Fatalf("tasks = %+v, want one instance", p.Tasks)
	}
	task := p.Tasks[0]
	if task.ID != "customvip.instance-6d1cdda0-b713-11e8-9616-62da7168ca86" || task.State != discovery.TaskRunning ||
		task.AgentIP != netip.MustParseAddr("10.0.3.185") || !slices.Equal(task.HostPorts, []uint16{10968}) ||
		!slices.Equal(task.IPs, []netip.Addr{netip.MustParseAddr("9.0.2.2")}) || task.AgentID != "56f4d2c0-d31d-40b6-ad4d-ffdd97964448-S1" {
		t.Errorf("task = %+v", task)
	}
	if got, want := vipLines(p), []string{"tcp bar.marathon:500 -> 10.0.3.185:10968 w=1 task=customvip.instance-6d1cdda0-b713-11e8-9616-62da7168ca86"}; !slices.Equal(got, want) {
		t.Errorf("VIPs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDecodePodsUpstreamTraps decodes the inconsistent upstream pods of
// facts B.8 without failing and without inventing backends.
func TestDecodePodsUpstreamTraps(t *testing.T) {
	pods := decodeGroupPods(t, upstreamPodGroup)
	// /podses: host mode with a containerPort (invalid), statuses with
	// endpoints: [] — a host port is declared but none is allocated.
	p := pods["/podses"]
	if len(p.Ports) != 1 || p.Ports[0].Kind != discovery.PortHost {
		t.Errorf("/podses ports = %+v, want one host port", p.Ports)
	}
	if len(p.Tasks) == 0 {
		t.Fatal("/podses: no instances")
	}
	for _, task := range p.Tasks {
		if task.State != discovery.TaskRunning || !slices.Equal(task.HostPorts, []uint16{0}) || len(task.IPs) != 1 || task.IPs[0] != task.AgentIP {
			t.Errorf("/podses task = %+v, want running, host port unknown, IP = agent", task)
		}
	}

	// podEFGH (twice): a host and a container network, protocol "http" as
	// a string, container status "RUNNING", no instance networks.
	efgh := decodeGroupPods(t, upstreamTaskGroup)
	for _, id := range []string{"/some/group-with-pods/podEFGH", "/2_apps/podEFGH"} {
		p, ok := efgh[id]
		if !ok {
			t.Fatalf("no %s", id)
		}
		if len(p.Ports) != 0 {
			t.Errorf("%s ports = %+v, want none (http endpoints declare no VIP)", id, p.Ports)
		}
		if !p.HealthChecks {
			t.Errorf("%s: health checks not seen", id)
		}
		if len(p.Tasks) == 0 || p.Tasks[0].State != discovery.TaskRunning || len(p.Tasks[0].IPs) != 0 {
			t.Errorf("%s tasks = %+v, want the first running without IPs", id, p.Tasks)
		}
	}
}

// TestDecodePod covers the endpoint rules of facts B.4 and the instance
// folding, on PodStatus objects written as Marathon writes them.
func TestDecodePod(t *testing.T) {
	const instance = `{"id":"web.instance-1","status":"STABLE","agentHostname":"10.0.0.5","agentId":"S1",
		"networks":[{"name":"dcos","addresses":["9.0.0.7"]}],"lastUpdated":"2024-01-01T00:00:00.000Z",
		"containers":[%s]}`
	pod := func(networks, endpoints, containers string) string {
		return `{"id":"/web","spec":{"id":"/web","networks":` + networks + `,"containers":[{"name":"c1","endpoints":` + endpoints + `}]},
			"instances":[` + strings.Replace(instance, "%s", containers, 1) + `]}`
	}
	const running = `{"name":"c1","status":"TASK_RUNNING","endpoints":[{"name":"http","allocatedHostPort":31005}]}`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "container network without host port: instance IP : containerPort",
			in:   pod(`[{"mode":"container","name":"dcos"}]`, `[{"name":"http","containerPort":80,"protocol":["tcp"],"labels":{"VIP_0":"/web:80"}}]`, `{"name":"c1","status":"TASK_RUNNING","endpoints":[{"name":"http"}]}`),
			want: []string{"tcp web.marathon:80 -> 9.0.0.7:80 w=1 task=web.instance-1"},
		},
		{
			name: "container network with host port: agent : host port",
			in:   pod(`[{"mode":"container","name":"dcos"}]`, `[{"name":"http","containerPort":80,"hostPort":0,"labels":{"VIP_0":"/web:80"}}]`, running),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=1 task=web.instance-1"},
		},
		{
			name: "bridge: agent : host port",
			in:   pod(`[{"mode":"container/bridge"}]`, `[{"name":"http","containerPort":80,"labels":{"VIP_0":"/web:80"}}]`, running),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=1 task=web.instance-1"},
		},
		{
			name: "host: agent : host port, tcp and udp",
			in:   pod(`[{"mode":"host"}]`, `[{"name":"http","hostPort":0,"protocol":["tcp","udp","http"],"labels":{"VIP_0":"/web:80"}}]`, running),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=1 task=web.instance-1", "udp web.marathon:80 -> 10.0.0.5:31005 w=1 task=web.instance-1"},
		},
		{
			name: "no networks: host-like",
			in:   pod(`[]`, `[{"name":"http","labels":{"VIP_0":"/web:80"}}]`, running),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=1 task=web.instance-1"},
		},
		{
			name: "container not active: no allocated host port, no backend",
			in:   pod(`[{"mode":"host"}]`, `[{"name":"http","hostPort":0,"labels":{"VIP_0":"/web:80"}}]`, `{"name":"c1","status":"TASK_STAGING"}`),
		},
		{
			name: "killing container drains",
			in:   pod(`[{"mode":"host"}]`, `[{"name":"http","hostPort":0,"labels":{"VIP_0":"/web:80"}}]`, strings.Replace(running, "TASK_RUNNING", "TASK_KILLING", 1)),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=0 task=web.instance-1"},
		},
		{
			name: "unhealthy condition drains",
			in: pod(`[{"mode":"host"}]`, `[{"name":"http","hostPort":0,"labels":{"VIP_0":"/web:80"}}]`,
				`{"name":"c1","status":"TASK_RUNNING","conditions":[{"name":"healthy","value":"false"}],"endpoints":[{"name":"http","allocatedHostPort":31005}]}`),
			want: []string{"tcp web.marathon:80 -> 10.0.0.5:31005 w=0 task=web.instance-1"},
		},
		{
			name: "http-only endpoint declares nothing",
			in:   pod(`[{"mode":"container","name":"dcos"}]`, `[{"name":"http","containerPort":80,"protocol":["http"],"labels":{"VIP_0":"/web:80"}}]`, running),
		},
		{
			name: "terminal instance is no backend",
			in: strings.Replace(pod(`[{"mode":"container","name":"dcos"}]`, `[{"name":"http","containerPort":80,"labels":{"VIP_0":"/web:80"}}]`, running),
				`"status":"STABLE"`, `"status":"TERMINAL"`, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := DecodePod([]byte(tt.in), nil)
			if err != nil {
				t.Fatalf("DecodePod: %v", err)
			}
			checkApps(t, []discovery.App{app}, false)
			if got := vipLines(app); !slices.Equal(got, tt.want) {
				t.Errorf("VIPs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestDecodePodHostPortOrder checks that host port indexes follow the
// endpoints that have a host port, across containers, and skip those
// without.
func TestDecodePodHostPortOrder(t *testing.T) {
	const in = `{"id":"/p","spec":{"networks":[{"mode":"container","name":"n"}],"containers":[
		{"name":"a","endpoints":[{"name":"a1","containerPort":1,"hostPort":0},{"name":"a2","containerPort":2}]},
		{"name":"b","endpoints":[{"name":"b1","containerPort":3,"hostPort":0,"labels":{"VIP_0":"/b:3"}}]}]},
		"instances":[{"id":"p.instance-1","agentHostname":"10.0.0.9","networks":[{"name":"n","addresses":["9.0.0.1"]}],"containers":[
		{"name":"b","status":"TASK_RUNNING","endpoints":[{"name":"b1","allocatedHostPort":31002}]},
		{"name":"a","status":"TASK_RUNNING","endpoints":[{"name":"a1","allocatedHostPort":31001},{"name":"a2"}]}]}]}`
	app, err := DecodePod([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []discovery.PortKind{}
	for _, p := range app.Ports {
		kinds = append(kinds, p.Kind)
	}
	if want := []discovery.PortKind{discovery.PortMapped, discovery.PortContainer, discovery.PortMapped}; !slices.Equal(kinds, want) || app.Ports[2].HostPortIndex != 1 {
		t.Errorf("ports = %+v", app.Ports)
	}
	if got := app.Tasks[0].HostPorts; !slices.Equal(got, []uint16{31001, 31002}) {
		t.Errorf("host ports = %v, want [31001 31002]", got)
	}
	if got, want := vipLines(app), []string{"tcp b.marathon:3 -> 10.0.0.9:31002 w=1 task=p.instance-1"}; !slices.Equal(got, want) {
		t.Errorf("VIPs = %q, want %q", got, want)
	}
}

func TestDecodePodsErrors(t *testing.T) {
	for _, in := range []string{`{`, `{"apps":[]}`, `[{"spec":{}}]`, `[{"id":"/x","instances":{}}]`} {
		if _, err := DecodePods(strings.NewReader(in), nil); err == nil {
			t.Errorf("DecodePods(%q): no error", in)
		}
	}
	if apps, err := DecodePods(strings.NewReader(`[]`), nil); err != nil || len(apps) != 0 {
		t.Errorf("DecodePods([]) = %v, %v", apps, err)
	}
}

func FuzzDecodePod(f *testing.F) {
	f.Add([]byte(`{"id":"/web","spec":{"networks":[{"mode":"container","name":"dcos"}],"containers":[{"name":"c1","endpoints":[{"name":"http","containerPort":80,"labels":{"VIP_0":"/web:80"}}]}]},"instances":[{"id":"web.instance-1","agentHostname":"10.0.0.5","networks":[{"addresses":["9.0.0.7"]}],"containers":[{"name":"c1","status":"TASK_RUNNING","endpoints":[{"name":"http","allocatedHostPort":31005,"healthy":true}]}]}]}`))
	f.Add([]byte(`{"id":"/p","spec":{"containers":[{"name":"a","endpoints":[{"name":"a","protocol":"http"}]}]},"instances":[{"id":"i","status":"TERMINAL"}]}`))
	f.Add([]byte(`{"id":"/p","spec":{"networks":[{"mode":"host"},{"mode":"container"}],"containers":[{"name":"a","healthCheck":{},"endpoints":[{"name":"a","hostPort":-1,"containerPort":70000,"protocol":["udp","tcp","tcp"]}]}]},"instances":[{"id":"i","containers":[{"name":"a","status":"RUNNING","conditions":[{"name":"healthy","value":"true"}],"endpoints":[{"name":"a","allocatedHostPort":99999}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := DecodePod(data, nil)
		if err != nil {
			return
		}
		checkApps(t, []discovery.App{app}, false)
		for _, p := range app.Ports {
			if p.Kind != discovery.PortContainer && p.HostPortIndex < 0 {
				t.Fatalf("negative host port index: %+v", p)
			}
		}
		for _, task := range app.Tasks {
			if len(app.Ports) > 0 && task.HostPorts != nil {
				for _, p := range app.Ports {
					if p.Kind != discovery.PortContainer && p.HostPortIndex >= len(task.HostPorts) {
						t.Fatalf("port index %d beyond %d host ports", p.HostPortIndex, len(task.HostPorts))
					}
				}
			}
		}
		// The same object as a ::status list decodes the same.
		list, err := DecodePods(bytes.NewReader(append(append([]byte("["), data...), ']')), nil)
		if err != nil || len(list) != 1 || !appsEqual(list[0], app) {
			t.Fatalf("DecodePods of [%s] = %+v, %v; DecodePod gave %+v", data, list, err, app)
		}
		discovery.Build([]discovery.App{app}, nil, time.Unix(0, 0))
	})
}

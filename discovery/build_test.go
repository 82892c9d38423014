package discovery

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// hostTask is a task on agent with host ports.
func hostTask(id, agent string, state TaskState, health Health, ports ...uint16) Task {
	return Task{ID: id, AgentIP: netip.MustParseAddr(agent), HostPorts: ports, State: state, Health: health}
}

// vipPort is a port of kind k carrying VIP labels VIP_0, VIP_1, … .
func vipPort(k PortKind, protos []Protocol, values ...string) Port {
	p := Port{Kind: k, Protocols: protos}
	for i, v := range values {
		p.Labels = append(p.Labels, Label{Key: fmt.Sprintf("VIP_%d", i), Value: v})
	}
	return p
}

var (
	tcp    = []Protocol{TCP}
	tcpUDP = []Protocol{TCP, UDP}
)

// testAllocConfig uses small ranges so that addresses read easily.
var testAllocConfig = AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/24"), V6: netip.MustParsePrefix("fd01:c::/120")}

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		apps []App
		want string
	}{
		{
			name: "host ports and weights",
			apps: []App{{
				ID: "/web", Framework: "marathon", HealthChecks: true,
				Ports: []Port{vipPort(PortHost, tcp, "/web:80")},
				Tasks: []Task{
					hostTask("healthy", "10.0.0.1", TaskRunning, HealthHealthy, 31000),
					hostTask("no-result", "10.0.0.2", TaskRunning, HealthNone, 31001),
					hostTask("unhealthy", "10.0.0.3", TaskRunning, HealthUnhealthy, 31002),
					hostTask("killing", "10.0.0.4", TaskKilling, HealthHealthy, 31003),
					hostTask("starting", "10.0.0.5", TaskStarting, HealthNone, 31004),
					hostTask("gone", "10.0.0.6", TaskTerminal, HealthNone, 31005),
				},
			}},
			want: "tcp web.marathon:80 11.0.0.218 -> 10.0.0.1:31000 w=1 task=healthy, 10.0.0.2:31001 w=0 task=no-result, 10.0.0.3:31002 w=0 task=unhealthy, 10.0.0.4:31003 w=0 task=killing\n",
		},
		{
			name: "no health checks means healthy",
			apps: []App{{
				ID: "/web", Framework: "marathon",
				Ports: []Port{vipPort(PortMapped, tcp, "/web:80")},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)},
			}},
			want: "tcp web.marathon:80 11.0.0.218 -> 10.0.0.1:31000 w=1 task=t1\n",
		},
		{
			name: "second host port",
			apps: []App{{
				ID: "/web", Framework: "marathon",
				Ports: []Port{{Kind: PortHost, Protocols: tcp}, {Kind: PortHost, HostPortIndex: 1, Protocols: tcp, Labels: []Label{{Key: "VIP_0", Value: "/admin:9000"}}}},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000, 31001)},
			}},
			want: "tcp admin.marathon:9000 11.0.0.45 -> 10.0.0.1:31001 w=1 task=t1\n",
		},
		{
			name: "tcp and udp",
			apps: []App{{
				ID: "/dns", Framework: "marathon",
				Ports: []Port{vipPort(PortHost, tcpUDP, "/dns:53")},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31053)},
			}},
			want: "tcp dns.marathon:53 11.0.0.247 -> 10.0.0.1:31053 w=1 task=t1\n" +
				"udp dns.marathon:53 11.0.0.247 -> 10.0.0.1:31053 w=1 task=t1\n",
		},
		{
			name: "legacy prefix overrides port protocols",
			apps: []App{{
				ID: "/dns", Framework: "marathon",
				Ports: []Port{{Kind: PortHost, Protocols: tcpUDP, Labels: []Label{{Key: "VIP_PORT0", Value: "udp://1.2.3.4:5000"}}}},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31053)},
			}},
			want: "udp 1.2.3.4:5000 -> 10.0.0.1:31053 w=1 task=t1\n",
		},
		{
			name: "no protocols means tcp",
			apps: []App{{
				ID: "/web", Framework: "marathon",
				Ports: []Port{vipPort(PortHost, nil, "/web:80")},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)},
			}},
			want: "tcp web.marathon:80 11.0.0.218 -> 10.0.0.1:31000 w=1 task=t1\n",
		},
		{
			name: "container network both families",
			apps: []App{{
				ID: "/svc", Framework: "marathon",
				Ports: []Port{{Kind: PortContainer, ContainerPort: 8080, Protocols: tcp, Labels: []Label{
					{Key: "VIP_0", Value: "/svc:80"}, {Key: "VIP_1", Value: "10.9.0.1:80"}, {Key: "VIP_2", Value: "fd02::1:80"},
				}}},
				Tasks: []Task{{ID: "t1", State: TaskRunning, IPs: []netip.Addr{netip.MustParseAddr("9.0.1.6"), netip.MustParseAddr("fd03::6")}}},
			}},
			want: "tcp 10.9.0.1:80 -> 9.0.1.6:8080 w=1 task=t1\n" +
				"tcp [fd02::1]:80 -> [fd03::6]:8080 w=1 task=t1\n" +
				"tcp svc.marathon:80 11.0.0.128 fd01:c::c -> 9.0.1.6:8080 w=1 task=t1, [fd03::6]:8080 w=1 task=t1\n",
		},
		{
			name: "container port 0 is the host port",
			apps: []App{{
				ID: "/svc", Framework: "marathon",
				Ports: []Port{vipPort(PortContainer, tcp, "/svc:80")},
				Tasks: []Task{{ID: "t1", State: TaskRunning, HostPorts: []uint16{4000}, IPs: []netip.Addr{netip.MustParseAddr("9.0.1.6")}}},
			}},
			want: "tcp svc.marathon:80 11.0.0.128 -> 9.0.1.6:4000 w=1 task=t1\n",
		},
		{
			name: "unusable tasks leave no vip",
			apps: []App{{
				ID: "/web", Framework: "marathon",
				Ports: []Port{vipPort(PortHost, tcp, "/web:80"), vipPort(PortContainer, tcp, "/ctr:80")},
				Tasks: []Task{
					{ID: "no-agent", State: TaskRunning, HostPorts: []uint16{31000}},
					hostTask("no-ports", "10.0.0.1", TaskRunning, HealthNone),
					hostTask("port-zero", "10.0.0.1", TaskRunning, HealthNone, 0),
				},
			}},
			want: "",
		},
		{
			name: "bad labels do not break good ones",
			apps: []App{{
				ID: "/web", Framework: "marathon",
				Ports: []Port{{Kind: PortHost, Protocols: tcp, Labels: []Label{
					{Key: "VIP_0", Value: "invalid-port::1234"},
					{Key: "VIP_1", Value: "missing-port"},
					{Key: "VIP_2", Value: "/web:0"},
					{Key: "VIP_3", Value: "[fd01::1]:80"},
					{Key: "VIP_4", Value: "/web:80"},
					{Key: "Vip_5", Value: "not a vip"},
					{Key: "network-scope", Value: "host"},
				}}},
				Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)},
			}},
			want: "tcp web.marathon:80 11.0.0.218 -> 10.0.0.1:31000 w=1 task=t1\n" +
				"error /web VIP_0=invalid-port::1234: colon in name\n" +
				"error /web VIP_1=missing-port: no colon\n" +
				"error /web VIP_2=/web:0: port 0 out of range 1-65535\n" +
				"error /web VIP_3=[fd01::1]:80: bracketed address\n",
		},
		{
			name: "name collision merges and reports",
			apps: []App{
				{ID: "/a", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("ta", "10.0.0.1", TaskRunning, HealthNone, 31000)}},
				{ID: "/b", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "foo:80")},
					Tasks: []Task{hostTask("tb", "10.0.0.2", TaskRunning, HealthNone, 31000)}},
				{ID: "/c", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("tc", "10.0.0.3", TaskRunning, HealthNone, 31000)}},
			},
			want: "tcp foo.marathon:80 11.0.0.46 -> 10.0.0.1:31000 w=1 task=ta, 10.0.0.2:31000 w=1 task=tb, 10.0.0.3:31000 w=1 task=tc\n" +
				"error /b VIP_0=foo:80: name collision: /foo and foo both map to foo.marathon\n",
		},
		{
			name: "duplicate backends keep the highest weight",
			apps: []App{
				{ID: "/a", Framework: "marathon", HealthChecks: true, Ports: []Port{vipPort(PortHost, tcp, "/foo:80", "/foo:80")},
					Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)}},
				{ID: "/b", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)}},
			},
			want: "tcp foo.marathon:80 11.0.0.46 -> 10.0.0.1:31000 w=1 task=t1\n",
		},
		{
			name: "frameworks make different names",
			apps: []App{
				{ID: "/a", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("ta", "10.0.0.1", TaskRunning, HealthNone, 31000)}},
				{ID: "hello-world/tb", Framework: "Hello_World", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("tb", "10.0.0.2", TaskRunning, HealthNone, 31000)}},
				{ID: "x/tc", Framework: "//", Ports: []Port{vipPort(PortHost, tcp, "/foo:80")},
					Tasks: []Task{hostTask("tc", "10.0.0.3", TaskRunning, HealthNone, 31000)}},
			},
			want: "tcp foo.hello-world:80 11.0.0.171 -> 10.0.0.2:31000 w=1 task=tb\n" +
				"tcp foo.marathon:80 11.0.0.46 -> 10.0.0.1:31000 w=1 task=ta\n" +
				"error x/tc VIP_0=/foo:80: framework \"//\" has no DNS name\n",
		},
		{
			name: "ip vip takes its family only",
			apps: []App{{
				ID: "/a", Framework: "marathon",
				Ports: []Port{vipPort(PortHost, tcp, "10.0.0.100:80", "fd01::100:80")},
				Tasks: []Task{
					hostTask("v4", "10.0.0.1", TaskRunning, HealthNone, 31000),
					hostTask("v6", "fd00::1", TaskRunning, HealthNone, 31000),
					hostTask("mapped", "::ffff:10.0.0.2", TaskRunning, HealthNone, 31000),
				},
			}},
			want: "tcp 10.0.0.100:80 -> 10.0.0.1:31000 w=1 task=v4, 10.0.0.2:31000 w=1 task=mapped\n" +
				"tcp [fd01::100]:80 -> [fd00::1]:31000 w=1 task=v6\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Build(tt.apps, NewAllocator(testAllocConfig, nil), t0).String()
			if got != tt.want {
				t.Errorf("Build().String() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestBuildDeterministic(t *testing.T) {
	apps := benchApps(50, 5)
	want := Build(apps, NewAllocator(AllocConfig{}, nil), t0).String()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5 {
		shuffled := slices.Clone(apps)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for j := range shuffled {
			tasks := slices.Clone(shuffled[j].Tasks)
			r.Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
			shuffled[j].Tasks = tasks
		}
		if got := Build(shuffled, NewAllocator(AllocConfig{}, nil), t0).String(); got != want {
			t.Fatalf("shuffle %d: Build output differs", i)
		}
	}
}

func TestBuildAllocation(t *testing.T) {
	app := App{ID: "/web", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/web:80", "11.0.0.218:80")},
		Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000)}}
	gone := App{ID: "/old", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcp, "/old:80")}}
	alloc := NewAllocator(testAllocConfig, nil)
	tab := Build([]App{app, gone}, alloc, t0)
	// 11.0.0.218 is web's hash slot but an IP VIP holds it: web probes on.
	v, ok := tab.VIP(VIPKey{Protocol: TCP, Name: "web.marathon", Port: 80})
	if !ok || v.Addr4 != netip.MustParseAddr("11.0.0.219") || v.Addr6.IsValid() {
		t.Fatalf("VIP(web) = %+v, %v, want Addr4 11.0.0.219 and no Addr6", v, ok)
	}
	if _, ok := tab.VIP(VIPKey{Protocol: TCP, Name: "old.marathon", Port: 80}); ok {
		t.Error("VIP without backends is in the table")
	}
	if alloc.Len() != 1 {
		t.Errorf("allocator holds %d assignments, want 1 (none for a VIP without backends)", alloc.Len())
	}

	full := NewAllocator(AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/31")}, nil)
	tab = Build([]App{app}, full, t0)
	want := []LabelError{{AppID: "/web", Key: "VIP_0", Value: "/web:80", Reason: "assign ipv4 address to web.marathon: no usable range in 11.0.0.0/31"}}
	if !slices.Equal(tab.Errors, want) {
		t.Errorf("Errors = %v, want %v", tab.Errors, want)
	}
}

func TestTableNames(t *testing.T) {
	apps := []App{
		{ID: "/web", Framework: "marathon", Ports: []Port{vipPort(PortHost, tcpUDP, "/web:80"), vipPort(PortHost, tcp, "/web:443")},
			Tasks: []Task{hostTask("t1", "10.0.0.1", TaskRunning, HealthNone, 31000, 31001)}},
		{ID: "/v6", Framework: "marathon", HealthChecks: true, Ports: []Port{vipPort(PortHost, tcp, "/v6:80")},
			Tasks: []Task{hostTask("t2", "fd00::2", TaskRunning, HealthNone, 31000)}},
	}
	tab := Build(apps, NewAllocator(testAllocConfig, nil), t0)
	if tab.Names() != 2 {
		t.Fatalf("Names() = %d, want 2", tab.Names())
	}
	e, err := tab.Lookup("web.marathon")
	if err != nil {
		t.Fatalf("Lookup(web.marathon) = %v", err)
	}
	wantPorts := []PortProto{{TCP, 80}, {TCP, 443}, {UDP, 80}}
	if !slices.Equal(e.Ports, wantPorts) || !e.Addr4.IsValid() || e.Addr6.IsValid() {
		t.Errorf("Lookup(web.marathon) = %+v, want ports %v and only an IPv4 address", e, wantPorts)
	}
	if _, err := tab.Lookup("nope.marathon"); err != ErrNotFound {
		t.Errorf("Lookup(nope.marathon) = %v, want ErrNotFound", err)
	}

	ready := tab.WithAnnounced(func(v *VIP) bool { return v.Ready() })
	if ready.Names() != 1 || tab.Names() != 2 {
		t.Errorf("WithAnnounced(Ready).Names() = %d (original %d), want 1 (v6 has only weight-0 backends) and 2", ready.Names(), tab.Names())
	}
	if _, err := ready.Lookup("v6.marathon"); err != ErrNotFound {
		t.Errorf("unready name announced: %v", err)
	}
	if ready.String() != tab.String() {
		t.Error("WithAnnounced changed the VIPs")
	}
}

func TestNewTableSorts(t *testing.T) {
	be := []Backend{{Addr: netip.MustParseAddrPort("10.0.0.1:1"), Weight: 1}}
	vips := []VIP{
		{Key: VIPKey{Protocol: UDP, Name: "a.marathon", Port: 1}, Backends: be},
		{Key: VIPKey{Protocol: TCP, Name: "b.marathon", Port: 1}, Backends: be},
		{Key: VIPKey{Protocol: TCP, Name: "a.marathon", Port: 2}},
	}
	tab := NewTable(vips, nil, nil)
	var keys []string
	for v := range tab.VIPs.All() {
		keys = append(keys, fmt.Sprintf("%v %s:%d", v.Key.Protocol, v.Key.Name, v.Key.Port))
	}
	if want := []string{"tcp a.marathon:2", "tcp b.marathon:1", "udp a.marathon:1"}; !slices.Equal(keys, want) {
		t.Errorf("NewTable order = %v, want %v", keys, want)
	}
	if e, err := tab.Lookup("a.marathon"); err != nil || !slices.Equal(e.Ports, []PortProto{{UDP, 1}}) {
		t.Errorf("Lookup(a.marathon) = %+v, %v: want only the VIP with backends", e, err)
	}
	if v, ok := tab.VIP(VIPKey{Protocol: TCP, Name: "a.marathon", Port: 2}); !ok || v.Key.Port != 2 {
		t.Errorf("VIP(tcp a.marathon:2) = %v, %v", v, ok)
	}
	var nilTable *Table
	if _, ok := nilTable.VIP(VIPKey{}); ok || nilTable.String() != "" {
		t.Error("nil Table is not empty")
	}
	if s := tab.String(); !strings.Contains(s, "tcp a.marathon:2 ->\n") {
		t.Errorf("String() of a VIP without backends:\n%s", s)
	}
}

// benchApps returns n apps with tasksPerApp tasks each, on 1,000 agents:
// host-port apps, some with health checks, and every tenth on a container
// network with IPv4 and IPv6 task addresses.
func benchApps(n, tasksPerApp int) []App {
	apps := make([]App, n)
	for i := range apps {
		app := App{ID: fmt.Sprintf("/group%d/app%d", i%100, i), Framework: "marathon", HealthChecks: i%3 == 0}
		port := vipPort(PortHost, tcp, fmt.Sprintf("/group%d/app%d:80", i%100, i))
		if i%10 == 0 {
			port = vipPort(PortContainer, tcpUDP, fmt.Sprintf("/group%d/app%d:80", i%100, i))
			port.ContainerPort = 8080
		}
		app.Ports = []Port{port}
		app.Tasks = make([]Task, tasksPerApp)
		for j := range app.Tasks {
			k := i*tasksPerApp + j
			agent := netip.AddrFrom4([4]byte{10, 1, byte(k % 1000 / 250), byte(k % 250)})
			app.Tasks[j] = Task{
				ID:        fmt.Sprintf("app%d.task%d", i, j),
				AgentIP:   agent,
				HostPorts: []uint16{uint16(20000 + k%10000)},
				IPs:       []netip.Addr{netip.AddrFrom4([4]byte{9, byte(k >> 16), byte(k >> 8), byte(k)}), netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(k)})},
				State:     TaskRunning,
				Health:    Health(k % 3),
			}
		}
		apps[i] = app
	}
	return apps
}

func benchmarkBuild(b *testing.B, nApps, tasksPerApp int) {
	apps := benchApps(nApps, tasksPerApp)
	alloc := NewAllocator(AllocConfig{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		Build(apps, alloc, t0)
	}
}

func BenchmarkBuild1kApps10kTasks(b *testing.B)   { benchmarkBuild(b, 1000, 10) }
func BenchmarkBuild10kApps100kTasks(b *testing.B) { benchmarkBuild(b, 10000, 10) }

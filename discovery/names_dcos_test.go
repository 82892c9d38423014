package discovery

// Tests of dcos-dns's task names, a fuzz test of every name the rules make
// and the benchmark of AppRecords.

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestAppRecordsDCOS(t *testing.T) {
	tests := []struct {
		name string
		app  *App
		want []string
	}{{
		name: "host ports: autoip is the agent IP; containerip the task IPs",
		app:  mesosApp("marathon", Task{Name: "web", State: TaskRunning, HostPorts: []uint16{31000}, ResourcePorts: 1, IPs: []netip.Addr{taskIP}}),
		want: []string{
			"dcos web.marathon.agentip A 10.0.0.5",
			"dcos web.marathon.autoip A 10.0.0.5",
			"dcos web.marathon.containerip A 9.0.0.7",
		},
	}, {
		name: "no host port, task IPs: autoip is the task IPs",
		app:  mesosApp("marathon", Task{Name: "web", State: TaskRunning, IPs: []netip.Addr{taskIP, taskIP6}}),
		want: []string{
			"dcos web.marathon.agentip A 10.0.0.5",
			"dcos web.marathon.autoip A 9.0.0.7",
			"dcos web.marathon.autoip AAAA fd01:b::7",
			"dcos web.marathon.containerip A 9.0.0.7",
			"dcos web.marathon.containerip AAAA fd01:b::7",
		},
	}, {
		name: "no task IP: no containerip, autoip is the agent IP",
		app:  mesosApp("marathon", Task{Name: "web", State: TaskRunning}),
		want: []string{
			"dcos web.marathon.agentip A 10.0.0.5",
			"dcos web.marathon.autoip A 10.0.0.5",
		},
	}, {
		name: "task part is the DiscoveryInfo name, dots become dashes; framework is one label",
		app:  mesosApp("hello.world", Task{Name: "ignored", State: TaskRunning, Discovery: &DiscoveryInfo{Name: "api.Hello_World"}}),
		want: []string{
			"dcos api-hello-world.hello-world.agentip A 10.0.0.5",
			"dcos api-hello-world.hello-world.autoip A 10.0.0.5",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := zoneLines((NamesConfig{}).AppRecords(tt.app, nil), ZoneDCOS)
			if !slices.Equal(got, tt.want) {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAppRecordsDCOSMarathon(t *testing.T) {
	app := &App{ID: "/mygroup/myapp", Framework: "marathon",
		Tasks: []Task{{ID: testTaskID, AgentID: testAgentID, AgentIP: agentIP, State: TaskRunning, IPs: []netip.Addr{taskIP}}}}
	got := zoneLines((NamesConfig{}).AppRecords(app, nil), ZoneDCOS)
	want := []string{ // UPSTREAM.md §2.2: myapp-mygroup.marathon.containerip
		"dcos myapp-mygroup.marathon.agentip A 10.0.0.5",
		"dcos myapp-mygroup.marathon.autoip A 9.0.0.7",
		"dcos myapp-mygroup.marathon.containerip A 9.0.0.7",
	}
	if !slices.Equal(got, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClusterRecordsDCOS(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name string
		cl   *Cluster
		want []string
	}{{
		name: "leader and the configured masters",
		cl:   &Cluster{Leader: netip.MustParseAddrPort("10.0.0.2:5050"), Masters: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}},
		want: []string{"dcos leader A 10.0.0.2", "dcos master A 10.0.0.1", "dcos master A 10.0.0.2"},
	}, {
		name: "no master configured: master is the leader",
		cl:   &Cluster{Leader: netip.MustParseAddrPort("10.0.0.2:5050")},
		want: []string{"dcos leader A 10.0.0.2", "dcos master A 10.0.0.2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []ZoneRecord
			for _, r := range (NamesConfig{}).ClusterRecords(tt.cl) {
				if r.Zone == ZoneDCOS {
					recs = append(recs, r)
				}
			}
			if got := recordLines(recs); !slices.Equal(got, tt.want) {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// FuzzAppRecords checks that whatever the names upstream hands in, every
// record AppRecords and ClusterRecords make can be asked over DNS (what
// cannot is skipped and counted), and nothing crashes.
func FuzzAppRecords(f *testing.F) {
	f.Add("web", "", "marathon", testAgentID, "http", "tcp", uint16(80), false)
	f.Add(strings.Repeat("x", 300), "web.group", "foo bar-2.0.1", "a-S1", "", "", uint16(0), true)
	f.Add("Ünï", "My App", "ÜÜ..", "-", "_p_", "TCP", uint16(65535), false)
	f.Add("a", "a..b", ".", "", "x", "sctp", uint16(1), true)
	f.Fuzz(func(t *testing.T, taskName, diName, fw, agentID, portName, proto string, number uint16, rfc952 bool) {
		cfg := NamesConfig{EnforceRFC952: rfc952, IPSources: []string{"netinfo", "host"}}
		task := Task{ID: taskName + "-id", Name: taskName, AgentID: agentID, AgentIP: agentIP, State: TaskRunning,
			IPs: []netip.Addr{taskIP6, taskIP}, HostPorts: []uint16{number, 31000}, ResourcePorts: 2}
		if diName != "" {
			task.Discovery = &DiscoveryInfo{Name: diName, Ports: []DiscoveryPort{{Number: number, Name: portName, Protocol: proto}}}
		}
		apps := []*App{
			{ID: fw + "/" + task.ID, Framework: fw, FromMesos: true, Tasks: []Task{task}},
			{ID: "/" + taskName + "/" + diName, Framework: fw, Tasks: []Task{task},
				Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP, UDP}, Name: portName}}},
		}
		maxName := cfg.maxName()
		check := func(r ZoneRecord) {
			if !validName(r.Name, maxName) || r.Type == TypeSRV && !validName(r.Target, maxName) {
				t.Fatalf("record %+v cannot be asked over DNS", r)
			}
			if (r.Type == TypeA) != r.Addr.Is4() && r.Type != TypeSRV {
				t.Fatalf("record %+v: type and address differ", r)
			}
		}
		for _, app := range apps {
			for _, tr := range cfg.AppRecords(app, nil) {
				for _, r := range tr.Records {
					check(r)
				}
			}
		}
		cl := &Cluster{Leader: netip.MustParseAddrPort("10.0.0.1:5050"),
			Frameworks: []Framework{{Name: fw, Addr: netip.MustParseAddrPort("10.0.0.2:80")}}}
		for _, r := range cfg.ClusterRecords(cl) {
			check(r)
		}
	})
}

// BenchmarkAppRecords measures the records of a Marathon app of 10 tasks
// with two ports: what an event changing one app costs.
func BenchmarkAppRecords(b *testing.B) {
	app := &App{ID: "/group/web", Framework: "marathon", Ports: []Port{
		{Kind: PortHost, HostPortIndex: 0, Protocols: []Protocol{TCP}, Name: "http"},
		{Kind: PortHost, HostPortIndex: 1, Protocols: []Protocol{TCP, UDP}},
	}}
	for i := range 10 {
		app.Tasks = append(app.Tasks, Task{ID: "group_web." + strings.Repeat("0", i) + "-b8db9f73-562f-11e4-a088-c20493233aa5",
			AgentID: testAgentID, AgentIP: agentIP, State: TaskRunning, HostPorts: []uint16{31000, 31001}, IPs: []netip.Addr{taskIP}})
	}
	cfg := NamesConfig{}
	b.ReportAllocs()
	for b.Loop() {
		cfg.AppRecords(app, nil)
	}
}

package discovery

// Tests of mesos-dns's names: each row names the rule (UPSTREAM.md §3.5)
// it checks, with the records written as zone lines.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// testTaskID hashes to "4dfjd" (mesos-dns's "liquor-store-4dfjd-0").
const (
	testTaskID  = "liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5"
	testAgentID = "20160107-001256-134875658-5050-27524-S0"
)

var (
	agentIP = netip.MustParseAddr("10.0.0.5")
	taskIP  = netip.MustParseAddr("9.0.0.7")
	taskIP6 = netip.MustParseAddr("fd01:b::7")
)

// recordLines renders records as sorted zone lines:
// "mesos web.marathon A 10.0.0.5", "mesos _web._tcp.marathon SRV t:80".
func recordLines(recs []ZoneRecord) []string {
	var out []string
	for _, r := range recs {
		data := r.Addr.String()
		if r.Type == TypeSRV {
			data = fmt.Sprintf("%s:%d", r.Target, r.Port)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", r.Zone, r.Name, r.Type, data))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func zoneLines(trs []*TaskRecords, z RecordZone) []string {
	var recs []ZoneRecord
	for _, tr := range trs {
		for _, r := range tr.Records {
			if r.Zone == z {
				recs = append(recs, r)
			}
		}
	}
	return recordLines(recs)
}

func skipped(trs []*TaskRecords) int {
	n := 0
	for _, tr := range trs {
		n += tr.Skipped
	}
	return n
}

func mesosApp(fw string, t Task) *App {
	if t.ID == "" {
		t.ID = testTaskID
	}
	if t.AgentID == "" {
		t.AgentID = testAgentID
	}
	if !t.AgentIP.IsValid() {
		t.AgentIP = agentIP
	}
	return &App{ID: fw + "/" + t.ID, Framework: fw, FromMesos: true, Tasks: []Task{t}}
}

func TestAppRecordsMesos(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NamesConfig
		app     *App
		want    []string
		skipped int
	}{{
		name: "no DiscoveryInfo: task and canonical names, .slave twins, resource SRV under .fw and .fw.slave",
		app:  mesosApp("marathon", Task{Name: "web", State: TaskRunning, HostPorts: []uint16{31000, 31001}, ResourcePorts: 1}),
		want: []string{
			"mesos _web._tcp.marathon SRV web-4dfjd-s0.marathon.slave:31000",
			"mesos _web._tcp.marathon.slave SRV web-4dfjd-s0.marathon.slave:31000",
			"mesos _web._udp.marathon SRV web-4dfjd-s0.marathon.slave:31000",
			"mesos _web._udp.marathon.slave SRV web-4dfjd-s0.marathon.slave:31000",
			"mesos web-4dfjd-s0.marathon A 10.0.0.5",
			"mesos web-4dfjd-s0.marathon.slave A 10.0.0.5",
			"mesos web.marathon A 10.0.0.5",
			"mesos web.marathon.slave A 10.0.0.5",
		},
	}, {
		name: "task name is one label: dots become dashes; framework name split on dots, each part normalised",
		app:  mesosApp("foo bar-2.0.1", Task{Name: "My_App.v1", State: TaskRunning}),
		want: []string{
			"mesos my-app-v1-4dfjd-s0.foobar-2.0.1 A 10.0.0.5",
			"mesos my-app-v1-4dfjd-s0.foobar-2.0.1.slave A 10.0.0.5",
			"mesos my-app-v1.foobar-2.0.1 A 10.0.0.5",
			"mesos my-app-v1.foobar-2.0.1.slave A 10.0.0.5",
		},
	}, {
		name: "RFC 952: leading digits trimmed",
		cfg:  NamesConfig{EnforceRFC952: true},
		app:  mesosApp("fw", Task{Name: "4web", State: TaskRunning}),
		want: []string{
			"mesos web-4dfjd-s0.fw A 10.0.0.5",
			"mesos web-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos web.fw A 10.0.0.5",
			"mesos web.fw.slave A 10.0.0.5",
		},
	}, {
		name: "DiscoveryInfo: LEGACY raw name (dots: several labels) and its label; resource SRV only under .slave; DI SRV → canonical",
		app: mesosApp("marathon", Task{Name: "ignored", State: TaskRunning, HostPorts: []uint16{31000}, ResourcePorts: 1,
			Discovery: &DiscoveryInfo{Name: "web.group", Ports: []DiscoveryPort{{Number: 8080, Name: "http", Protocol: "tcp"}}}}),
		want: []string{
			"mesos _http._web-group._tcp.marathon SRV web-group-4dfjd-s0.marathon:8080",
			"mesos _http._web.group._tcp.marathon SRV web.group-4dfjd-s0.marathon:8080",
			"mesos _web-group._tcp.marathon SRV web-group-4dfjd-s0.marathon:8080",
			"mesos _web-group._tcp.marathon.slave SRV web-group-4dfjd-s0.marathon.slave:31000",
			"mesos _web-group._udp.marathon.slave SRV web-group-4dfjd-s0.marathon.slave:31000",
			"mesos _web.group._tcp.marathon SRV web.group-4dfjd-s0.marathon:8080",
			"mesos _web.group._tcp.marathon.slave SRV web.group-4dfjd-s0.marathon.slave:31000",
			"mesos _web.group._udp.marathon.slave SRV web.group-4dfjd-s0.marathon.slave:31000",
			"mesos web-group-4dfjd-s0.marathon A 10.0.0.5",
			"mesos web-group-4dfjd-s0.marathon.slave A 10.0.0.5",
			"mesos web-group.marathon A 10.0.0.5",
			"mesos web-group.marathon.slave A 10.0.0.5",
			"mesos web.group-4dfjd-s0.marathon A 10.0.0.5",
			"mesos web.group-4dfjd-s0.marathon.slave A 10.0.0.5",
			"mesos web.group.marathon A 10.0.0.5",
			"mesos web.group.marathon.slave A 10.0.0.5",
		},
	}, {
		name: "DI protocol: empty gives tcp and udp, TCP lowered, another word kept; port number 0 kept as mesos-dns serves it",
		app: mesosApp("fw", Task{Name: "db", State: TaskRunning, Discovery: &DiscoveryInfo{Name: "db", Ports: []DiscoveryPort{
			{Number: 5432}, {Number: 5433, Protocol: "TCP"}, {Number: 9, Protocol: "sctp"}, {Number: 0, Name: "default", Protocol: "tcp"}}}}),
		want: []string{
			"mesos _db._sctp.fw SRV db-4dfjd-s0.fw:9",
			"mesos _db._tcp.fw SRV db-4dfjd-s0.fw:0",
			"mesos _db._tcp.fw SRV db-4dfjd-s0.fw:5432",
			"mesos _db._tcp.fw SRV db-4dfjd-s0.fw:5433",
			"mesos _db._udp.fw SRV db-4dfjd-s0.fw:5432",
			"mesos _default._db._tcp.fw SRV db-4dfjd-s0.fw:0",
			"mesos db-4dfjd-s0.fw A 10.0.0.5",
			"mesos db-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos db.fw A 10.0.0.5",
			"mesos db.fw.slave A 10.0.0.5",
		},
	}, {
		name: "a DiscoveryInfo without a name is none (HasDiscoveryInfo)",
		app: mesosApp("fw", Task{Name: "db", State: TaskRunning, HostPorts: []uint16{1}, ResourcePorts: 1,
			Discovery: &DiscoveryInfo{Ports: []DiscoveryPort{{Number: 5432}}}}),
		want: []string{
			"mesos _db._tcp.fw SRV db-4dfjd-s0.fw.slave:1",
			"mesos _db._tcp.fw.slave SRV db-4dfjd-s0.fw.slave:1",
			"mesos _db._udp.fw SRV db-4dfjd-s0.fw.slave:1",
			"mesos _db._udp.fw.slave SRV db-4dfjd-s0.fw.slave:1",
			"mesos db-4dfjd-s0.fw A 10.0.0.5",
			"mesos db-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos db.fw A 10.0.0.5",
			"mesos db.fw.slave A 10.0.0.5",
		},
	}, {
		name: "IPSources host,netinfo: A from the agent, AAAA from netinfo (first IPv4, first IPv6)",
		app:  mesosApp("fw", Task{Name: "v6", State: TaskRunning, IPs: []netip.Addr{taskIP6, netip.MustParseAddr("fd01:b::8")}}),
		want: []string{
			"mesos v6-4dfjd-s0.fw A 10.0.0.5",
			"mesos v6-4dfjd-s0.fw AAAA fd01:b::7",
			"mesos v6-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos v6.fw A 10.0.0.5",
			"mesos v6.fw AAAA fd01:b::7",
			"mesos v6.fw.slave A 10.0.0.5",
		},
	}, {
		name: "IPSources netinfo,mesos,host: the container IP first; .slave keeps the agent IP",
		cfg:  NamesConfig{IPSources: []string{"netinfo", "mesos", "host"}},
		app:  mesosApp("fw", Task{Name: "c", State: TaskRunning, MesosIP: netip.MustParseAddr("9.9.9.9"), IPs: []netip.Addr{taskIP}}),
		want: []string{
			"mesos c-4dfjd-s0.fw A 9.0.0.7",
			"mesos c-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos c.fw A 9.0.0.7",
			"mesos c.fw.slave A 10.0.0.5",
		},
	}, {
		name: "IPSources docker only: no docker IP, no task A",
		cfg:  NamesConfig{IPSources: []string{"docker"}},
		app:  mesosApp("fw", Task{Name: "c", State: TaskRunning}),
		want: []string{
			"mesos c-4dfjd-s0.fw.slave A 10.0.0.5",
			"mesos c.fw.slave A 10.0.0.5",
		},
	}, {
		name: "300-character task name: label cut at 63, canonical labels exceed 63 and are skipped",
		app:  mesosApp("fw", Task{Name: strings.Repeat("x", 300), State: TaskRunning, HostPorts: []uint16{1}, ResourcePorts: 1}),
		want: []string{
			"mesos " + strings.Repeat("x", 63) + ".fw A 10.0.0.5",
			"mesos " + strings.Repeat("x", 63) + ".fw.slave A 10.0.0.5",
		},
		skipped: 2 + 4, // canonical A ×2; SRV ×4 ("_" + 63 octets is 64, and the target is canonical)
	}, {
		name:    "raw DiscoveryInfo name with upper case and a space: the raw generation cannot be asked, skipped",
		app:     mesosApp("fw", Task{Name: "x", State: TaskRunning, Discovery: &DiscoveryInfo{Name: "My App"}}),
		want:    []string{"mesos myapp-4dfjd-s0.fw A 10.0.0.5", "mesos myapp-4dfjd-s0.fw.slave A 10.0.0.5", "mesos myapp.fw A 10.0.0.5", "mesos myapp.fw.slave A 10.0.0.5"},
		skipped: 4,
	}, {
		name:    "framework name with nothing to keep: every name has an empty label, skipped",
		app:     mesosApp("ÜÜ..", Task{Name: "x", State: TaskRunning}),
		skipped: 4 + 2, // mesos A ×4; dcos agentip and autoip

	}, {
		name: "not running: nothing",
		app:  mesosApp("fw", Task{Name: "x", State: TaskKilling}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trs := tt.cfg.AppRecords(tt.app, nil)
			got := zoneLines(trs, ZoneMesos)
			if !slices.Equal(got, tt.want) {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if n := skipped(trs); n != tt.skipped {
				t.Errorf("skipped %d, want %d", n, tt.skipped)
			}
		})
	}
}

func TestAppRecordsKnownAgents(t *testing.T) {
	app := mesosApp("fw", Task{Name: "x", State: TaskRunning})
	if got := (NamesConfig{}).AppRecords(app, func(string) bool { return false }); len(got) != 0 {
		t.Errorf("task on an unknown agent: %d TaskRecords, want none", len(got))
	}
	got := (NamesConfig{}).AppRecords(app, func(id string) bool { return id == testAgentID })
	if len(got) != 1 || got[0].ID != testTaskID || got[0].Framework != "fw" || got[0].Name != "x" {
		t.Fatalf("task on a known agent: %+v", got)
	}
}

func TestMarathonTaskName(t *testing.T) {
	tests := []struct{ id, want string }{
		{"/web", "web"},
		{"/group/web", "web.group"},
		{"/a/b/c", "c.b.a"},
		{"a//b/", "b.a"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MarathonTaskName(tt.id); got != tt.want {
			t.Errorf("MarathonTaskName(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestMarathonDiscovery(t *testing.T) {
	app := &App{ID: "/group/web", Ports: []Port{
		{Kind: PortHost, HostPortIndex: 0, Protocols: []Protocol{TCP, UDP}, Name: "dns"},
		{Kind: PortMapped, HostPortIndex: 1, Protocols: []Protocol{TCP}},
		{Kind: PortContainer, ContainerPort: 8080, Protocols: []Protocol{TCP}, Name: "http"},
		{Kind: PortMapped, HostPortIndex: 5, Protocols: []Protocol{TCP}}, // the task lacks it
	}}
	got := MarathonDiscovery(app, &Task{HostPorts: []uint16{31000, 31001}})
	want := &DiscoveryInfo{Name: "web.group", Ports: []DiscoveryPort{
		{Number: 31000, Name: "dns", Protocol: "tcp"},
		{Number: 31000, Name: "dns", Protocol: "udp"},
		{Number: 31001, Protocol: "tcp"},
		{Number: 8080, Name: "http", Protocol: "tcp"},
	}}
	if got.Name != want.Name || !slices.Equal(got.Ports, want.Ports) {
		t.Errorf("MarathonDiscovery = %+v, want %+v", got, want)
	}
}

// TestAppRecordsMarathon checks a Marathon app's tasks are named as
// mesos-dns names them from Mesos: DiscoveryInfo named as the task
// (LEGACY raw and label), resource ports = all host ports.
func TestAppRecordsMarathon(t *testing.T) {
	app := &App{ID: "/hello-world", Framework: "marathon",
		Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP}, Name: "api"}},
		Tasks: []Task{{ID: testTaskID, AgentID: testAgentID, AgentIP: agentIP, State: TaskRunning, HostPorts: []uint16{9453}}}}
	got := zoneLines((NamesConfig{}).AppRecords(app, nil), ZoneMesos)
	want := []string{
		"mesos _api._hello-world._tcp.marathon SRV hello-world-4dfjd-s0.marathon:9453",
		"mesos _hello-world._tcp.marathon SRV hello-world-4dfjd-s0.marathon:9453",
		"mesos _hello-world._tcp.marathon.slave SRV hello-world-4dfjd-s0.marathon.slave:9453",
		"mesos _hello-world._udp.marathon.slave SRV hello-world-4dfjd-s0.marathon.slave:9453",
		"mesos hello-world-4dfjd-s0.marathon A 10.0.0.5",
		"mesos hello-world-4dfjd-s0.marathon.slave A 10.0.0.5",
		"mesos hello-world.marathon A 10.0.0.5",
		"mesos hello-world.marathon.slave A 10.0.0.5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClusterRecordsMesos(t *testing.T) {
	ap := netip.MustParseAddrPort
	ip := netip.MustParseAddr
	tests := []struct {
		name string
		cl   *Cluster
		want []string
	}{{
		name: "leader among the configured masters takes its own index; frameworks; agents' SRV once per port",
		cl: &Cluster{Leader: ap("10.0.0.2:5050"), Masters: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")},
			Frameworks: []Framework{{Name: "marathon", Addr: ap("10.0.0.2:15101")}, {Name: "Marathon", Addr: ap("10.0.0.9:15102")}, {Name: "no pid", Addr: ap("10.0.0.7:0")}, {Name: "nowhere"}},
			Agents:     []Agent{{ID: "a", Addr: ap("10.0.1.1:5051")}, {ID: "b", Addr: ap("10.0.1.2:5051")}, {ID: "c", Addr: ap("10.0.1.3:5052")}}},
		want: []string{
			"mesos _framework._tcp.marathon SRV marathon:15101",
			"mesos _framework._tcp.marathon SRV marathon:15102",
			"mesos _leader._tcp SRV leader:5050",
			"mesos _leader._udp SRV leader:5050",
			"mesos _slave._tcp SRV slave:5051",
			"mesos _slave._tcp SRV slave:5052",
			"mesos leader A 10.0.0.2",
			"mesos marathon A 10.0.0.2",
			"mesos marathon A 10.0.0.9",
			"mesos master A 10.0.0.1",
			"mesos master A 10.0.0.2",
			"mesos master A 10.0.0.3",
			"mesos master0 A 10.0.0.1",
			"mesos master1 A 10.0.0.2",
			"mesos master2 A 10.0.0.3",
			"mesos nopid A 10.0.0.7",
			"mesos slave A 10.0.1.1",
			"mesos slave A 10.0.1.2",
			"mesos slave A 10.0.1.3",
		},
	}, {
		name: "leader not among the masters takes the next index; duplicate masters once",
		cl:   &Cluster{Leader: ap("[fd00::9]:5050"), Masters: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.1")}},
		want: []string{
			"mesos _leader._tcp SRV leader:5050",
			"mesos _leader._udp SRV leader:5050",
			"mesos leader AAAA fd00::9",
			"mesos master A 10.0.0.1",
			"mesos master AAAA fd00::9",
			"mesos master0 A 10.0.0.1",
			"mesos master1 AAAA fd00::9",
		},
	}, {
		name: "no leader: no master records (mesos-dns rejects the state)",
		cl:   &Cluster{Masters: []netip.Addr{ip("10.0.0.1")}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []ZoneRecord
			for _, r := range (NamesConfig{}).ClusterRecords(tt.cl) {
				if r.Zone == ZoneMesos {
					recs = append(recs, r)
				}
			}
			if got := recordLines(recs); !slices.Equal(got, tt.want) {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestNamesConfigValidate(t *testing.T) {
	if err := (NamesConfig{IPSources: []string{"host", "netinfo", "docker", "mesos"}}).Validate(); err != nil {
		t.Errorf("Validate(known sources) = %v", err)
	}
	err := (NamesConfig{IPSources: []string{"host", "autoip"}}).Validate()
	if err == nil || !strings.Contains(err.Error(), `"autoip"`) {
		t.Errorf("Validate(autoip) = %v, want an error naming it", err)
	}
	if err := (NamesConfig{LongestDomain: strings.Repeat("d", 260)}).Validate(); err == nil {
		t.Error("Validate(a 260-octet domain) = nil, want an error")
	}
}

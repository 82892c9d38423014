package marathon

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

var update = flag.Bool("update", false, "rewrite testdata/mesos/*.golden")

// goldenBuilt is the fixed build time of golden tables.
var goldenBuilt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// TestMesosGolden decodes every upstream Mesos state that carries VIP
// labels (all frameworks included), builds the VIP table with a fresh
// allocator and compares Table.String() with testdata/mesos/<base>.golden.
// Each row says what upstream expects of the file; the golden file shows
// it (UPSTREAM.md §1, §7).
func TestMesosGolden(t *testing.T) {
	tests := []struct {
		name   string // golden file base name
		file   string // upstream path
		expect string // what upstream expects, checked by reading the golden file
	}{
		{"named-base-vips", "dcos-dcos-net/apps/dcos_l4lb/testdata/named-base-vips.json",
			"merp:5000 → running task on agent 10.0.0.243:12049; the KILLED task's IP VIP 1.2.3.4:5000 has no backend (completed task)"},
		{"overlay", "dcos-dcos-net/apps/dcos_l4lb/testdata/overlay.json",
			"1.2.3.4:5000 network-scope=container → container IP 9.0.1.130:80; finished bridge task http-bridge:80 has no backend"},
		{"docker", "dcos-dcos-net/apps/dcos_l4lb/testdata/docker.json",
			"legacy vip_PORT0=tcp://1.2.3.4:5000 → agent IP : first port resource"},
		{"invalid-port", "dcos-dcos-net/apps/dcos_l4lb/testdata/invalid-port.json",
			"VIP_0=invalid-port::1234: no VIP (label error only)"},
		{"missing-port", "dcos-dcos-net/apps/dcos_l4lb/testdata/missing-port.json",
			"VIP_0=missing-port: no VIP, a label error"},
		{"state2", "dcos-dcos-net/apps/dcos_l4lb/testdata/state2.json",
			"vip_PORT0=tcp://1.2.3.4:5000 on port 8014 of the running task"},
		{"state2_ipv6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state2_ipv6.json",
			"IPv6 IP VIP fd01:d::1:80, container scope → only the task's IPv6 address (same family)"},
		{"state3", "dcos-dcos-net/apps/dcos_l4lb/testdata/state3.json",
			"agent /state: 1.2.3.4:5000 → agent 10.0.0.243:26645 (agent IP from the top-level pid)"},
		{"state4", "dcos-dcos-net/apps/dcos_l4lb/testdata/state4.json",
			"1.2.3.4:5000 → agent IP:26645"},
		{"state5", "dcos-dcos-net/apps/dcos_l4lb/testdata/state5.json",
			"1.2.3.4:5000 in tcp and in udp, each → agent IP:26645"},
		{"state6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state6.json",
			"1.2.3.4:80 container scope → overlay IP 9.0.1.130:80"},
		{"state_di", "dcos-dcos-net/apps/dcos_l4lb/testdata/state_di.json",
			"discovery-info VIP_0 1.2.3.4:8080 → agent IP:19426"},
		{"state_ipv6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state_ipv6.json",
			"named /foo:80 container scope → both 12.0.1.4:80 and [fd01::1:8000:4]:80: the name gets an A and an AAAA"},
		{"two-healthcheck-free-vips-state", "dcos-dcos-net/apps/dcos_l4lb/testdata/two-healthcheck-free-vips-state.json",
			"two IP VIPs 4.3.2.x:1234 from vip_PORT0, two running tasks each at weight 1 (no health checks)"},
		{"bad-state-gaal", "dcos-dcos-net/apps/dcos_l4lb/testdata/bad-state-gaal.json",
			"legacy vip_PORT0 IP VIPs 10.22.126.x:5000 of a loaded cluster; only running tasks are backends"},
		{"poller-state", "dcos-dcos-net/apps/dcos_l4lb/test/dcos_l4lb_mesos_poller_SUITE_data/state.json",
			"/test:80 network-scope=host on an overlay task → agent 10.0.0.40:12564 (dcos_l4lb_mesos_poller_SUITE)"},
		{"ucr-bridge-mode", "dcos-mesos_state/test/mesos_state_SUITE_data/ucr-bridge-mode.json",
			"/foo:5000 and /foo-1:5000 network-scope=host → agent IP 10.0.2.5 : host ports 29025 and 21768"},
		{"ucr-bridge-mode-net-info", "dcos-dcos-net/apps/dcos_dns/priv/ucr-bridge-mode-net-info.json",
			"/foo:5000 network-scope=host → agent IP : 29025"},
		{"ucr-bridge-mode-no-net-info", "dcos-dcos-net/apps/dcos_dns/priv/ucr-bridge-mode-no-net-info.json",
			"same as with net info: agent IP : 29025"},
		{"state7", "dcos-dcos-net/apps/dcos_dns/priv/state7.json",
			"dcos_dns fixture without VIP labels: empty table"},
		{"state8", "dcos-dcos-net/apps/dcos_dns/priv/state8.json",
			"as state7 plus a DOCKER USER task, no VIP labels: empty table"},
		{"mesos_state-state2", "dcos-mesos_state/test/mesos_state_SUITE_data/state2.json",
			"lower-case key vip=1.2.3.4:8080 on port 10000 → agent IP:10000"},
		{"mesos_state-state4", "dcos-mesos_state/test/mesos_state_SUITE_data/state4.json",
			"agent /state with vip_PORT0 task labels on DOCKER BRIDGE tasks; KILLING tasks at weight 0"},
		{"mesos_state-state6", "dcos-mesos_state/test/mesos_state_SUITE_data/state6.json",
			"calico/etcd frameworks without VIP labels: empty table"},
		{"mesos_state-state7", "dcos-mesos_state/test/mesos_state_SUITE_data/state7.json",
			"upper-case protocols TCP/UDP accepted: vip 1.2.3.4:8080 tcp and 1.2.3.4:8081 udp"},
		{"mesos_state-state_di", "dcos-mesos_state/test/mesos_state_SUITE_data/state_di.json",
			"VIP_0 1.2.3.4:8080 → agent IP:10000"},
		{"mesos_state-fake2", "dcos-mesos_state/test/mesos_state_SUITE_data/fake2.json",
			"lower-case vip=1.2.3.4:8080, no container_status: host scope → agent IP"},
		{"mesos_state-fake", "dcos-mesos_state/test/mesos_state_SUITE_data/fake.json",
			"mesos-dns-style fake without VIP labels: empty table"},
		{"mesos-dns-fake", "mesosphere-mesos-dns/factories/fake.json",
			"mesos-dns fake without VIP labels: empty table"},
		{"vip-labels", "dcos-dcos-net/apps/dcos_net/test/vip-labels.json",
			"v1 GET_STATE: /abc:80 and /cbd:80 on 9999, /xyz:443 on 10001, legacy def:80 on port 0 (9999), jkl:80 on port 1 (10000); healthy"},
		{"tcp-and-udp", "dcos-dcos-net/apps/dcos_net/test/tcp-and-udp.json",
			"v1 GET_STATE: /app:80 in tcp and udp"},
		{"unhealthy", "dcos-dcos-net/apps/dcos_net/test/unhealthy.json",
			"v1 GET_STATE: /foobar:80 → 9.0.1.6:80 at weight 0 (health check, no result)"},
	}
	dir := upstreamtest.Dir(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			apps, _, err := DecodeMesosState(f, "")
			if err != nil {
				t.Fatalf("DecodeMesosState(%s): %v", tt.file, err)
			}
			table := discovery.Build(apps, discovery.NewAllocator(discovery.AllocConfig{}, nil), goldenBuilt)
			got := table.String()
			golden := filepath.Join("testdata", "mesos", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("%s (upstream: %s):\ngot:\n%s\nwant:\n%s", tt.file, tt.expect, got, want)
			}
		})
	}
}

// TestMesosGoldenExpectations checks the upstream expectations that are
// easy to state as substrings of the golden tables.
func TestMesosGoldenExpectations(t *testing.T) {
	tests := []struct {
		name        string
		contains    []string
		notContains []string
	}{
		{"named-base-vips", []string{"tcp merp.marathon:5000", "10.0.0.243:12049 w=1"}, []string{"1.2.3.4"}},
		{"overlay", []string{"tcp 1.2.3.4:5000", "9.0.1.130:80 w=1"}, []string{"http-bridge"}},
		{"invalid-port", []string{"error "}, []string{"tcp "}},
		{"missing-port", []string{"error "}, []string{"tcp "}},
		{"state5", []string{"tcp 1.2.3.4:5000", "udp 1.2.3.4:5000"}, nil},
		{"ucr-bridge-mode", []string{"foo.marathon:5000", "10.0.2.5:29025", "foo-1.marathon:5000", "10.0.2.5:21768"}, nil},
		{"poller-state", []string{"test.marathon:80", "10.0.0.40:12564 w=1"}, []string{"9.0.2.2"}},
		{"unhealthy", []string{"foobar.marathon:80", "9.0.1.6:80 w=0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "mesos", tt.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(data), s) {
					t.Errorf("%s.golden lacks %q:\n%s", tt.name, s, data)
				}
			}
			for _, s := range tt.notContains {
				if strings.Contains(string(data), s) {
					t.Errorf("%s.golden has %q:\n%s", tt.name, s, data)
				}
			}
		})
	}
}

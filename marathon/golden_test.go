package marathon

import (
	"flag"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

var update = flag.Bool("update", false, "rewrite testdata/mesos/*.golden")

// goldenBuilt is the fixed build time of golden tables.
var goldenBuilt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// goldenWant is what upstream expects of one Mesos state, checked against
// the built Table itself: the golden file only pins the rendering.
type goldenWant struct {
	// vips, backends, names and errors are the Table's counts: VIPs,
	// backends over every VIP, DNS names and label errors.
	vips, backends, names, errors int
	// has lists VIPs that must be built, each with every backend.
	has []vipWant
	// absent lists VIP keys (as in vipWant) that must not be built.
	absent []string
	// dns lists each name served with its record types: "foo.marathon A AAAA".
	dns []string
	// errs lists each label error as "<key>=<value>", in Table order.
	errs []string
	// each, if set, is what every backend of every VIP must be
	// ("<ip> w=<weight>"), for fixtures too large to list.
	each string
}

// vipWant is one VIP: key "tcp 1.2.3.4:5000" or "tcp foo.marathon:80",
// and its backends as "<ip:port> w=<weight>" in Table order (by address);
// nil backends leaves them to goldenWant.each and the counts.
type vipWant struct {
	key      string
	backends []string
}

// TestMesosGolden decodes every upstream Mesos state that carries VIP
// labels (all frameworks included) and builds the VIP table with a fresh
// allocator. Each row says what upstream expects of the file (expect, from
// UPSTREAM.md §1, §6, §7) and states it as checks of the Table (want); then
// Table.String() is compared with testdata/mesos/<base>.golden. The checks
// run before -update writes anything, so a rewrite cannot bless a table
// that contradicts them.
func TestMesosGolden(t *testing.T) {
	tests := []struct {
		name   string // golden file base name
		file   string // upstream path
		expect string // what upstream expects, in words
		want   goldenWant
	}{
		{"named-base-vips", "dcos-dcos-net/apps/dcos_l4lb/testdata/named-base-vips.json",
			"merp:5000 → running task on agent 10.0.0.243:12049; the KILLED task's IP VIP 1.2.3.4:5000 has no backend, so it is not built (completed task)",
			goldenWant{vips: 1, backends: 1, names: 1,
				has:    []vipWant{{"tcp merp.marathon:5000", []string{"10.0.0.243:12049 w=1"}}},
				absent: []string{"tcp 1.2.3.4:5000"}, dns: []string{"merp.marathon A"}}},
		{"overlay", "dcos-dcos-net/apps/dcos_l4lb/testdata/overlay.json",
			"1.2.3.4:5000 network-scope=container → container IP 9.0.1.130:80; the FINISHED task http-bridge (Docker HOST network) gives http-bridge:80 no backend",
			goldenWant{vips: 1, backends: 1,
				has:    []vipWant{{"tcp 1.2.3.4:5000", []string{"9.0.1.130:80 w=1"}}},
				absent: []string{"tcp http-bridge.marathon:80"}}},
		{"docker", "dcos-dcos-net/apps/dcos_l4lb/testdata/docker.json",
			"legacy vip_PORT0=tcp://1.2.3.4:5000 → agent IP : first port resource",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:5000", []string{"10.0.2.4:28027 w=1"}}}}},
		{"invalid-port", "dcos-dcos-net/apps/dcos_l4lb/testdata/invalid-port.json",
			"VIP_0=invalid-port::1234: no VIP (label error only)",
			goldenWant{errors: 1, errs: []string{"VIP_0=invalid-port::1234"}}},
		{"missing-port", "dcos-dcos-net/apps/dcos_l4lb/testdata/missing-port.json",
			"VIP_0=missing-port: no VIP, a label error",
			goldenWant{errors: 1, errs: []string{"VIP_0=missing-port"}}},
		{"state2", "dcos-dcos-net/apps/dcos_l4lb/testdata/state2.json",
			"vip_PORT0=tcp://1.2.3.4:5000 on port 8014 of the running task",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:5000", []string{"10.10.0.109:8014 w=1"}}}}},
		{"state2_ipv6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state2_ipv6.json",
			"IPv6 IP VIP fd01:d::1:80, container scope → only the task's IPv6 address (same family)",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp [fd01:d::1]:80", []string{"[fd01:b::2:8000:0:2]:80 w=1"}}}}},
		{"state3", "dcos-dcos-net/apps/dcos_l4lb/testdata/state3.json",
			"agent /state: 1.2.3.4:5000 → agent 10.0.0.243:26645 (agent IP from the top-level pid)",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:5000", []string{"10.0.0.243:26645 w=1"}}}}},
		{"state4", "dcos-dcos-net/apps/dcos_l4lb/testdata/state4.json",
			"1.2.3.4:5000 → agent IP:26645",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:5000", []string{"10.0.0.243:26645 w=1"}}}}},
		{"state5", "dcos-dcos-net/apps/dcos_l4lb/testdata/state5.json",
			"1.2.3.4:5000 in tcp and in udp, each → agent IP:26645",
			goldenWant{vips: 2, backends: 2, has: []vipWant{
				{"tcp 1.2.3.4:5000", []string{"10.0.0.243:26645 w=1"}},
				{"udp 1.2.3.4:5000", []string{"10.0.0.243:26645 w=1"}}}}},
		{"state6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state6.json",
			"1.2.3.4:80 container scope → overlay IP 9.0.1.130:80 (the latest status's IP)",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:80", []string{"9.0.1.130:80 w=1"}}}}},
		{"state_di", "dcos-dcos-net/apps/dcos_l4lb/testdata/state_di.json",
			"discovery-info VIP_0 1.2.3.4:8080 → agent IP:19426",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:8080", []string{"10.0.2.234:19426 w=1"}}}}},
		{"state_ipv6", "dcos-dcos-net/apps/dcos_l4lb/testdata/state_ipv6.json",
			"named /foo:80 container scope → both 12.0.1.4:80 and [fd01::1:8000:4]:80: the name gets an A and an AAAA",
			goldenWant{vips: 1, backends: 2, names: 1,
				has: []vipWant{{"tcp foo.marathon:80", []string{"12.0.1.4:80 w=1", "[fd01::1:8000:4]:80 w=1"}}},
				dns: []string{"foo.marathon A AAAA"}}},
		{"two-healthcheck-free-vips-state", "dcos-dcos-net/apps/dcos_l4lb/testdata/two-healthcheck-free-vips-state.json",
			"two IP VIPs 4.3.2.x:1234 from vip_PORT0, two running tasks each at weight 1 (no health checks); killed and lost tasks are no backends",
			goldenWant{vips: 2, backends: 4, has: []vipWant{
				{"tcp 4.3.2.1:1234", []string{"33.33.33.1:31362 w=1", "33.33.33.1:31634 w=1"}},
				{"tcp 4.3.2.2:1234", []string{"33.33.33.1:31215 w=1", "33.33.33.1:31290 w=1"}}}}},
		{"bad-state-gaal", "dcos-dcos-net/apps/dcos_l4lb/testdata/bad-state-gaal.json",
			"legacy vip_PORT0 IP VIPs of a loaded cluster; only running tasks are backends: 10.22.126.49:5000 → its 100 running tasks on agent 10.22.126.51; " +
				"the VIPs only completed tasks declare (1.2.3.4, 10.22.126.11, .22, .44, .46, .50) are not built",
			goldenWant{vips: 1, backends: 100, each: "10.22.126.51 w=1",
				has: []vipWant{{"tcp 10.22.126.49:5000", nil}},
				absent: []string{"tcp 1.2.3.4:5000", "tcp 10.22.126.11:5000", "tcp 10.22.126.22:5000", "tcp 10.22.126.44:5000",
					"tcp 10.22.126.46:5000", "tcp 10.22.126.50:5000"}}},
		{"poller-state", "dcos-dcos-net/apps/dcos_l4lb/test/dcos_l4lb_mesos_poller_SUITE_data/state.json",
			"/test:80 network-scope=host on an overlay task → agent 10.0.0.40:12564, not the overlay IP 9.0.2.2 (dcos_l4lb_mesos_poller_SUITE)",
			goldenWant{vips: 1, backends: 1, names: 1,
				has: []vipWant{{"tcp test.marathon:80", []string{"10.0.0.40:12564 w=1"}}},
				dns: []string{"test.marathon A"}}},
		{"ucr-bridge-mode", "dcos-mesos_state/test/mesos_state_SUITE_data/ucr-bridge-mode.json",
			"/foo:5000 and /foo-1:5000 network-scope=host → agent IP 10.0.2.5 : host ports 29025 and 21768",
			goldenWant{vips: 2, backends: 2, names: 2, has: []vipWant{
				{"tcp foo.marathon:5000", []string{"10.0.2.5:29025 w=1"}},
				{"tcp foo-1.marathon:5000", []string{"10.0.2.5:21768 w=1"}}},
				dns: []string{"foo.marathon A", "foo-1.marathon A"}}},
		{"ucr-bridge-mode-net-info", "dcos-dcos-net/apps/dcos_dns/priv/ucr-bridge-mode-net-info.json",
			"/foo:5000 network-scope=host → agent IP : 29025",
			goldenWant{vips: 1, backends: 1, names: 1,
				has: []vipWant{{"tcp foo.marathon:5000", []string{"10.0.2.5:29025 w=1"}}},
				dns: []string{"foo.marathon A"}}},
		{"ucr-bridge-mode-no-net-info", "dcos-dcos-net/apps/dcos_dns/priv/ucr-bridge-mode-no-net-info.json",
			"same as with net info: agent IP : 29025",
			goldenWant{vips: 1, backends: 1, names: 1,
				has: []vipWant{{"tcp foo.marathon:5000", []string{"10.0.2.5:29025 w=1"}}},
				dns: []string{"foo.marathon A"}}},
		{"state7", "dcos-dcos-net/apps/dcos_dns/priv/state7.json",
			"dcos_dns fixture without VIP labels: empty table",
			goldenWant{}},
		{"state8", "dcos-dcos-net/apps/dcos_dns/priv/state8.json",
			"as state7 plus a DOCKER USER task, no VIP labels: empty table",
			goldenWant{}},
		{"mesos_state-state2", "dcos-mesos_state/test/mesos_state_SUITE_data/state2.json",
			"lower-case key vip=1.2.3.4:8080 on discovery port 10000 (port resource 19426) → agent IP:10000",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:8080", []string{"10.0.2.234:10000 w=1"}}}}},
		{"mesos_state-state4", "dcos-mesos_state/test/mesos_state_SUITE_data/state4.json",
			"agent /state: vip_PORT0=tcp://1.2.3.4:5000 on a running task without container → agent IP from the pid, 10.10.0.38:10834; " +
				"the DOCKER BRIDGE tasks are KILLED and have no VIP label, so no weight-0 backend",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:5000", []string{"10.10.0.38:10834 w=1"}}}}},
		{"mesos_state-state6", "dcos-mesos_state/test/mesos_state_SUITE_data/state6.json",
			"calico/etcd frameworks without VIP labels: empty table",
			goldenWant{}},
		{"mesos_state-state7", "dcos-mesos_state/test/mesos_state_SUITE_data/state7.json",
			"upper-case protocols TCP/UDP accepted: vip 1.2.3.4:8080 tcp and 1.2.3.4:8081 udp",
			goldenWant{vips: 2, backends: 2, has: []vipWant{
				{"tcp 1.2.3.4:8080", []string{"10.0.2.234:10000 w=1"}},
				{"udp 1.2.3.4:8081", []string{"10.0.2.234:10001 w=1"}}}}},
		{"mesos_state-state_di", "dcos-mesos_state/test/mesos_state_SUITE_data/state_di.json",
			"VIP_0 1.2.3.4:8080 → agent IP:19426",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:8080", []string{"10.0.2.234:19426 w=1"}}}}},
		{"mesos_state-fake2", "dcos-mesos_state/test/mesos_state_SUITE_data/fake2.json",
			"lower-case vip=1.2.3.4:8080, no container_status: host scope → agent IP:10000",
			goldenWant{vips: 1, backends: 1,
				has: []vipWant{{"tcp 1.2.3.4:8080", []string{"10.0.2.234:10000 w=1"}}}}},
		{"mesos_state-fake", "dcos-mesos_state/test/mesos_state_SUITE_data/fake.json",
			"mesos-dns-style fake without VIP labels: empty table",
			goldenWant{}},
		{"mesos-dns-fake", "mesosphere-mesos-dns/factories/fake.json",
			"mesos-dns fake without VIP labels: empty table",
			goldenWant{}},
		{"vip-labels", "dcos-dcos-net/apps/dcos_net/test/vip-labels.json",
			"v1 GET_STATE: /abc:80 and /cbd:80 on 9999, /xyz:443 on 10001, legacy def:80 on port 0 (9999), jkl:80 on port 1 (10000); healthy",
			goldenWant{vips: 5, backends: 5, names: 5, has: []vipWant{
				{"tcp abc.marathon:80", []string{"172.17.0.3:9999 w=1"}},
				{"tcp cbd.marathon:80", []string{"172.17.0.3:9999 w=1"}},
				{"tcp def.marathon:80", []string{"172.17.0.3:9999 w=1"}},
				{"tcp jkl.marathon:80", []string{"172.17.0.3:10000 w=1"}},
				{"tcp xyz.marathon:443", []string{"172.17.0.3:10001 w=1"}}},
				dns: []string{"abc.marathon A", "cbd.marathon A", "def.marathon A", "jkl.marathon A", "xyz.marathon A"}}},
		{"tcp-and-udp", "dcos-dcos-net/apps/dcos_net/test/tcp-and-udp.json",
			"v1 GET_STATE: /app:80 in tcp and udp",
			goldenWant{vips: 2, backends: 2, names: 1, has: []vipWant{
				{"tcp app.marathon:80", []string{"172.17.0.3:6416 w=1"}},
				{"udp app.marathon:80", []string{"172.17.0.3:6416 w=1"}}},
				dns: []string{"app.marathon A"}}},
		{"unhealthy", "dcos-dcos-net/apps/dcos_net/test/unhealthy.json",
			"v1 GET_STATE: /foobar:80 → 9.0.1.6:80 at weight 0 (health check, no result)",
			goldenWant{vips: 1, backends: 1, names: 1,
				has: []vipWant{{"tcp foobar.marathon:80", []string{"9.0.1.6:80 w=0"}}},
				dns: []string{"foobar.marathon A"}}},
	}
	dir := upstreamtest.Dir(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _, err := DecodeMesosState(f, "")
			if err != nil {
				t.Fatalf("DecodeMesosState(%s): %v", tt.file, err)
			}
			table := discovery.Build(st.Apps, discovery.NewAllocator(discovery.AllocConfig{}, nil), goldenBuilt)
			checkGoldenWant(t, table, tt.want)
			if t.Failed() {
				t.Logf("upstream expects: %s", tt.expect)
			}
			got := table.String()
			golden := filepath.Join("testdata", "mesos", tt.name+".golden")
			if *update {
				if t.Failed() {
					t.Fatalf("not rewriting %s: the table contradicts upstream", golden)
				}
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

// checkGoldenWant checks table against want.
func checkGoldenWant(t *testing.T, table *discovery.Table, want goldenWant) {
	t.Helper()
	vips := map[string]*discovery.VIP{}
	backends := 0
	for v := range table.VIPs.All() {
		vips[vipKeyString(v.Key)] = v
		backends += len(v.Backends)
	}
	if got := table.VIPs.Len(); got != want.vips {
		t.Errorf("%d VIPs, want %d: %v", got, want.vips, slices.Sorted(maps.Keys(vips)))
	}
	if backends != want.backends {
		t.Errorf("%d backends, want %d", backends, want.backends)
	}
	if got := table.Names(); got != want.names {
		t.Errorf("%d DNS names, want %d", got, want.names)
	}
	if got := len(table.Errors); got != want.errors {
		t.Errorf("%d label errors, want %d: %v", got, want.errors, table.Errors)
	}
	for _, w := range want.has {
		v, ok := vips[w.key]
		if !ok {
			t.Errorf("no VIP %s; VIPs: %v", w.key, slices.Sorted(maps.Keys(vips)))
			continue
		}
		if w.backends == nil {
			continue
		}
		if got := backendStrings(v.Backends); !slices.Equal(got, w.backends) {
			t.Errorf("VIP %s backends %q, want %q", w.key, got, w.backends)
		}
	}
	for _, k := range want.absent {
		if v, ok := vips[k]; ok {
			t.Errorf("VIP %s built with backends %q, want none", k, backendStrings(v.Backends))
		}
	}
	if want.each != "" {
		for k, v := range vips {
			for _, b := range v.Backends {
				if got := b.Addr.Addr().String() + " w=" + strconv.Itoa(int(b.Weight)); got != want.each {
					t.Errorf("VIP %s backend %s (%s), want every backend %s", k, b.Addr, got, want.each)
				}
			}
		}
	}
	for _, d := range want.dns {
		name, types, _ := strings.Cut(d, " ")
		e, err := table.Lookup(name)
		if err != nil {
			t.Errorf("Lookup(%q): %v, want %s", name, err, types)
			continue
		}
		var got []string
		if e.Addr4.IsValid() {
			got = append(got, "A")
		}
		if e.Addr6.IsValid() {
			got = append(got, "AAAA")
		}
		if strings.Join(got, " ") != types {
			t.Errorf("Lookup(%q) has %v (A %v, AAAA %v), want %s", name, got, e.Addr4, e.Addr6, types)
		}
	}
	var errs []string
	for _, e := range table.Errors {
		errs = append(errs, e.Key+"="+e.Value)
	}
	if want.errs != nil && !slices.Equal(errs, want.errs) {
		t.Errorf("label errors %q, want %q", errs, want.errs)
	}
}

// vipKeyString renders k as Table.String does: "tcp 1.2.3.4:5000",
// "tcp [fd01::1]:80", "tcp foo.marathon:80".
func vipKeyString(k discovery.VIPKey) string {
	if k.IP.IsValid() {
		return k.Protocol.String() + " " + netip.AddrPortFrom(k.IP, k.Port).String()
	}
	return k.Protocol.String() + " " + k.Name + ":" + strconv.Itoa(int(k.Port))
}

// backendStrings renders backends as "<ip:port> w=<weight>".
func backendStrings(bs []discovery.Backend) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Addr.String()+" w="+strconv.Itoa(int(b.Weight)))
	}
	return out
}

package discovery_test

// The golden differential test of the task zones' names against real
// upstream Mesos states: each state is decoded as vipbridge decodes it
// (marathon.DecodeMesosState, every framework's tasks as Mesos tasks) and
// the whole mesos zone and dcos zone it gives are written as sorted zone
// lines to testdata/names/<state>.golden; -update rewrites them. Beside
// the equality, checks name the records mesos-dns's own tests expect.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
	"github.com/vipbridge/vipbridge/marathon"
)

var update = flag.Bool("update", false, "rewrite testdata/names/*.golden")

// goldenStates are the upstream Mesos states, under fixtures/upstream.
var goldenStates = []string{
	"dcos-mesos_state/test/mesos_state_SUITE_data",
	"mesosphere-mesos-dns/factories",
	"dcos-dcos-net/apps/dcos_dns/priv",
}

// zoneText renders the task zones of one state as sorted, deduplicated
// zone lines with absolute names ("web.marathon.mesos. A 10.0.0.5"),
// after a comment counting the records skipped.
func zoneText(cfg discovery.NamesConfig, st discovery.State) []byte {
	known := map[string]bool{}
	var cluster []discovery.ZoneRecord
	if st.Cluster != nil {
		for _, a := range st.Cluster.Agents {
			known[a.ID] = true
		}
		cluster = cfg.ClusterRecords(st.Cluster)
	}
	var lines []string
	add := func(r discovery.ZoneRecord) {
		suffix := ".mesos."
		if r.Zone == discovery.ZoneDCOS {
			suffix = ".dcos.thisdcos.directory."
		}
		data := r.Addr.String()
		if r.Type == discovery.TypeSRV {
			data = fmt.Sprintf("0 1 %d %s%s", r.Port, r.Target, suffix)
		}
		lines = append(lines, fmt.Sprintf("%s%s %s %s", r.Name, suffix, r.Type, data))
	}
	skipped := 0
	for i := range st.Apps {
		for _, tr := range cfg.AppRecords(&st.Apps[i], func(id string) bool { return known[id] }) {
			skipped += tr.Skipped
			for _, r := range tr.Records {
				add(r)
			}
		}
	}
	for _, r := range cluster {
		add(r)
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	var b bytes.Buffer
	fmt.Fprintf(&b, "; %d records, %d skipped\n", len(lines), skipped)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestNamesGolden(t *testing.T) {
	root := upstreamtest.Dir(t)
	for _, dir := range goldenStates {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			name := strings.SplitN(dir, "/", 2)[0] + "-" + strings.TrimSuffix(filepath.Base(file), ".json")
			t.Run(name, func(t *testing.T) {
				f, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				st, _, err := marathon.DecodeMesosState(f, "")
				if err != nil {
					t.Skipf("not a state vipbridge decodes: %v", err)
				}
				// IPSources host, netinfo and RFC 1123: DC/OS's settings.
				got := zoneText(discovery.NamesConfig{}, st)
				golden := filepath.Join("testdata", "names", name+".golden")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n%s", name, golden, got)
				}
				checkGolden(t, name, string(got))
			})
		}
	}
}

// goldenChecks are lines each golden must hold, with the rule that
// decides them (UPSTREAM.md §3.5, §2.2).
var goldenChecks = map[string][]struct{ rule, line string }{
	"mesosphere-mesos-dns-fake": {
		{"task A: task label . framework name", "chronos.marathon.mesos. A 1.2.3.11"},
		{"canonical A: label-hash-agent tail (4dfjd: sha1 of the task ID, zbase32)", "liquor-store-4dfjd-0.marathon.mesos. A 1.2.3.11"},
		{"DiscoveryInfo LEGACY: the raw name, dots and all", "liquor.store-4dfjd-0.marathon.mesos. A 1.2.3.11"},
		{"a name shared by two tasks has both IPs", "liquor-store.marathon.mesos. A 1.2.3.12"},
		{"without DiscoveryInfo: resource SRV under .fw too, targeting the .slave canonical", "_car-store._tcp.marathon.mesos. SRV 0 1 31364 car-store-zinaz-0.marathon.slave.mesos."},
		{"with DiscoveryInfo: resource SRV under .slave only", "_liquor-store._udp.marathon.slave.mesos. SRV 0 1 31737 liquor-store-zasmd-1.marathon.slave.mesos."},
		{"named DiscoveryInfo port → the canonical at the DI number", "_https._liquor-store._tcp.marathon.mesos. SRV 0 1 443 liquor-store-zasmd-1.marathon.mesos."},
		{"framework names split on dots, each part a label", "some-box.chronoswithaspaceandmixedcase-2.0.1.mesos. A 1.2.3.11"},
		{"IPSources host,netinfo: the first IPv4 of netinfo when the agent is IPv6", "toy-store.ipv6-framework.mesos. A 12.0.1.3"},
		{".slave: the agent IP", "toy-store.ipv6-framework.slave.mesos. AAAA 2001:db8::1"},
		{"framework A from its pid", "ipv6-framework.mesos. AAAA 2001:db8::1"},
		{"leader SRV → leader:port", "_leader._tcp.mesos. SRV 0 1 5050 leader.mesos."},
		{"the leader takes the next masterN when no master is configured", "master0.mesos. A 1.2.3.4"},
		{"dcos-dns: task.framework.agentip", "liquor-store.marathon.agentip.dcos.thisdcos.directory. A 1.2.3.11"},
		{"dcos-dns: framework is one label", "some-box.chronoswithaspaceandmixedcase-2-0-1.agentip.dcos.thisdcos.directory. A 1.2.3.11"},
		{"dcos-dns: containerip is every task IP", "toy-store.ipv6-framework.containerip.dcos.thisdcos.directory. A 12.0.1.2"},
	},
	"dcos-mesos_state-state4": {
		// An agent's /state: no leader, so no leader or master names; its
		// tasks' labels are 63 octets, so their canonical names are longer
		// and cannot be asked: skipped.
		{"canonical labels over 63 octets are skipped and counted", "; 13 records, 24 skipped"},
		{"the 63-octet task label itself is kept", "integration-test-app-with-minuteman-vip-a3d63700cd03419aa0c5350.marathon.mesos. A 10.10.0.38"},
	},
}

func checkGolden(t *testing.T, name, text string) {
	for _, c := range goldenChecks[name] {
		if !strings.Contains(text, c.line+"\n") {
			t.Errorf("%s: no %q (%s)", name, c.line, c.rule)
		}
	}
}

// TestNamesMesosDNSExpectations names mesos-dns's own factories/fake.json
// with the settings of mesos-dns's tests (IPSources netinfo, mesos, host;
// EnforceRFC952) and checks the records its records/generator_test.go
// expects.
func TestNamesMesosDNSExpectations(t *testing.T) {
	st, _, err := marathon.DecodeMesosState(bytes.NewReader(upstreamtest.File(t, "mesosphere-mesos-dns/factories/fake.json")), "")
	if err != nil {
		t.Fatal(err)
	}
	got := string(zoneText(discovery.NamesConfig{IPSources: []string{"netinfo", "mesos", "host"}, EnforceRFC952: true}, st))
	for _, line := range []string{
		"some-box.chronoswithaspaceandmixe.mesos. A 1.2.3.11",
		"toy-store.ipv6-framework.mesos. AAAA fd01:b::1:8000:2",
		"toy-store.ipv6-framework.slave.mesos. AAAA 2001:db8::1",
		"ipv6-framework.mesos. AAAA 2001:db8::1",
		"slave.mesos. A 1.2.3.10",
		"marathon.mesos. A 1.2.3.11",
		"_big-dog._tcp.marathon.mesos. SRV 0 1 80 big-dog-4dfjd-0.marathon.mesos.",
		"_big-dog._tcp.marathon.mesos. SRV 0 1 443 big-dog-4dfjd-0.marathon.mesos.",
		"_liquor-store._tcp.marathon.mesos. SRV 0 1 80 liquor-store-zasmd-1.marathon.mesos.",
		"_car-store._udp.marathon.mesos. SRV 0 1 31365 car-store-zinaz-0.marathon.slave.mesos.",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("no %q", line)
		}
	}
}

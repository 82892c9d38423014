package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMesosZone = `$ORIGIN mesos.
$TTL 60
@	IN	SOA	ns1.mesos. root.ns1.mesos. 1 60 600 86400 60
@	IN	NS	ns1.mesos.
_web._tcp.marathon	IN	SRV	0 1 31000 web-abcde-s1.marathon
_web._tcp.marathon	IN	SRV	0 1 31001 web-fghij-s2.marathon
_web._tcp.marathon.slave	IN	SRV	0 1 31000 web-abcde-s1.marathon.slave
_web._udp.marathon	IN	SRV	0 1 31000 web-abcde-s1.marathon
web.marathon	IN	A	127.0.1.1
web.marathon	IN	A	127.0.1.2
web-abcde-s1.marathon	IN	A	127.0.1.1
web-fghij-s2.marathon	IN	A	127.0.1.2
web.marathon.slave	IN	A	127.0.1.1
`

const testDCOSZone = `$ORIGIN dcos.thisdcos.directory.
$TTL 5
@	IN	SOA	ns1.dcos.thisdcos.directory. root.ns1.dcos.thisdcos.directory. 1 60 600 86400 5
@	IN	NS	ns1.dcos.thisdcos.directory.
web.marathon.agentip	IN	A	127.0.1.1
web.marathon.autoip	IN	A	127.0.1.1
web.marathon.autoip	IN	A	127.0.1.2
`

func TestTaskQueries(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mesos := write("mesos.zone", testMesosZone)
	dcos := write("dcos.zone", testDCOSZone)
	mirror := write("mirror.zone", strings.ReplaceAll(testMesosZone, "mesos.", "mesos.thisdcos.directory."))

	tn, err := readTaskNames(mesos, dcos, mirror)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tn.tasks, ","); got != "web.marathon" {
		t.Errorf("tasks %q, want web.marathon (the .slave and _udp SRV names are not tasks)", got)
	}
	if got := strings.Join(tn.canonical, ","); got != "web-abcde-s1.marathon,web-fghij-s2.marathon" {
		t.Errorf("canonical %q", got)
	}
	if got := strings.Join(tn.autoip, ","); got != "web.marathon.autoip" {
		t.Errorf("autoip %q, want one name (agentip is not autoip)", got)
	}

	out := filepath.Join(dir, "queries")
	if err := taskQueries(mesos, dcos, mirror, 40, out); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 40 {
		t.Fatalf("%d queries, want 40", len(lines))
	}
	// The first 20 lines are one pass over the slots.
	want := []string{
		"web.marathon.mesos. A", "web.marathon.mesos. A", "web.marathon.mesos. A", "web.marathon.mesos. A",
		"web.marathon.mesos. A", "web.marathon.mesos. A", "web.marathon.mesos. A",
		"_web._tcp.marathon.mesos. SRV", "_web._tcp.marathon.mesos. SRV", "_web._tcp.marathon.mesos. SRV",
		"web.marathon.autoip.dcos.thisdcos.directory. A", "web.marathon.autoip.dcos.thisdcos.directory. A",
		"web.marathon.autoip.dcos.thisdcos.directory. A", "web.marathon.autoip.dcos.thisdcos.directory. A",
		"canonical", "canonical",
		"web.marathon.slave.mesos. A",
		"web.marathon.mesos.thisdcos.directory. A",
		"missing .marathon.mesos. A",
		"missing .marathon.autoip.dcos.thisdcos.directory. A",
	}
	for i, w := range want {
		got := lines[i]
		switch {
		case w == "canonical":
			if got != "web-abcde-s1.marathon.mesos. A" && got != "web-fghij-s2.marathon.mesos. A" {
				t.Errorf("line %d: %q, want a canonical name", i, got)
			}
		case strings.HasPrefix(w, "missing "):
			if !strings.HasPrefix(got, "missing") || !strings.HasSuffix(got, w[len("missing "):]) {
				t.Errorf("line %d: %q, want missingNNNNNN%s", i, got, w[len("missing "):])
			}
		case got != w:
			t.Errorf("line %d: %q, want %q", i, got, w)
		}
	}
}

func TestTaskQueriesNeedNames(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.zone")
	if err := os.WriteFile(empty, []byte("$ORIGIN mesos.\n@ IN SOA ns1.mesos. root.ns1.mesos. 1 60 600 86400 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readTaskNames(empty, empty, ""); err == nil {
		t.Error("zones without task names: no error")
	}
}

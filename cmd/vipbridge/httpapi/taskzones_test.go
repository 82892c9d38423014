package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// Names of taskTable, relative to their zone.
const (
	longLabel  = "a-task-name-of-sixty-three-octets-which-is-mesos-dns-s-maximum0" // 63 octets
	longCanon  = longLabel + "-qxz5a-s1"                                           // 72: not a DNS label
	legacyName = "my app.web"                                                      // a raw DiscoveryInfo name
)

// taskTable is testTable with task zone records, as the naming rules give
// them (UPSTREAM.md §3.5): two tasks of one Marathon app (one name, two
// addresses), a task of another framework with IPv6 and a named
// DiscoveryInfo port, a task whose canonical label exceeds 63 octets, a
// raw (LEGACY) DiscoveryInfo name with a space, and the cluster's leader.
func taskTable(tb testing.TB) *discovery.Table {
	tb.Helper()
	ip := netip.MustParseAddr
	a := func(z discovery.RecordZone, name, addr string) discovery.ZoneRecord {
		typ := discovery.TypeA
		if ip(addr).Is6() {
			typ = discovery.TypeAAAA
		}
		return discovery.ZoneRecord{Zone: z, Type: typ, Name: name, Addr: ip(addr)}
	}
	srv := func(z discovery.RecordZone, name, target string, port uint16) discovery.ZoneRecord {
		return discovery.ZoneRecord{Zone: z, Type: discovery.TypeSRV, Name: name, Target: target, Port: port}
	}
	const mesos, dcos = discovery.ZoneMesos, discovery.ZoneDCOS
	webTask := func(id, hash, agent, agentIP string, port uint16) *discovery.TaskRecords {
		canon := "web-" + hash + "-" + agent + ".marathon"
		return &discovery.TaskRecords{Framework: "marathon", Name: "web", ID: id, Records: []discovery.ZoneRecord{
			a(mesos, "web.marathon", agentIP),
			a(mesos, canon, agentIP),
			a(mesos, "web.marathon.slave", agentIP),
			a(mesos, canon+".slave", agentIP),
			srv(mesos, "_web._tcp.marathon", canon+".slave", port),
			srv(mesos, "_web._tcp.marathon.slave", canon+".slave", port),
			a(dcos, "web.marathon.agentip", agentIP),
			a(dcos, "web.marathon.autoip", agentIP),
		}}
	}
	tasks := []*discovery.TaskRecords{
		webTask("web.1", "k3pqx", "s1", "10.0.0.1", 31000),
		webTask("web.2", "b7rty", "s2", "10.0.0.2", 31001),
		{Framework: "hello-world", Name: "hello-0-server", ID: "hello-0-server__1", Records: []discovery.ZoneRecord{
			a(mesos, "hello-0-server.hello-world", "172.17.0.6"),
			a(mesos, "hello-0-server.hello-world", "fd01:b::2:8000:0:2"),
			a(mesos, "hello-0-server-9jgbi-s1.hello-world", "172.17.0.6"),
			srv(mesos, "_hello-0-server._tcp.hello-world", "hello-0-server-9jgbi-s1.hello-world", 9453),
			srv(mesos, "_api._hello-0-server._tcp.hello-world", "hello-0-server-9jgbi-s1.hello-world", 9453),
			a(dcos, "hello-0-server.hello-world.containerip", "172.17.0.6"),
		}},
		{Framework: "marathon", Name: longLabel, ID: "long.1", Records: []discovery.ZoneRecord{
			a(mesos, longLabel+".marathon", "10.0.0.3"),
			a(mesos, longCanon+".marathon", "10.0.0.3"),
			srv(mesos, "_"+longLabel+"._tcp.marathon", longCanon+".marathon", 8080),
		}},
		{Framework: "web", Name: "my app", ID: "legacy.1", Records: []discovery.ZoneRecord{
			a(mesos, legacyName, "10.0.0.4"),
			a(mesos, "my-app.web", "10.0.0.4"),
		}},
	}
	cluster := []discovery.ZoneRecord{
		a(mesos, "leader", "10.0.0.10"),
		srv(mesos, "_leader._tcp", "leader", 5050),
		a(mesos, "ns1", "10.0.0.10"),
		a(dcos, "leader", "10.0.0.10"),
	}
	return testTable(tb).WithRecords(tasks, cluster)
}

// newTaskServer is newTestServer over taskTable with the mesos zone served
// under "mesos".
func newTaskServer(tb testing.TB, cfg Config) *httptest.Server {
	tb.Helper()
	if cfg.Tables == nil {
		cfg.Tables = &fakeTables{t: taskTable(tb), st: discovery.Status{Loaded: true, Synced: true, Generation: 7}}
	}
	srv, _ := newTestServer(tb, cfg)
	return srv
}

// getJSON GETs path from srv, wants 200, and decodes the body into v.
func getJSON(tb testing.TB, srv *httptest.Server, path string, v any) []byte {
	tb.Helper()
	resp, body := do(tb, srv, http.MethodGet, path)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s = %d %s, want 200", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("GET %s: body is not the JSON wanted: %v\n%s", path, err, body)
	}
	return body
}

// checkGolden compares body with testdata/<name>.golden; -update rewrites.
func checkGolden(tb testing.TB, name string, body []byte) {
	tb.Helper()
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, body, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		tb.Fatalf("read golden (run with -update to create): %v", err)
	}
	if string(body) != string(want) {
		tb.Errorf("body differs from %s (run with -update to accept):\n%s", golden, body)
	}
}

func TestV1RecordsTaskZones(t *testing.T) {
	srv := newTaskServer(t, Config{MesosDomain: "mesos"})
	var got []v1Record
	body := getJSON(t, srv, "/v1/records", &got)
	checkGolden(t, "v1_records_tasks", body)
	for _, want := range []v1Record{
		{Name: "web.marathon.mesos", Host: "10.0.0.1", RType: "A"},
		{Name: "web.marathon.mesos", Host: "10.0.0.2", RType: "A"},
		{Name: "_web._tcp.marathon.mesos", Host: "web-k3pqx-s1.marathon.slave.mesos:31000", RType: "SRV"},
		{Name: "hello-0-server.hello-world.mesos", Host: "fd01:b::2:8000:0:2", RType: "AAAA"},
		{Name: "_api._hello-0-server._tcp.hello-world.mesos", Host: "hello-0-server-9jgbi-s1.hello-world.mesos:9453", RType: "SRV"},
		{Name: "web.marathon.mesos.thisdcos.directory", Host: "10.0.0.1", RType: "A"},
		{Name: "_web._tcp.marathon.mesos.thisdcos.directory", Host: "web-k3pqx-s1.marathon.slave.mesos.thisdcos.directory:31000", RType: "SRV"},
		{Name: "web.marathon.autoip.dcos.thisdcos.directory", Host: "10.0.0.2", RType: "A"},
		{Name: "leader.dcos.thisdcos.directory", Host: "10.0.0.10", RType: "A"},
		{Name: "foo.marathon.l4lb.thisdcos.directory", RType: "A"}, // host checked below
	} {
		if !slices.ContainsFunc(got, func(r v1Record) bool {
			return r.Name == want.Name && r.RType == want.RType && (want.Host == "" || r.Host == want.Host)
		}) {
			t.Errorf("GET /v1/records lacks %+v", want)
		}
	}
	for _, r := range got {
		if strings.HasSuffix(r.Name, ".") || strings.HasSuffix(r.Host, ".") || strings.Contains(r.Host, ".:") {
			t.Errorf("GET /v1/records: %+v has a trailing dot; dcos-dns shows none", r)
		}
	}

	// Without the mesos domain the mirror and the dcos zone stay.
	srv = newTaskServer(t, Config{})
	getJSON(t, srv, "/v1/records", &got)
	for _, r := range got {
		if strings.HasSuffix(r.Name, ".mesos") {
			t.Errorf("GET /v1/records without a mesos domain lists %+v", r)
		}
	}
	if !slices.ContainsFunc(got, func(r v1Record) bool { return r.Name == "web.marathon.mesos.thisdcos.directory" }) {
		t.Errorf("GET /v1/records without a mesos domain lacks the mirror")
	}
}

func TestRecordsTaskZoneTTLs(t *testing.T) {
	srv := newTaskServer(t, Config{MesosDomain: "mesos", MesosTTL: 90e9, TTL: 7e9})
	var doc recordsDoc
	getJSON(t, srv, "/records", &doc)
	want := map[string]uint32{
		"web.marathon.mesos":                          90,
		"web.marathon.mesos.thisdcos.directory":       7,
		"web.marathon.autoip.dcos.thisdcos.directory": 7,
		"foo.marathon.l4lb.thisdcos.directory":        7,
	}
	for _, r := range doc.Records {
		if ttl, ok := want[r.Name]; ok && r.TTL != ttl {
			t.Errorf("GET /records: %s %s TTL %d, want %d", r.Name, r.Type, r.TTL, ttl)
		}
		if r.Name == "_web._tcp.marathon.mesos" && r.Value != "0 1 31000 web-k3pqx-s1.marathon.slave.mesos." && r.Value != "0 1 31001 web-b7rty-s2.marathon.slave.mesos." {
			t.Errorf("GET /records: SRV %s value %q", r.Name, r.Value)
		}
		delete(want, r.Name)
	}
	for name := range want {
		t.Errorf("GET /records lacks %s", name)
	}
}

func TestEnumerate(t *testing.T) {
	srv := newTaskServer(t, Config{MesosDomain: "mesos"})
	var doc enumerateDoc
	body := getJSON(t, srv, "/v1/enumerate", &doc)
	checkGolden(t, "v1_enumerate", body)
	var names []string
	for _, fw := range doc.Frameworks {
		names = append(names, fw.Name)
	}
	if want := []string{"hello-world", "marathon", "web"}; !slices.Equal(names, want) {
		t.Fatalf("frameworks %q, want %q", names, want)
	}
	web := doc.Frameworks[1].Tasks
	if len(web) != 3 || web[1].Name != "web" || web[1].ID != "web.1" || web[2].ID != "web.2" {
		t.Fatalf("marathon's tasks %+v, want the long one, then web.1 and web.2", web)
	}
	if want := (enumRecord{Name: "_web._tcp.marathon.mesos.", Host: "web-k3pqx-s1.marathon.slave.mesos.:31000", RType: "SRV"}); !slices.Contains(web[1].Records, want) {
		t.Errorf("web.1's records lack %+v: %+v", want, web[1].Records)
	}
	for _, r := range web[1].Records {
		if !strings.HasSuffix(r.Name, ".mesos.") || strings.Contains(r.Name, "dcos") {
			t.Errorf("web.1's record %+v is not a mesos zone name", r)
		}
	}

	srv = newTaskServer(t, Config{})
	if resp, body := do(t, srv, http.MethodGet, "/v1/enumerate"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/enumerate without a mesos domain = %d %s, want 404", resp.StatusCode, body)
	}
}

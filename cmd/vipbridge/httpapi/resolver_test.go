package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// TestHostsTaskZones asks /v1/hosts and /v1/services for names of the task
// zones, answered by the real DNS server.
func TestHostsTaskZones(t *testing.T) {
	tables := &fakeTables{t: taskTable(t), st: discovery.Status{Loaded: true}}
	res := newResolver(t, tables, 0)
	srv, _ := newTestServer(t, Config{Tables: tables, Resolver: res, MesosDomain: "mesos"})
	tests := []struct {
		name string
		path string
		want any
	}{
		{name: "task name, two tasks", path: "/v1/hosts/web.marathon.mesos", want: []any{
			map[string]any{"host": "web.marathon.mesos.", "ip": "10.0.0.1"},
			map[string]any{"host": "web.marathon.mesos.", "ip": "10.0.0.2"}}},
		{name: "dual stack", path: "/v1/hosts/hello-0-server.hello-world.mesos.", want: []any{
			map[string]any{"host": "hello-0-server.hello-world.mesos.", "ip": "172.17.0.6"},
			map[string]any{"host": "hello-0-server.hello-world.mesos.", "ip": "fd01:b::2:8000:0:2"}}},
		{name: "mirror", path: "/v1/hosts/leader.mesos.thisdcos.directory", want: []any{
			map[string]any{"host": "leader.mesos.thisdcos.directory.", "ip": "10.0.0.10"}}},
		{name: "autoip", path: "/v1/hosts/web.marathon.autoip.dcos.thisdcos.directory", want: []any{
			map[string]any{"host": "web.marathon.autoip.dcos.thisdcos.directory.", "ip": "10.0.0.1"},
			map[string]any{"host": "web.marathon.autoip.dcos.thisdcos.directory.", "ip": "10.0.0.2"}}},
		{name: "unknown", path: "/v1/hosts/nope.marathon.mesos", want: emptyHost},
		{name: "named port", path: "/v1/services/_api._hello-0-server._tcp.hello-world.mesos", want: []any{
			map[string]any{"service": "_api._hello-0-server._tcp.hello-world.mesos", "host": "hello-0-server-9jgbi-s1.hello-world.mesos.", "ip": "172.17.0.6", "port": "9453"}}},
		{name: "leader", path: "/v1/services/_leader._tcp.mesos.", want: []any{
			map[string]any{"service": "_leader._tcp.mesos.", "host": "leader.mesos.", "ip": "10.0.0.10", "port": "5050"}}},
		{name: "unknown service", path: "/v1/services/_nope._tcp.marathon.mesos", want: emptyService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			body := getJSON(t, srv, tt.path, &got)
			if !jsonEqualUnordered(got, tt.want) {
				t.Errorf("GET %s = %s, want %v", tt.path, body, tt.want)
			}
		})
	}
}

// jsonEqualUnordered compares two decoded JSON arrays as multisets: DNS
// may shuffle answers as mesos-dns does.
func jsonEqualUnordered(a, b any) bool {
	as, ok1 := a.([]any)
	bs, ok2 := b.([]any)
	if !ok1 || !ok2 || len(as) != len(bs) {
		return jsonEqual(a, b)
	}
	used := make([]bool, len(bs))
	for _, x := range as {
		found := false
		for i, y := range bs {
			if !used[i] && jsonEqual(x, y) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// FuzzHosts sends arbitrary names to /v1/hosts and /v1/services, answered
// by the real DNS server: every reply is 200 with a well-formed mesos-dns
// entry list, or the router's JSON 404 (a name with '/'); never a 5xx or a
// crash.
func FuzzHosts(f *testing.F) {
	for _, s := range []string{
		"foo.marathon.l4lb.thisdcos.directory", "foo.marathon.l4lb.thisdcos.directory.", "_foo._tcp.marathon.l4lb.thisdcos.directory",
		"web.marathon.mesos", "_web._tcp.marathon.mesos", "leader.mesos", "mesos", ".", "..", "*", ".*", "a.*.b", "a\\.b.mesos",
		"a\\", "\\000.mesos", "\x00", "\xff\xfe", "a..b", "_._tcp", "my app.web.mesos", "%zz", "l4lb.thisdcos.directory",
	} {
		f.Add(s)
	}
	tables := &fakeTables{t: taskTable(f), st: discovery.Status{Loaded: true}}
	h := New(Config{Tables: tables, Resolver: newResolver(f, tables, 0), MesosDomain: "mesos"})
	f.Fuzz(func(t *testing.T, name string) {
		for _, endpoint := range []string{"/v1/hosts/", "/v1/services/"} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL = &url.URL{Path: endpoint + name}
			req.RequestURI = req.URL.RequestURI()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK:
				checkEntries(t, endpoint, name, rec.Body.Bytes())
			case http.StatusNotFound, http.StatusMovedPermanently:
				if rec.Code == http.StatusNotFound && !json.Valid(rec.Body.Bytes()) {
					t.Errorf("GET %s%q = 404 with no JSON: %q", endpoint, name, rec.Body)
				}
			default:
				t.Errorf("GET %s%q = %d %s", endpoint, name, rec.Code, rec.Body)
			}
		}
	})
}

// checkEntries checks a /v1/hosts or /v1/services body: a non-empty array
// of objects with exactly mesos-dns's string fields.
func checkEntries(t *testing.T, endpoint, name string, body []byte) {
	t.Helper()
	var entries []map[string]any
	if err := json.Unmarshal(body, &entries); err != nil || len(entries) == 0 {
		t.Fatalf("GET %s%q = %q: not a non-empty array of objects (%v)", endpoint, name, body, err)
	}
	keys := []string{"host", "ip"}
	if endpoint == "/v1/services/" {
		keys = []string{"service", "host", "ip", "port"}
	}
	for _, e := range entries {
		if len(e) != len(keys) {
			t.Errorf("GET %s%q: entry %v, want fields %q", endpoint, name, e, keys)
		}
		for _, k := range keys {
			if _, ok := e[k].(string); !ok {
				t.Errorf("GET %s%q: entry %v lacks string %q", endpoint, name, e, k)
			}
		}
	}
}

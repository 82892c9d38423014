package httpapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/dnsserver"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// newTestServer serves New(cfg) on loopback, with fake tables holding
// testTable and a loaded status unless cfg says otherwise, and a real
// dnsserver.Server answering from the same tables as the Resolver.
func newTestServer(tb testing.TB, cfg Config) (*httptest.Server, *fakeTables) {
	tb.Helper()
	f, ok := cfg.Tables.(*fakeTables)
	if !ok {
		f = &fakeTables{t: testTable(tb), st: discovery.Status{Loaded: true, Synced: true, Generation: 7}}
		cfg.Tables = f
	}
	if cfg.Resolver == nil {
		cfg.Resolver = newResolver(tb, f, cfg.TTL)
	}
	srv := httptest.NewServer(New(cfg))
	tb.Cleanup(srv.Close)
	return srv, f
}

// newResolver returns a DNS server answering from tables; Answer needs no
// sockets, so it is never Run.
func newResolver(tb testing.TB, tables dnsserver.Tables, ttl time.Duration) *dnsserver.Server {
	tb.Helper()
	s, err := dnsserver.New(dnsserver.Config{Addr: "127.0.0.1:0", Tables: tables, TTL: ttl, MesosDomain: "mesos"})
	if err != nil {
		tb.Fatalf("dnsserver.New: %v", err)
	}
	return s
}

// do performs method path on srv and returns the response and its body.
func do(tb testing.TB, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		tb.Fatalf("new request %s %s: %v", method, path, err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body of %s %s: %v", method, path, err)
	}
	return resp, body
}

func TestGolden(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	tests := []struct {
		name string
		path string
	}{
		{name: "records", path: "/records"},
		{name: "v1_vips", path: "/v1/vips"},
		{name: "v1_records", path: "/v1/records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, http.MethodGet, tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want 200", tt.path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("GET %s Content-Type = %q, want application/json", tt.path, ct)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("GET %s differs from %s (run with -update to accept):\n%s", tt.path, golden, body)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "vipbridge_test_total", Help: "test"}))
	srv, f := newTestServer(t, Config{Version: "1.2.3", Gatherer: reg, TTL: 30e9})
	tbl := f.Table()
	foo, err := tbl.Lookup("foo.marathon")
	if err != nil {
		t.Fatalf("test table does not announce foo.marathon: %v", err)
	}
	bar, err := tbl.Lookup("bar.marathon")
	if err != nil {
		t.Fatalf("test table does not announce bar.marathon: %v", err)
	}
	web, err := tbl.Lookup("web.svc.hello-world")
	if err != nil {
		t.Fatalf("test table does not announce web.svc.hello-world: %v", err)
	}
	const fooFQDN = "foo.marathon.l4lb.thisdcos.directory"
	_, recordsBody := do(t, srv, http.MethodGet, "/records")

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCT     string
		want       any // JSON-decoded body must equal this, if set
		wantSub    []string
	}{
		{name: "records by key", path: "/records/foo.marathon", wantStatus: 200,
			wantSub: []string{`"name": "` + fooFQDN + `"`, `"type": "A"`, `"value": "` + foo.Addr4.String() + `"`, `"ttl": 30`,
				`"value": "0 1 80 ` + fooFQDN + `."`, `"announced": true`}},
		{name: "records by fqdn", path: "/records/" + fooFQDN, wantStatus: 200, wantSub: []string{`"name": "` + fooFQDN + `"`}},
		{name: "records by fqdn with dot", path: "/records/" + fooFQDN + ".", wantStatus: 200, wantSub: []string{`"name": "` + fooFQDN + `"`}},
		{name: "records by upper case", path: "/records/FOO.Marathon.L4LB.thisdcos.directory", wantStatus: 200, wantSub: []string{`"name": "` + fooFQDN + `"`}},
		{name: "records by dclb alias", path: "/records/foo.marathon.dclb.thisdcos.directory.", wantStatus: 200, wantSub: []string{`"name": "` + fooFQDN + `"`}},
		{name: "records of unannounced", path: "/records/db.marathon", wantStatus: 200, wantSub: []string{`"records": []`, `"announced": false`}},
		{name: "records of unknown", path: "/records/nope.marathon", wantStatus: 404, want: map[string]any{"error": "no VIP of that name"}},
		{name: "records of zone", path: "/records/l4lb.thisdcos.directory", wantStatus: 404},
		{name: "records of zone apex", path: "/records/.l4lb.thisdcos.directory", wantStatus: 404},
		{name: "records of long name", path: "/records/" + strings.Repeat("a.", 200) + "marathon", wantStatus: 404},
		{name: "records trailing slash", path: "/records/", wantStatus: 404},
		{name: "query ignored", path: "/records?generation=1&x=%zz&pretty", wantStatus: 200, wantSub: []string{string(recordsBody)}},
		{name: "head", method: http.MethodHead, path: "/records", wantStatus: 200, wantCT: "application/json"},
		// /v1/hosts and /v1/services in mesos-dns's shape (resolver.go).
		{name: "hosts", path: "/v1/hosts/" + fooFQDN, wantStatus: 200,
			want: []any{map[string]any{"host": fooFQDN + ".", "ip": foo.Addr4.String()}}},
		{name: "hosts dual stack", path: "/v1/hosts/bar.marathon.l4lb.thisdcos.directory.", wantStatus: 200,
			want: []any{
				map[string]any{"host": "bar.marathon.l4lb.thisdcos.directory.", "ip": bar.Addr4.String()},
				map[string]any{"host": "bar.marathon.l4lb.thisdcos.directory.", "ip": bar.Addr6.String()},
			}},
		{name: "hosts upper case", path: "/v1/hosts/FOO.marathon.L4LB.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"host": fooFQDN + ".", "ip": foo.Addr4.String()}}},
		{name: "hosts dclb alias", path: "/v1/hosts/foo.marathon.dclb.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"host": "foo.marathon.dclb.thisdcos.directory.", "ip": foo.Addr4.String()}}},
		{name: "hosts wildcard cleaned", path: "/v1/hosts/foo.*.marathon.l4lb.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"host": fooFQDN + ".", "ip": foo.Addr4.String()}}},
		{name: "hosts unknown", path: "/v1/hosts/nope.marathon.l4lb.thisdcos.directory", wantStatus: 200, want: emptyHost},
		{name: "hosts unannounced", path: "/v1/hosts/db.marathon.l4lb.thisdcos.directory", wantStatus: 200, want: emptyHost},
		{name: "hosts bare key", path: "/v1/hosts/foo.marathon", wantStatus: 200, want: emptyHost},
		{name: "hosts label too long", path: "/v1/hosts/" + strings.Repeat("a", 64) + ".l4lb.thisdcos.directory", wantStatus: 200, want: emptyHost},
		{name: "hosts ports", path: "/v1/hosts/" + fooFQDN + "/ports", wantStatus: 501},
		{name: "services", path: "/v1/services/_foo._tcp.marathon.l4lb.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"service": "_foo._tcp.marathon.l4lb.thisdcos.directory", "host": fooFQDN + ".", "ip": foo.Addr4.String(), "port": "80"}}},
		{name: "services as asked", path: "/v1/services/_FOO._tcp.marathon.l4lb.thisdcos.directory.", wantStatus: 200,
			want: []any{map[string]any{"service": "_FOO._tcp.marathon.l4lb.thisdcos.directory.", "host": fooFQDN + ".", "ip": foo.Addr4.String(), "port": "80"}}},
		{name: "services udp", path: "/v1/services/_bar._udp.marathon.l4lb.thisdcos.directory.", wantStatus: 200,
			want: []any{map[string]any{"service": "_bar._udp.marathon.l4lb.thisdcos.directory.", "host": "bar.marathon.l4lb.thisdcos.directory.", "ip": bar.Addr4.String(), "port": "8080"}}},
		{name: "services dotted name ipv6", path: "/v1/services/_web._tcp.svc.hello-world.l4lb.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"service": "_web._tcp.svc.hello-world.l4lb.thisdcos.directory", "host": "web.svc.hello-world.l4lb.thisdcos.directory.", "ip": web.Addr6.String(), "port": "443"}}},
		{name: "services dotted name before proto", path: "/v1/services/_web.svc._tcp.hello-world.l4lb.thisdcos.directory", wantStatus: 200,
			want: []any{map[string]any{"service": "_web.svc._tcp.hello-world.l4lb.thisdcos.directory", "host": "web.svc.hello-world.l4lb.thisdcos.directory.", "ip": web.Addr6.String(), "port": "443"}}},
		{name: "services wrong protocol", path: "/v1/services/_foo._udp.marathon.l4lb.thisdcos.directory", wantStatus: 200, want: emptyService},
		{name: "services not srv", path: "/v1/services/" + fooFQDN, wantStatus: 200, want: emptyService},
		{name: "services outside zones", path: "/v1/services/_foo._tcp.example.org", wantStatus: 200, want: emptyService},
		{name: "version", path: "/v1/version", wantStatus: 200, want: map[string]any{"Service": "vipbridge", "Version": "1.2.3"}},
		{name: "healthz", path: "/healthz", wantStatus: 200, wantCT: "text/plain; charset=utf-8", wantSub: []string{"ok\n"}},
		{name: "metrics", path: "/metrics", wantStatus: 200, wantSub: []string{"vipbridge_test_total 0"}},
		{name: "post records", method: http.MethodPost, path: "/records", wantStatus: 405},
		{name: "delete vips", method: http.MethodDelete, path: "/v1/vips", wantStatus: 405},
		{name: "put named", method: http.MethodPut, path: "/records/foo.marathon", wantStatus: 405},
		{name: "unknown path", path: "/v2/apps", wantStatus: 404, want: map[string]any{"error": "not found"}},
		{name: "unknown method unknown path", method: http.MethodPost, path: "/nope", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := do(t, srv, method, tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", method, tt.path, resp.StatusCode, body, tt.wantStatus)
			}
			wantCT := tt.wantCT
			if wantCT == "" && !strings.HasPrefix(tt.path, "/metrics") {
				wantCT = "application/json"
			}
			if ct := resp.Header.Get("Content-Type"); wantCT != "" && ct != wantCT {
				t.Errorf("%s %s Content-Type = %q, want %q", method, tt.path, ct, wantCT)
			}
			if resp.StatusCode == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s Allow = %q, want \"GET, HEAD\"", method, tt.path, resp.Header.Get("Allow"))
			}
			if method == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD %s body = %q, want none", tt.path, body)
			}
			for _, s := range tt.wantSub {
				if !strings.Contains(string(body), s) {
					t.Errorf("%s %s body lacks %q:\n%s", method, tt.path, s, body)
				}
			}
			if tt.want != nil {
				var got any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("%s %s body is not JSON: %v\n%s", method, tt.path, err, body)
				}
				if !jsonEqual(got, tt.want) {
					t.Errorf("%s %s = %s, want %v", method, tt.path, body, tt.want)
				}
			}
		})
	}
}

// emptyHost and emptyService are mesos-dns's answers for a name without
// records: one all-empty entry.
var (
	emptyHost    = []any{map[string]any{"host": "", "ip": ""}}
	emptyService = []any{map[string]any{"service": "", "host": "", "ip": "", "port": ""}}
)

// jsonEqual compares decoded JSON values.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func TestMetricsWithoutGatherer(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	resp, body := do(t, srv, http.MethodGet, "/metrics")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without gatherer = %d %s, want 404", resp.StatusCode, body)
	}
}

func TestCustomZone(t *testing.T) {
	srv, _ := newTestServer(t, Config{Zone: "vip.example"})
	tests := []struct {
		name       string
		path       string
		wantStatus int
	}{
		{name: "own zone", path: "/records/foo.marathon.vip.example", wantStatus: 200},
		{name: "key", path: "/records/foo.marathon", wantStatus: 200},
		{name: "no dclb alias", path: "/records/foo.marathon.dclb.thisdcos.directory", wantStatus: 404},
		{name: "default zone", path: "/records/foo.marathon.l4lb.thisdcos.directory", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, http.MethodGet, tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, resp.StatusCode, body, tt.wantStatus)
			}
		})
	}
}

func TestEmptyAndNilTable(t *testing.T) {
	tests := []struct {
		name  string
		table *discovery.Table
	}{
		{name: "nil", table: nil},
		{name: "empty", table: &discovery.Table{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, Config{Tables: &fakeTables{t: tt.table}})
			_, body := do(t, srv, http.MethodGet, "/records")
			for _, s := range []string{`"records": []`, `"vips": []`, `"errors": []`} {
				if !strings.Contains(string(body), s) {
					t.Errorf("GET /records body lacks %q:\n%s", s, body)
				}
			}
			for _, path := range []string{"/v1/vips", "/v1/records"} {
				if _, body := do(t, srv, http.MethodGet, path); string(body) != "[]\n" {
					t.Errorf("GET %s = %q, want []", path, body)
				}
			}
		})
	}
}

func TestSRVNames(t *testing.T) {
	a := &api{zone: DefaultZone}
	tests := []struct {
		name  string
		key   string
		proto discovery.Protocol
		want  string
	}{
		{name: "simple", key: "foo.marathon", proto: discovery.TCP, want: "_foo._tcp.marathon.l4lb.thisdcos.directory"},
		{name: "udp", key: "foo.marathon", proto: discovery.UDP, want: "_foo._udp.marathon.l4lb.thisdcos.directory"},
		{name: "dotted name", key: "web.svc.hello-world", proto: discovery.TCP, want: "_web._tcp.svc.hello-world.l4lb.thisdcos.directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.srvName(tt.key, tt.proto)
			if got != tt.want {
				t.Errorf("srvName(%q, %v) = %q, want %q", tt.key, tt.proto, got, tt.want)
			}
			key, proto, ok := a.srvKey(got + ".")
			if !ok || key != tt.key || proto != tt.proto {
				t.Errorf("srvKey(%q) = %q, %v, %v, want %q, %v, true", got, key, proto, ok, tt.key, tt.proto)
			}
		})
	}
}

func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{Tables: &fakeTables{t: testTable(t)}, Logger: log})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/records/nope.marathon?token=secret", nil))
	got := buf.String()
	for _, want := range []string{"level=DEBUG", `msg="http request"`, "method=GET", "path=/records/nope.marathon", "status=404"} {
		if !strings.Contains(got, want) {
			t.Errorf("request log lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("request log shows the query string: %s", got)
	}
}

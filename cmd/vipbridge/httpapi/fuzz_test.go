package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
)

// FuzzPaths sends arbitrary methods, paths and query strings through the
// handler: it must never panic nor answer 5xx.
func FuzzPaths(f *testing.F) {
	seeds := []struct {
		name, method, path, query string
	}{
		{name: "records", method: "GET", path: "/records"},
		{name: "by name", method: "GET", path: "/records/foo.marathon.l4lb.thisdcos.directory."},
		{name: "empty labels", method: "GET", path: "/records/..l4lb.thisdcos.directory"},
		{name: "dot", method: "GET", path: "/records/."},
		{name: "srv", method: "GET", path: "/v1/services/_foo._tcp.marathon.l4lb.thisdcos.directory"},
		{name: "srv short", method: "GET", path: "/v1/services/_._tcp"},
		{name: "srv underscore", method: "GET", path: "/v1/services/_"},
		{name: "hosts", method: "GET", path: "/v1/hosts/bar.marathon"},
		{name: "traversal", method: "GET", path: "/records/../v1/vips"},
		{name: "double slash", method: "GET", path: "//records"},
		{name: "no slash", method: "GET", path: "records"},
		{name: "empty", method: "", path: ""},
		{name: "nul", method: "GET", path: "/records/\x00"},
		{name: "bad utf8", method: "GET", path: "/records/\xff\xfe"},
		{name: "query", method: "GET", path: "/v1/vips", query: "a=%zz&;;b"},
		{name: "post", method: "POST", path: "/readyz", query: "x"},
		{name: "odd method", method: "G E T", path: "/metrics"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "vipbridge_fuzz_total", Help: "fuzz"}))
	tables := &fakeTables{t: testTable(f), st: discovery.Status{Loaded: true, Stale: true, StaleSources: []string{"mesos"}}}
	h := New(Config{Tables: tables, Gatherer: reg, Version: "fuzz"})
	f.Fuzz(func(t *testing.T, method, path, query string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL = &url.URL{Path: path, RawQuery: query}
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("%q %q?%q = %d %s", method, path, query, rec.Code, rec.Body)
		}
	})
}

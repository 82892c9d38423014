package marathon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

const (
	upstreamApps = "allegro-marathon-consul/apps/testdata/apps.json"
	upstreamInfo = "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/info.json"
)

// noDNS replaces the resolver's DNS lookups: tests stay on loopback.
func noDNS(c *Client) *atomic.Int32 {
	var calls atomic.Int32
	c.resolver.lookup = func(context.Context, string) ([]netip.Addr, error) {
		calls.Add(1)
		return nil, errors.New("no dns in tests")
	}
	return &calls
}

// marathonServer serves /v2/info and /v2/apps?embed=apps.tasks.
func marathonServer(t *testing.T, info, apps []byte) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/info":
			w.Header().Set("Content-Type", "application/json")
			w.Write(info)
		case r.URL.Path == "/v2/apps" && r.URL.Query().Get("embed") == "apps.tasks":
			w.Header().Set("Content-Type", "application/json")
			w.Write(apps)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestMarathonSnapshot(t *testing.T) {
	apps := upstreamtest.File(t, upstreamApps)
	tests := []struct {
		name      string
		info      []byte
		framework string
	}{
		{name: "upstream info", info: upstreamtest.File(t, upstreamInfo), framework: "marathon"},
		{name: "custom framework name", info: []byte(`{"leader":"127.0.0.1:8080","marathon_config":{"framework_name":"marathon-user"}}`), framework: "marathon-user"},
		{name: "info unavailable", info: []byte(`{not json`), framework: DefaultFramework},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := marathonServer(t, tt.info, apps)
			c, _, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}})
			noDNS(c)
			st, err := c.Marathon().Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			want, err := DecodeApps(bytes.NewReader(apps), func(string) netip.Addr { return netip.Addr{} })
			if err != nil {
				t.Fatalf("DecodeApps: %v", err)
			}
			for i := range want {
				want[i].Framework = tt.framework
			}
			if !reflect.DeepEqual(st.Apps, want) {
				t.Errorf("Snapshot apps = %+v\nwant %+v", st.Apps, want)
			}
			if got := metric(t, reg, "vipbridge_marathon_request_duration_seconds", "endpoint", "apps", "result", "ok"); got != 1 {
				t.Errorf("apps requests ok = %v, want 1", got)
			}
		})
	}
}

func TestMarathonSnapshotFailover(t *testing.T) {
	var hits atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "no leader", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	up := marathonServer(t, upstreamtest.File(t, upstreamInfo), upstreamtest.File(t, upstreamApps))
	c, _, _ := testClient(t, Config{MarathonURLs: []string{down.URL, up.URL}})
	noDNS(c)
	if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
		t.Fatalf("first Snapshot: %v", err)
	}
	before := hits.Load()
	if before == 0 {
		t.Fatalf("the first URL was never tried")
	}
	if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
		t.Fatalf("second Snapshot: %v", err)
	}
	if got := hits.Load(); got != before {
		t.Errorf("second Snapshot went to the failed URL again (%d → %d hits); want it to start with the one that worked", before, got)
	}
}

func TestMarathonSnapshotAllFail(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"apps": [`)
	}))
	t.Cleanup(garbage.Close)
	c, _, reg := testClient(t, Config{MarathonURLs: []string{bad.URL, garbage.URL}})
	_, err := c.Marathon().Snapshot(context.Background())
	if err == nil {
		t.Fatalf("Snapshot = nil error, want one")
	}
	for _, want := range []string{bad.URL, garbage.URL, "500"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if got := metric(t, reg, "vipbridge_marathon_request_duration_seconds", "endpoint", "apps", "result", "error"); got != 2 {
		t.Errorf("apps requests error = %v, want 2", got)
	}
}

func TestBoundedReader(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		limit    int64
		wantErr  bool
		wantOver bool
	}{
		{name: "under the limit", body: "abc", limit: 4},
		{name: "exactly the limit", body: "abcd", limit: 4},
		{name: "over the limit", body: "abcde", limit: 4, wantErr: true, wantOver: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &boundedReader{r: strings.NewReader(tt.body), left: tt.limit}
			got, err := io.ReadAll(b)
			if (err != nil) != tt.wantErr || b.over != tt.wantOver {
				t.Fatalf("ReadAll = %q, %v (over %v); want error %v, over %v", got, err, b.over, tt.wantErr, tt.wantOver)
			}
			if !tt.wantErr && string(got) != tt.body {
				t.Errorf("ReadAll = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "minimal", cfg: Config{MarathonURLs: []string{"http://127.0.0.1:8080"}}},
		{name: "path prefix", cfg: Config{MarathonURLs: []string{"https://127.0.0.1/service/marathon/"}}},
		{name: "no marathon or mesos url", cfg: Config{}, wantErr: "no marathon or mesos url"},
		{name: "bad scheme", cfg: Config{MarathonURLs: []string{"ftp://127.0.0.1"}}, wantErr: "want http(s)"},
		{name: "no host", cfg: Config{MarathonURLs: []string{"127.0.0.1:8080"}}, wantErr: "want http(s)"},
		{name: "bad mesos url", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, MesosURLs: []string{"mesos"}}, wantErr: "mesos urls"},
		{name: "basic and token", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, BasicAuth: "u:p", TokenFile: tokenFile}, wantErr: "mutually exclusive"},
		{name: "basic without colon", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, BasicAuth: "u"}, wantErr: "user:password"},
		{name: "url credentials differ", cfg: Config{MarathonURLs: []string{"http://a:b@127.0.0.1"}, BasicAuth: "c:d"}, wantErr: "differ"},
		{name: "missing token file", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, TokenFile: filepath.Join(dir, "none")}, wantErr: "token file"},
		{name: "missing ca file", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, CAFile: filepath.Join(dir, "none")}, wantErr: "ca file"},
		{name: "ca file without pem", cfg: Config{MarathonURLs: []string{"http://127.0.0.1"}, CAFile: notPEM}, wantErr: "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New = %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{MarathonURLs: []string{"http://127.0.0.1:8080/"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.maxEvent != 16<<20 || c.idle.Seconds() != 30 || c.MesosInterval().Seconds() != 30 {
		t.Errorf("defaults: max event %d, idle %v, mesos interval %v; want 16 MiB, 30s, 30s", c.maxEvent, c.idle, c.MesosInterval())
	}
	if c.Mesos() != nil {
		t.Errorf("Mesos() without Mesos URLs = %v, want nil", c.Mesos())
	}
	if got := eventsURL(c.marathonURLs[0]); !strings.HasPrefix(got, "http://127.0.0.1:8080/v2/events?event_type=") {
		t.Errorf("eventsURL = %q", got)
	}
}

// Compile-time check: the sources satisfy discovery.Source.
var _ = []discovery.Source{marathonSource{}, mesosSource{}}

package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// TestReadyzTransitions walks one server through the reconciler's states.
func TestReadyzTransitions(t *testing.T) {
	f := &fakeTables{t: testTable(t)}
	srv, _ := newTestServer(t, Config{Tables: f})
	synced := time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)
	steps := []struct {
		name       string
		status     discovery.Status
		wantStatus int
		wantReady  bool
		wantStale  []string
	}{
		{name: "starting", status: discovery.Status{}, wantStatus: 503},
		{name: "loaded from disk", status: discovery.Status{Loaded: true, Generation: 1}, wantStatus: 200, wantReady: true},
		{name: "synced", status: discovery.Status{Loaded: true, Synced: true, Generation: 2,
			LastSync: map[string]time.Time{"marathon": synced}}, wantStatus: 200, wantReady: true},
		{name: "stale still ready", status: discovery.Status{Loaded: true, Synced: true, Stale: true, StaleSources: []string{"mesos", "marathon"},
			LastError: map[string]string{"marathon": `fetch apps from https://user:secret@m1:8080: connection refused`}},
			wantStatus: 200, wantReady: true, wantStale: []string{"marathon", "mesos"}},
		{name: "synced without load", status: discovery.Status{Synced: true}, wantStatus: 200, wantReady: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			f.setStatus(st.status)
			resp, body := do(t, srv, http.MethodGet, "/readyz")
			if resp.StatusCode != st.wantStatus {
				t.Fatalf("GET /readyz = %d %s, want %d", resp.StatusCode, body, st.wantStatus)
			}
			var got readyDoc
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("GET /readyz body: %v\n%s", err, body)
			}
			if got.Ready != st.wantReady || got.Stale != (st.wantStale != nil) || !slices.Equal(got.StaleSources, nonNil(st.wantStale)) {
				t.Errorf("GET /readyz = ready %v stale %v %v, want ready %v stale %v", got.Ready, got.Stale, got.StaleSources, st.wantReady, st.wantStale)
			}
			if strings.Contains(string(body), "secret") {
				t.Errorf("GET /readyz shows a credential:\n%s", body)
			}
			if st.status.LastError != nil && !strings.Contains(got.LastError["marathon"], "https://m1:8080") {
				t.Errorf("GET /readyz last_error = %q, want the redacted URL", got.LastError["marathon"])
			}
			_, recs := do(t, srv, http.MethodGet, "/records")
			if wantStale := st.wantStale != nil; strings.Contains(string(recs), `"stale": true`) != wantStale {
				t.Errorf("GET /records stale = %v, want %v", !wantStale, wantStale)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "dial tcp 10.0.0.1:8080: refused", want: "dial tcp 10.0.0.1:8080: refused"},
		{name: "userinfo", in: `Get "https://u:p@m:8080/v2/apps": EOF`, want: `Get "https://m:8080/v2/apps": EOF`},
		{name: "user only", in: "http://token@m/x", want: "http://m/x"},
		{name: "two urls", in: "http://a:b@x and http://c:d@y", want: "http://x and http://y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

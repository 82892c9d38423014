package marathon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// authRecorder is a Marathon+Mesos server that records the Authorization
// header of every request, by path.
type authRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string][]string
}

func newAuthRecorder(t *testing.T, l net.Listener) *authRecorder {
	t.Helper()
	a := &authRecorder{seen: map[string][]string{}}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen[r.URL.Path] = append(a.seen[r.URL.Path], r.Header.Get("Authorization"))
		a.mu.Unlock()
		switch r.URL.Path {
		case "/v2/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/v2/apps":
			w.Write([]byte(`{"apps":[]}`))
		case "/v2/info":
			w.Write([]byte(`{"frameworkId":"F0"}`))
		case mesosStatePath:
			w.Write([]byte(`{"slaves":[],"frameworks":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	if l != nil {
		s.Listener.Close()
		s.Listener = l
	}
	s.Start()
	t.Cleanup(s.Close)
	a.Server = s
	return a
}

func (a *authRecorder) last(path string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.seen[path]
	if len(v) == 0 {
		return "<no request>"
	}
	return v[len(v)-1]
}

// otherLoopback listens on 127.0.0.2 so that a redirect changes host (and
// net/http drops Authorization); it falls back to 127.0.0.1.
func otherLoopback(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Logf("127.0.0.2 unavailable (%v): redirect stays on 127.0.0.1", err)
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// redirector answers every request with a 307 to target.
func redirector(t *testing.T, target string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(s.Close)
	return s
}

func writeToken(t *testing.T, path, token string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestAuthHeaders(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeToken(t, tokenFile, "tok-1", time.Unix(1000, 0))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa55"))
	tests := []struct {
		name string
		cfg  func(url string) Config
		want string
	}{
		{name: "basic auth", cfg: func(u string) Config { return Config{BasicAuth: "user:pa55"} }, want: basic},
		{name: "credentials in the url", cfg: func(u string) Config {
			return Config{MarathonURLs: []string{strings.Replace(u, "http://", "http://user:pa55@", 1)}}
		}, want: basic},
		{name: "token file", cfg: func(string) Config { return Config{TokenFile: tokenFile} }, want: "token=tok-1"},
		{name: "none", cfg: func(string) Config { return Config{} }, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The leader is on another host than the configured URLs,
			// which redirect to it.
			leader := newAuthRecorder(t, otherLoopback(t))
			standby := redirector(t, leader.URL)
			cfg := tt.cfg(standby.URL)
			if cfg.MarathonURLs == nil {
				cfg.MarathonURLs = []string{standby.URL}
			}
			cfg.MesosURLs = []string{standby.URL}
			c, rec, _ := testClient(t, cfg)
			noDNS(c)
			if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
				t.Fatalf("Marathon Snapshot: %v", err)
			}
			if _, err := c.Mesos().Snapshot(context.Background()); err != nil {
				t.Fatalf("Mesos Snapshot: %v", err)
			}
			run(t, c.Stream(rec))
			rec.waitFor(t, "connect", atLeast("connect", 1))
			for _, path := range []string{"/v2/info", "/v2/apps", "/v2/events", mesosStatePath} {
				if got := leader.last(path); got != tt.want {
					t.Errorf("Authorization of %s at the leader = %q, want %q", path, got, tt.want)
				}
			}
		})
	}
}

func TestTokenFileReread(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "tok-1", time.Unix(1000, 0))
	srv := newAuthRecorder(t, nil)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{srv.URL}, TokenFile: tokenFile})
	steps := []struct {
		name  string
		token string // "" keeps the file
		mtime time.Time
		want  string
	}{
		{name: "initial", want: "token=tok-1"},
		{name: "unchanged", want: "token=tok-1"},
		{name: "rotated, same size", token: "tok-2", mtime: time.Unix(2000, 0), want: "token=tok-2"},
		{name: "rotated, same mtime", token: "tok-three", mtime: time.Unix(2000, 0), want: "token=tok-three"},
	}
	for _, st := range steps {
		if st.token != "" {
			writeToken(t, tokenFile, st.token, st.mtime)
		}
		if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
			t.Fatalf("%s: Snapshot: %v", st.name, err)
		}
		if got := srv.last("/v2/apps"); got != st.want {
			t.Errorf("%s: Authorization = %q, want %q", st.name, got, st.want)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLogged runs clients with credentials against failing
// servers and checks that no secret reaches the logs or returned errors.
func TestSecretsNeverLogged(t *testing.T) {
	const secret = "s3cret-Pa55"
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "tok-"+secret, time.Unix(1000, 0))
	secrets := []string{
		secret,
		base64.StdEncoding.EncodeToString([]byte("user:" + secret)),
		base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/events":
			http.Error(w, "Unauthorized: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
		case strings.HasPrefix(r.URL.Path, "/loop"):
			http.Redirect(w, r, "/loop"+r.URL.Path, http.StatusFound)
		default:
			http.Error(w, "echo "+r.Header.Get("Authorization"), http.StatusInternalServerError)
		}
	}))
	t.Cleanup(failing.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "basic auth", cfg: Config{BasicAuth: "user:" + secret}},
		{name: "token file", cfg: Config{TokenFile: tokenFile}},
		{name: "credentials in urls", cfg: Config{
			MarathonURLs: []string{strings.Replace(failing.URL, "http://", "http://user:"+secret+"@", 1), strings.Replace(dead, "http://", "http://user:"+secret+"@", 1)},
			MesosURLs:    []string{strings.Replace(failing.URL, "http://", "http://user:"+secret+"@", 1) + "/loop"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			cfg := tt.cfg
			cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			if cfg.MarathonURLs == nil {
				cfg.MarathonURLs = []string{failing.URL, dead}
				cfg.MesosURLs = []string{failing.URL + "/loop", dead}
			}
			c, rec, reg := testClient(t, cfg)
			noDNS(c)
			var errs []string
			if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
				errs = append(errs, err.Error())
			} else {
				t.Errorf("Marathon Snapshot against failing servers = nil error")
			}
			if _, err := c.Mesos().Snapshot(context.Background()); err != nil {
				errs = append(errs, err.Error())
			} else {
				t.Errorf("Mesos Snapshot against failing servers = nil error")
			}
			run(t, c.Stream(rec))
			waitMetric(t, func() bool {
				return metric(t, reg, "vipbridge_marathon_reconnects_total", "reason", reasonConnect) >= 4
			})
			all := logs.String() + "\n" + strings.Join(errs, "\n")
			if !strings.Contains(all, "401") {
				t.Errorf("logs do not show the failing stream; logs:\n%s", all)
			}
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("secret %q found in logs or errors:\n%s", s, all)
				}
			}
		})
	}
}

// waitMetric polls cond while Run works; only a hang guard bounds it.
func waitMetric(t *testing.T, cond func() bool) {
	t.Helper()
	guard := time.After(testWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-guard:
			t.Fatalf("condition not reached")
		case <-tick.C:
		}
	}
}

// tlsCAFile writes srv's certificate as a PEM CA bundle.
func tlsCAFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLS(t *testing.T) {
	plain := marathonServer(t, []byte(`{}`), []byte(`{"apps":[]}`))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/info":
			w.Write([]byte(`{}`))
		case "/v2/apps":
			w.Write([]byte(`{"apps":[]}`))
		case "/v2/pods/::status":
			w.Write([]byte(`[]`))
		default:
			http.Redirect(w, r, plain.URL+"/v2/apps?embed=apps.tasks", http.StatusFound)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := tlsCAFile(t, srv)
	tests := []struct {
		name    string
		url     string
		caFile  string
		wantErr string
	}{
		{name: "verified with the ca file", url: srv.URL, caFile: ca},
		{name: "unknown authority", url: srv.URL, wantErr: "certificate"},
		{name: "insecure transport is still verified", url: srv.URL, wantErr: "certificate"},
		{name: "no downgrade to http", url: srv.URL + "/downgrade", caFile: ca, wantErr: "refusing redirect from https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{MarathonURLs: []string{tt.url}, CAFile: tt.caFile, BasicAuth: "user:pass"}
			if tt.name == "insecure transport is still verified" {
				cfg.HTTPClient = srv.Client()
				cfg.HTTPClient.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
				cfg.HTTPClient.Transport.(*http.Transport).TLSClientConfig.RootCAs = nil
			}
			c, _, _ := testClient(t, cfg)
			_, err := c.Marathon().Snapshot(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Snapshot = %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Snapshot = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

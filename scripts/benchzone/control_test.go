package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

func TestControl(t *testing.T) {
	sim, err := marathontest.Start(marathontest.SizedScenario(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.AddApp(marathontest.AppSpec{ID: "/probe",
		Ports: []marathontest.PortSpec{{Labels: map[string]string{"VIP_0": "/probe:80"}}}}); err != nil {
		t.Fatal(err)
	}
	c, err := startControl(t.Context(), sim, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()

	// In order: each row sees the state the rows before it left.
	for _, tc := range []struct {
		name, method, path string
		code               int
		want               map[string]any // expected JSON fields
	}{
		{name: "flip starts the probe", method: "POST", path: "/flip?app=/probe", code: 200, want: map[string]any{"running": true}},
		{name: "flip kills it", method: "POST", path: "/flip?app=/probe", code: 200, want: map[string]any{"running": false}},
		{name: "flip of a missing app", method: "POST", path: "/flip?app=/nope", code: 404},
		{name: "GET is refused", method: "GET", path: "/flip?app=/probe", code: 405},
		{name: "status burst", method: "POST", path: "/status?n=5", code: 200, want: map[string]any{"sent": 5.0}},
		{name: "status without n", method: "POST", path: "/status", code: 400},
		{name: "status n=0", method: "POST", path: "/status?n=0", code: 400},
		{name: "steady start", method: "POST", path: "/steady/start?rate=1000", code: 200, want: map[string]any{"rate": 1000.0}},
		{name: "steady start twice", method: "POST", path: "/steady/start?rate=1000", code: 409},
		{name: "steady stop", method: "POST", path: "/steady/stop", code: 200},
		{name: "steady stop when stopped", method: "POST", path: "/steady/stop", code: 200, want: map[string]any{"sent": 0.0}},
		{name: "steady without rate", method: "POST", path: "/steady/start", code: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().UnixNano()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, c.url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (answer %v)", k, got[k], v, got)
				}
			}
			if strings.HasPrefix(tc.path, "/flip") {
				t0 := int64(got["t0"].(float64))
				if after := time.Now().UnixNano(); t0 < before-int64(time.Millisecond) || t0 > after+int64(time.Millisecond) {
					t.Errorf("t0 %d outside the request [%d, %d]", t0, before, after)
				}
			}
		})
	}
}

func TestControlLoopbackOnly(t *testing.T) {
	sim, err := marathontest.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{name: "IPv4 loopback", addr: "127.0.0.1:0", ok: true},
		{name: "IPv6 loopback", addr: "[::1]:0", ok: true},
		{name: "any address", addr: "0.0.0.0:0"},
		{name: "empty host", addr: ":0"},
		{name: "routable", addr: "192.0.2.1:0"},
		{name: "a name", addr: "localhost:0"},
		{name: "no port", addr: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := startControl(t.Context(), sim, tc.addr)
			if err == nil {
				c.close()
			}
			if tc.ok && err != nil && strings.HasPrefix(err.Error(), "control: ") {
				t.Skipf("cannot listen there: %v", err) // e.g. no IPv6
			}
			if (err == nil) != tc.ok {
				t.Errorf("startControl(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}

// TestServe runs the propagation mode and reads the URLs file it writes.
func TestServe(t *testing.T) {
	urls := filepath.Join(t.TempDir(), "urls")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOpts{apps: 5, tasks: 1, probe: "/probe", control: "127.0.0.1:0", urls: urls})
	}()
	deadline := time.Now().Add(30 * time.Second)
	var body []byte
	for {
		var err error
		if body, err = os.ReadFile(urls); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no URLs file")
		}
	}
	kv := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		kv[k] = v
	}
	for _, k := range []string{"MARATHON", "MESOS", "CONTROL"} {
		if !strings.HasPrefix(kv[k], "http://127.0.0.1:") {
			t.Errorf("%s = %q", k, kv[k])
		}
	}
	// The probe app exists, with no task: the first flip starts one.
	resp, err := http.Post(kv["CONTROL"]+"/flip?app=/probe", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Running bool }
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || !got.Running {
		t.Errorf("first flip: running=%v, %v", got.Running, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

package marathon

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// eventually waits until cond holds; the deadline only guards a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastSubscribed is a SUBSCRIBED announcing 50 ms heartbeats, so that a
// silent stream is found dead quickly.
func fastSubscribed(t *testing.T) []byte {
	t.Helper()
	rec := captureRecords(t, "recovered-agents.json")[0]
	return bytes.Replace(rec, []byte(`"heartbeat_interval_seconds":15.0`), []byte(`"heartbeat_interval_seconds":0.05`), 1)
}

// TestMesosStreamRedirect: a standby master answers 307 with a
// scheme-less Location; the stream follows it itself, credentials kept.
func TestMesosStreamRedirect(t *testing.T) {
	const userPass = "ops:s3cret"
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
	leader := newRawOperatorAPI(t, want, frame(captureRecords(t, "hello-overlay.json")))
	var standbyHits atomic.Int32
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		standbyHits.Add(1)
		w.Header().Set("Location", "//"+strings.TrimPrefix(leader.URL, "http://")+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(standby.Close)
	c, _, _ := testClient(t, Config{MesosURLs: []string{standby.URL}, MesosBasicAuth: userPass})
	noDNS(c)
	s, rec := runStream(t, c)
	waitChanges(t, s, rec, changes(t, captureRecords(t, "hello-overlay.json")))
	if standbyHits.Load() == 0 || leader.count(mesosAPIPath) == 0 {
		t.Errorf("standby hits %d, leader SUBSCRIBEs %d: want both", standbyHits.Load(), leader.count(mesosAPIPath))
	}
}

// TestMesosStreamRedirectLoop: masters that redirect to each other make the
// attempt fail, and the stream keeps trying; nothing is decided.
func TestMesosStreamRedirectLoop(t *testing.T) {
	var hits atomic.Int32
	var self *httptest.Server
	self = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Location", "//"+strings.TrimPrefix(self.URL, "http://")+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(self.Close)
	c, _, reg := testClient(t, Config{MesosURLs: []string{self.URL}})
	runStream(t, c)
	eventually(t, "two failed attempts", func() bool {
		return metric(t, reg, "vipbridge_mesos_reconnects_total", "reason", "connect") >= 2
	})
	if n := hits.Load(); n < 2*maxRedirects {
		t.Errorf("%d requests, want at least %d", n, 2*maxRedirects)
	}
}

// TestMesosStreamUnsupported: a master without SUBSCRIBE (404, as Mesos
// before 1.0; or a version before 1.1), or one refusing it to our
// principal (403), is polled instead, and said so once.
func TestMesosStreamUnsupported(t *testing.T) {
	state := []byte(`{"leader":"master@127.0.0.1:5050","slaves":[{"id":"S1","hostname":"10.0.0.1","pid":"slave(1)@10.0.0.1:5051"}],
		"frameworks":[{"id":"F2","name":"spark","tasks":[{"id":"t1","slave_id":"S1","state":"TASK_RUNNING"}]}]}`)
	for _, version := range []string{"", "1.0.1", "forbidden"} {
		t.Run("version "+version, func(t *testing.T) {
			var polls atomic.Int32
			master := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == mesosStatePath:
					polls.Add(1)
					w.Write(state)
				case r.URL.Path == mesosAPIPath && version == "forbidden":
					w.WriteHeader(http.StatusForbidden) // read-write realm, read-only principal
				case r.URL.Path == mesosVersionPath && version != "":
					w.Write([]byte(`{"version":"` + version + `"}`))
				case r.URL.Path == mesosAPIPath && version != "":
					w.Header().Set("Content-Type", "application/json")
					w.Write(frame([][]byte{fastSubscribed(t)})) // never asked
					<-r.Context().Done()
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(master.Close)
			var logs syncBuffer
			c, _, _ := testClient(t, Config{MesosURLs: []string{master.URL},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			s, _ := runStream(t, c)
			for range 3 {
				st, err := s.Snapshot(context.Background())
				if err != nil || len(st.Apps) != 1 {
					t.Fatalf("Snapshot = %d apps, %v; want the polled spark task", len(st.Apps), err)
				}
			}
			if n := polls.Load(); n != 3 {
				t.Errorf("%d polls, want 3", n)
			}
			if n := strings.Count(logs.String(), "polling its state instead"); n != 1 {
				t.Errorf("%d log lines about polling, want 1:\n%s", n, logs.String())
			}
			if s.subscribedN.Load() != 0 {
				t.Errorf("subscribed to a master without SUBSCRIBE")
			}
		})
	}
}

// TestMesosStreamChaos: a stream cut mid-record, a record length that lies,
// heartbeats that stop: each ends the stream, which resubscribes and
// resyncs.
func TestMesosStreamChaos(t *testing.T) {
	good := frame([][]byte{fastSubscribed(t)})
	tests := []struct {
		name, reason string
		first        []byte
	}{
		{name: "cut mid-record", reason: "framing", first: append(bytes.Clone(good), "120\n{\"type\":\"TASK_"...)},
		{name: "length lies", reason: "framing", first: append(bytes.Clone(good), "3\n{\"type\":\"HEARTBEAT\"}"...)},
		{name: "heartbeats stop", reason: "read", first: nil}, // the last stream stays open and silent
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams := [][]byte{good}
			if tt.first != nil {
				streams = [][]byte{tt.first, good}
			}
			api := newRawOperatorAPI(t, "", streams...)
			c, _, reg := testClient(t, Config{MesosURLs: []string{api.URL}})
			noDNS(c)
			s, rec := runStream(t, c)
			eventually(t, "a second subscription", func() bool {
				return resyncs(rec.all(), "subscribed") >= 2 && metric(t, reg, "vipbridge_mesos_reconnects_total", "reason", tt.reason) >= 1
			})
			if _, err := s.Snapshot(context.Background()); err != nil {
				t.Errorf("Snapshot after %s: %v", tt.name, err)
			}
		})
	}
}

// TestMesosStreamLeaderByName: a master configured by name is the leader
// at its resolved address (leader.mesos), as /master/state's pid said.
func TestMesosStreamLeaderByName(t *testing.T) {
	api := newOperatorAPI(t, [][]byte{fastSubscribed(t)})
	port := api.URL[strings.LastIndex(api.URL, ":")+1:]
	c, _, _ := testClient(t, Config{MesosURLs: []string{"http://master.example:" + port}})
	c.resolver.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "master.example" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	// Dial master.example as the loopback server.
	c.mesosAPI.Transport.(*authTransport).base.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, strings.TrimPrefix(api.URL, "http://"))
	}
	s, rec := runStream(t, c)
	rec.waitFor(t, "the subscription", atLeast("subscribed", 1))
	st, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("127.0.0.1:" + port); st.Cluster.Leader != want {
		t.Errorf("leader = %v, want %v", st.Cluster.Leader, want)
	}
}

package marathon

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

// captureDir holds dcos-net's operator API captures: streams stored one
// JSON event per line, unframed (facts A.2).
const captureDir = "dcos-dcos-net/apps/dcos_net/test/"

// captureRecords returns a capture's events, one per line.
func captureRecords(t *testing.T, name string) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(upstreamtest.File(t, captureDir+name)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	return out
}

// operatorAPI is a Mesos master's /api/v1 on loopback: every SUBSCRIBE
// gets the next entry of streams (the last one repeats): all but the last
// end after their bytes, the last stays open. Records are framed as Mesos
// frames them (frame; dcos-net's tests frame captures the same way:
// dcos_net_mesos_listener_tests.erl stream_loop/3). It counts requests by
// path and, with auth set, wants that Authorization header.
type operatorAPI struct {
	*httptest.Server
	auth     string
	mu       sync.Mutex
	streams  [][]byte
	requests map[string]int
}

// frame frames records as one RecordIO stream.
func frame(records [][]byte) []byte {
	var framed []byte
	for _, rec := range records {
		framed = appendRecord(framed, rec)
	}
	return framed
}

func newOperatorAPI(t *testing.T, streams ...[][]byte) *operatorAPI {
	t.Helper()
	var raw [][]byte
	for _, records := range streams {
		raw = append(raw, frame(records))
	}
	return newRawOperatorAPI(t, "", raw...)
}

func newRawOperatorAPI(t *testing.T, auth string, streams ...[]byte) *operatorAPI {
	t.Helper()
	o := &operatorAPI{auth: auth, streams: streams, requests: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *operatorAPI) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.requests[r.URL.Path]++
	n := o.requests[r.URL.Path]
	o.mu.Unlock()
	if o.auth != "" && r.Header.Get("Authorization") != o.auth {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path != mesosAPIPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	var body bytes.Buffer
	body.ReadFrom(r.Body)
	if body.String() != `{"type":"SUBSCRIBE"}` {
		http.Error(w, "want SUBSCRIBE", http.StatusBadRequest)
		return
	}
	last := n >= len(o.streams)
	stream := o.streams[min(n, len(o.streams))-1]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(stream)
	w.(http.Flusher).Flush()
	if last {
		<-r.Context().Done()
	}
}

func (o *operatorAPI) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[path]
}

// runStream runs c's Mesos stream into a recorder until the test ends.
func runStream(t *testing.T, c *Client) (*MesosStream, *recorder) {
	t.Helper()
	s := c.MesosStream()
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, rec) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, rec
}

// waitChanges waits until the stream applied n changes (s.seq), whose
// updates then were handed to rec.
func waitChanges(t *testing.T, s *MesosStream, _ *recorder, n uint64) {
	t.Helper()
	eventually(t, "every event applied", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.seq >= n
	})
}

// changes counts the events of records that change the mirror.
func changes(t *testing.T, records [][]byte) uint64 {
	n := uint64(0)
	for _, r := range records {
		ev, err := decodeMesosEvent(r)
		if err != nil {
			t.Fatalf("decodeMesosEvent(%.80s): %v", r, err)
		}
		if ev.Type != mesosHeartbeat {
			n++
		}
	}
	return n
}

func appIDs(st discovery.State) []string {
	var ids []string
	for _, a := range st.Apps {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestMesosStreamCaptures runs each real capture through the stream, framed
// as Mesos frames it, in Mesos-only mode: the tasks alive at its end, and
// no /master/state request.
func TestMesosStreamCaptures(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"hello-world.json", nil},
		{"hello-overlay.json", []string{
			"hello-world/hello-host-vip-0-server__2e5e76da-1d8c-4435-b152-70002de6ca9b",
			"hello-world/hello-overlay-0-server__7a7fe08f-7870-4def-a3ac-da5f18377dab",
			"hello-world/hello-overlay-vip-0-server__3b071c4d-ef05-4344-9910-867431def3d7",
			"marathon/hello-world.cea59641-2bea-11e8-93f9-6a3d376ad59c"}},
		{"pod-tasks.json", []string{"marathon/app.instance-caff1565-d0db-11e8-aa23-70b3d5800002.foo"}},
		{"recovered-agents.json", []string{"marathon/web.instance-8b38cc52-c951-11e9-8d5b-70b3d5800001._app.2"}},
		{"operator-api.json", []string{
			"marathon/docker-on-bridge.0ef76549-2630-11e8-af52-70b3d5800001",
			"marathon/docker-on-dcos.0ebe53e8-2630-11e8-af52-70b3d5800001",
			"marathon/docker-on-host.116271db-2630-11e8-af52-70b3d5800001",
			"marathon/docker-on-ipv6.602453f2-28e7-11e8-8cba-70b3d5800001",
			"marathon/none-on-dcos.115c093a-2630-11e8-af52-70b3d5800001",
			"marathon/none-on-host.1458594c-2630-11e8-af52-70b3d5800001",
			"marathon/pod-on-bridge.instance-e9d06dcd-2930-11e8-96bf-70b3d5800001.app",
			"marathon/pod-on-dcos.instance-ea1231be-2930-11e8-96bf-70b3d5800001.app",
			"marathon/pod-on-host.instance-ea1231bf-2930-11e8-96bf-70b3d5800001.app",
			"marathon/ucr-on-bridge.1458805d-2630-11e8-af52-70b3d5800001",
			"marathon/ucr-on-dcos.145ec1ee-2630-11e8-af52-70b3d5800001",
			"marathon/ucr-on-host.1755bacf-2630-11e8-af52-70b3d5800001"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			records := captureRecords(t, tt.file)
			api := newOperatorAPI(t, records)
			c, _, _ := testClient(t, Config{MesosURLs: []string{api.URL}})
			noDNS(c)
			s, rec := runStream(t, c)
			waitChanges(t, s, rec, changes(t, records))
			st, err := s.Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if got := appIDs(st); !slices.Equal(got, tt.want) {
				t.Errorf("apps after %s = %q\nwant %q", tt.file, got, tt.want)
			}
			if n := api.count(mesosStatePath); n != 0 {
				t.Errorf("%d /master/state requests, want none", n)
			}
		})
	}
}

// TestMesosStreamOverlayIP: a task's container IP first appears in its
// TASK_RUNNING update (hello-overlay.json line 10), and its VIP labels stay
// from TASK_ADDED.
func TestMesosStreamOverlayIP(t *testing.T) {
	records := captureRecords(t, "hello-overlay.json")
	api := newOperatorAPI(t, records)
	c, _, _ := testClient(t, Config{MesosURLs: []string{api.URL}})
	noDNS(c)
	_, rec := runStream(t, c)
	running := func(u discovery.Update) bool {
		return u.Kind == discovery.UpdateAppReplace && strings.Contains(u.App.ID, "hello-overlay-vip-0-server") &&
			u.App.Tasks[0].State == discovery.TaskRunning
	}
	us := rec.waitFor(t, "the overlay-vip task running", func(us []discovery.Update) bool { return slices.ContainsFunc(us, running) })
	u := us[slices.IndexFunc(us, running)]
	if ips := u.App.Tasks[0].IPs; len(ips) == 0 || ips[0].String() != "9.0.2.3" {
		t.Errorf("running overlay-vip task IPs = %v, want 9.0.2.3", ips)
	}
	vips := 0
	for _, p := range u.App.Ports {
		for _, l := range p.Labels {
			if strings.HasPrefix(l.Key, "VIP") {
				vips++
			}
		}
	}
	if vips == 0 {
		t.Errorf("running overlay-vip task lost its VIP labels: %+v", u.App.Ports)
	}
}

// TestMesosStreamOneDecoder: the SUBSCRIBED snapshot decodes as the
// GET_STATE poll decodes the same state.
func TestMesosStreamOneDecoder(t *testing.T) {
	for _, file := range []string{"vip-labels.json", "tcp-and-udp.json", "unhealthy.json", "dns-hostname.json"} {
		t.Run(file, func(t *testing.T) {
			getState := bytes.TrimSpace(upstreamtest.File(t, captureDir+file))
			want, _, err := DecodeMesosState(bytes.NewReader(getState), "")
			if err != nil {
				t.Fatalf("DecodeMesosState: %v", err)
			}
			i := bytes.Index(getState, []byte(`"get_state"`))
			if i < 0 {
				t.Fatalf("%s has no get_state", file)
			}
			subscribed := append([]byte(`{"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":15.0,`), getState[i:]...)
			subscribed = append(subscribed, '}')
			api := newOperatorAPI(t, [][]byte{subscribed})
			c, _, _ := testClient(t, Config{MesosURLs: []string{api.URL}})
			noDNS(c)
			s, rec := runStream(t, c)
			waitChanges(t, s, rec, 1)
			got, err := s.Snapshot(context.Background())
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if !slices.Equal(appIDs(got), appIDs(want)) || len(got.Apps) == 0 {
				t.Errorf("stream apps = %q, poll apps = %q", appIDs(got), appIDs(want))
			}
		})
	}
}

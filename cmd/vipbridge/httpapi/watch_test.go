package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// newFeed is NewFeed for tests.
func newFeed(tb testing.TB, cfg FeedConfig) *Feed {
	tb.Helper()
	f, err := NewFeed(cfg)
	if err != nil {
		tb.Fatalf("NewFeed: %v", err)
	}
	return f
}

// stream is one client of GET /v1/watch reading its events.
type stream struct {
	r    *bufio.Reader
	body io.Closer
}

// openWatch starts GET /v1/watch on srv; the stream ends with the test.
func openWatch(t *testing.T, srv *httptest.Server) *stream {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second} // bounds a read that never comes
	resp, err := c.Get(srv.URL + "/v1/watch")
	if err != nil {
		t.Fatalf("GET /v1/watch: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/watch: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &stream{r: bufio.NewReader(resp.Body), body: resp.Body}
}

// next returns the next event's name and data, skipping comments and the
// retry field; "" at the end of the stream.
func (s *stream) next(t *testing.T) (string, []byte) {
	t.Helper()
	var name string
	var data []byte
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if name == "" && (err == io.EOF || strings.Contains(err.Error(), "EOF")) {
				return "", nil
			}
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = []byte(strings.TrimPrefix(line, "data: "))
		}
	}
}

// expect reads the next event, which must be named name, into v.
func (s *stream) expect(t *testing.T, name string, v any) {
	t.Helper()
	got, data := s.next(t)
	if got != name {
		t.Fatalf("event %q (%s), want %q", got, data, name)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", name, err, data)
	}
}

// edited returns t's VIPs with edit applied, as a new table of generation gen.
func edited(t *discovery.Table, gen uint64, edit func([]discovery.VIP) []discovery.VIP) *discovery.Table {
	vips := edit(t.VIPs.Slice())
	next := discovery.NewTable(vips, t.Errors, func(v *discovery.VIP) bool { return v.Ready() })
	next.Generation, next.Built = gen, t.Built.Add(time.Second)
	return next
}

func findVIP(vips []watchVIP, id string) (watchVIP, bool) {
	i := slices.IndexFunc(vips, func(v watchVIP) bool { return v.ID == id })
	if i < 0 {
		return watchVIP{}, false
	}
	return vips[i], true
}

const fooID = "tcp foo.marathon.l4lb.thisdcos.directory:80"

func TestWatchSnapshotThenDeltas(t *testing.T) {
	tables := &fakeTables{t: testTable(t), st: discovery.Status{Loaded: true, Synced: true, LastSync: map[string]time.Time{"marathon": built}}}
	feed := newFeed(t, FeedConfig{Tables: tables})
	feed.step(built)
	srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
	s := openWatch(t, srv)

	var snap watchSnapshot
	s.expect(t, "snapshot", &snap)
	if len(snap.VIPs) != tables.t.VIPs.Len() || snap.Generation != 7 || snap.Zone != DefaultZone || snap.Dataplane {
		t.Errorf("snapshot: %d VIPs, generation %d, zone %q, dataplane %v; want %d, 7, %q, false",
			len(snap.VIPs), snap.Generation, snap.Zone, snap.Dataplane, tables.t.VIPs.Len(), DefaultZone)
	}
	foo, ok := findVIP(snap.VIPs, fooID)
	if !ok || len(foo.Backends) != 3 || foo.Announced == nil || !*foo.Announced {
		t.Fatalf("snapshot's %s = %+v, want 3 backends, announced", fooID, foo)
	}
	if b := foo.Backends[2]; b.TaskID != "foo.t3" || b.Weight != 0 || b.Health != "killing" || b.AppID != "/foo" {
		t.Errorf("killing task's backend = %+v, want foo.t3 weight 0 killing", b)
	}
	if len(snap.Errors) != 1 || snap.Errors[0].Key != "VIP_1" {
		t.Errorf("snapshot errors = %+v, want the VIP_1 label error", snap.Errors)
	}
	if len(snap.Status.Sources) != 1 || snap.Status.Sources[0].Name != "marathon" || snap.Status.Sources[0].Stale {
		t.Errorf("snapshot sources = %+v, want marathon fresh", snap.Status.Sources)
	}
	if len(snap.Changes) != 1 || snap.Changes[0].Kind != changeLoaded {
		t.Errorf("snapshot changes = %+v, want one %q", snap.Changes, changeLoaded)
	}

	t.Run("a drained backend and a VIP gone", func(t *testing.T) {
		tables.mu.Lock()
		tables.t = edited(tables.t, 8, func(vips []discovery.VIP) []discovery.VIP {
			for i := range vips {
				if vips[i].Key.Name == "foo.marathon" {
					vips[i].Backends = slices.Clone(vips[i].Backends)
					vips[i].Backends[0].Weight = 0
				}
			}
			return slices.DeleteFunc(vips, func(v discovery.VIP) bool { return v.Key.IP == netip.MustParseAddr("10.10.0.1") })
		})
		tables.mu.Unlock()
		feed.step(built.Add(time.Second))
		var d watchDelta
		s.expect(t, "delta", &d)
		if d.Generation != 8 || len(d.Upserts) != 1 || d.Upserts[0].ID != fooID || d.Upserts[0].Backends[0].Weight != 0 {
			t.Errorf("delta generation %d upserts %+v, want 8 and %s with its first backend at weight 0", d.Generation, d.Upserts, fooID)
		}
		if !slices.Equal(d.Removes, []string{"tcp 10.10.0.1:5000"}) || d.Errors != nil || d.Status != nil {
			t.Errorf("delta removes %q errors %v status %v, want the IP VIP only", d.Removes, d.Errors, d.Status)
		}
		var kinds []string
		for _, c := range d.Changes {
			kinds = append(kinds, c.Kind+" "+c.VIP+" "+c.Detail)
		}
		want := []string{"removed 10.10.0.1:5000 had 1 backends", "changed foo.marathon.l4lb.thisdcos.directory:80 10.0.0.1:31000 w=1 → 0"}
		if !slices.Equal(kinds, want) {
			t.Errorf("delta changes = %q, want %q", kinds, want)
		}
	})

	t.Run("a stale source", func(t *testing.T) {
		tables.setStatus(discovery.Status{Loaded: true, Synced: true, Stale: true, StaleSources: []string{"marathon"},
			LastSync: map[string]time.Time{"marathon": built}, LastError: map[string]string{"marathon": "get http://user:secret@m/v2/apps: refused"}})
		feed.step(built.Add(2 * time.Second))
		var d watchDelta
		s.expect(t, "delta", &d)
		if d.Status == nil || !d.Status.Stale || len(d.Status.Sources) != 1 || !d.Status.Sources[0].Stale {
			t.Fatalf("delta status = %+v, want marathon stale", d.Status)
		}
		if e := d.Status.Sources[0].LastError; strings.Contains(e, "secret") || !strings.Contains(e, "refused") {
			t.Errorf("last error = %q, want it without credentials", e)
		}
		if len(d.Upserts)+len(d.Removes)+len(d.Changes) != 0 {
			t.Errorf("status-only delta carries VIPs: %+v", d)
		}
	})

	t.Run("nothing new sends nothing", func(t *testing.T) {
		feed.step(built.Add(3 * time.Second))
		feed.mu.Lock()
		for c := range feed.clients {
			if n := len(c.events); n != 0 {
				t.Errorf("%d events queued after a step with no change", n)
			}
		}
		feed.mu.Unlock()
	})
}

func TestWatchDataplane(t *testing.T) {
	tables := &fakeTables{t: testTable(t), st: discovery.Status{Loaded: true}}
	dp := fakeDataplane{}
	feed := newFeed(t, FeedConfig{Tables: tables, Dataplane: dp})
	feed.step(built)
	srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
	s := openWatch(t, srv)
	var snap watchSnapshot
	s.expect(t, "snapshot", &snap)
	foo, _ := findVIP(snap.VIPs, fooID)
	if !snap.Dataplane || foo.Dataplane == nil || foo.Dataplane.Status != lb.StatusPending {
		t.Fatalf("snapshot dataplane %v, %s = %+v, want pending", snap.Dataplane, fooID, foo.Dataplane)
	}

	key := discovery.VIPKey{Protocol: discovery.TCP, Name: "foo.marathon", Port: 80}
	dp[key] = []lb.ServiceState{{Protocol: discovery.TCP, Status: lb.StatusProgrammed}}
	feed.step(built.Add(time.Second))
	var d watchDelta
	s.expect(t, "delta", &d)
	if len(d.Upserts) != 1 || d.Upserts[0].ID != fooID || d.Upserts[0].Dataplane.Status != lb.StatusProgrammed {
		t.Errorf("delta upserts = %+v, want %s programmed", d.Upserts, fooID)
	}
	if len(d.Changes) != 1 || d.Changes[0].Kind != changeDataplane || d.Changes[0].Detail != "pending → programmed" {
		t.Errorf("delta changes = %+v, want one dataplane change pending → programmed", d.Changes)
	}
}

func TestWatchDropsSlowClient(t *testing.T) {
	first := testTable(t)
	second := edited(first, 8, func(v []discovery.VIP) []discovery.VIP { return v[1:] })
	tables := &fakeTables{t: first}
	feed := newFeed(t, FeedConfig{Tables: tables, ClientQueue: 2})
	feed.step(built)
	c, _, _, err := feed.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	// The client reads nothing: two events fill its queue, the third
	// drops it, and the feed goes on.
	for i := range 50 {
		tables.mu.Lock()
		tables.t = [2]*discovery.Table{second, first}[i%2]
		tables.mu.Unlock()
		feed.step(built.Add(time.Duration(i) * time.Second))
	}
	select {
	case <-c.dropped:
	default:
		t.Fatal("a client that reads nothing was not dropped")
	}
	if n := len(c.events); n != 2 {
		t.Errorf("dropped client has %d events queued, want its queue of 2", n)
	}
	if got := testutil.ToFloat64(feed.dropped); got != 1 {
		t.Errorf("dropped counter = %v, want 1", got)
	}
	if got := testutil.ToFloat64(feed.clientsG); got != 0 {
		t.Errorf("clients gauge = %v, want 0", got)
	}
	feed.unsubscribe(c) // as the handler does: nothing left to forget
	if got := testutil.ToFloat64(feed.clientsG); got != 0 {
		t.Errorf("clients gauge after unsubscribe = %v, want 0", got)
	}
}

func TestWatchTellsDroppedClient(t *testing.T) {
	tables := &fakeTables{t: testTable(t)}
	feed := newFeed(t, FeedConfig{Tables: tables})
	srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
	s := openWatch(t, srv)
	var snap watchSnapshot
	s.expect(t, "snapshot", &snap)
	feed.mu.Lock()
	for c := range feed.clients {
		feed.drop(c)
	}
	feed.mu.Unlock()
	if name, data := s.next(t); name != "dropped" {
		t.Fatalf("event %q %s, want dropped", name, data)
	}
	if name, _ := s.next(t); name != "" {
		t.Errorf("event %q after dropped, want the end of the stream", name)
	}
}

func TestWatchEndsWithTheFeed(t *testing.T) {
	tables := &fakeTables{t: testTable(t)}
	feed := newFeed(t, FeedConfig{Tables: tables, Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- feed.Run(ctx) }()
	srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
	s := openWatch(t, srv)
	var snap watchSnapshot
	s.expect(t, "snapshot", &snap)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	for {
		name, _ := s.next(t)
		if name == "closed" {
			break
		}
		if name == "" {
			t.Fatal("stream ended without the closed event")
		}
	}
}

func TestWatchLimits(t *testing.T) {
	t.Run("no feed", func(t *testing.T) {
		srv, _ := newTestServer(t, Config{})
		if resp, body := do(t, srv, "GET", "/v1/watch"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /v1/watch without a feed = %s %s, want 404", resp.Status, body)
		}
	})
	t.Run("too many clients", func(t *testing.T) {
		tables := &fakeTables{t: testTable(t)}
		feed := newFeed(t, FeedConfig{Tables: tables, MaxClients: 1})
		srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
		s := openWatch(t, srv)
		var snap watchSnapshot
		s.expect(t, "snapshot", &snap)
		resp, body := do(t, srv, "GET", "/v1/watch")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("second client = %s %s, want 503 with Retry-After", resp.Status, body)
		}
	})
	t.Run("head", func(t *testing.T) {
		tables := &fakeTables{t: testTable(t)}
		srv, _ := newTestServer(t, Config{Tables: tables, Feed: newFeed(t, FeedConfig{Tables: tables})})
		resp, _ := do(t, srv, "HEAD", "/v1/watch")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("HEAD /v1/watch = %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
	})
}

// TestWatchDropsSlowClientOverTCP has a real client stop reading: the
// socket buffers fill, the handler blocks in a write, its queue fills, and
// the feed drops it without waiting. Read again, the stream ends with
// "dropped".
func TestWatchDropsSlowClientOverTCP(t *testing.T) {
	const n = 2000 // VIPs, all changing at every step: deltas of ~0.5 MB
	vips := make([]discovery.VIP, n)
	for i := range vips {
		vips[i] = vipOf(fmt.Sprintf("app-%04d.marathon", i), 80, "10.0.0.1:31000/1", "10.0.0.2:31000/1")
	}
	up := tableOf(vips...)
	down := edited(up, 2, func(vs []discovery.VIP) []discovery.VIP {
		for i := range vs {
			vs[i].Backends = slices.Clone(vs[i].Backends)
			vs[i].Backends[0].Weight = 0
		}
		return vs
	})
	tables := &fakeTables{t: up}
	feed := newFeed(t, FeedConfig{Tables: tables, ClientQueue: 2})
	feed.step(built)
	srv, _ := newTestServer(t, Config{Tables: tables, Feed: feed})
	s := openWatch(t, srv) // reads nothing until the feed has dropped it
	steps := 0
	for ; testutil.ToFloat64(feed.dropped) == 0; steps++ {
		if steps == 500 {
			t.Fatal("500 deltas of 0.5 MB and the client that reads nothing is not dropped")
		}
		tables.mu.Lock()
		tables.t = [2]*discovery.Table{down, up}[steps%2]
		tables.mu.Unlock()
		feed.step(built.Add(time.Duration(steps) * time.Second))
	}
	t.Logf("dropped after %d deltas", steps)
	last := ""
	for {
		name, _ := s.next(t)
		if name == "" {
			break
		}
		last = name
	}
	if last != "dropped" {
		t.Errorf("stream ended with %q, want dropped", last)
	}
}

func TestFeedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	tables := &fakeTables{t: testTable(t)}
	newFeed(t, FeedConfig{Tables: tables, Registerer: reg})
	if n, err := testutil.GatherAndCount(reg, "vipbridge_http_watch_clients", "vipbridge_http_watch_dropped_total"); err != nil || n != 2 {
		t.Errorf("gathered %d watch metrics (%v), want 2", n, err)
	}
	if _, err := NewFeed(FeedConfig{Tables: tables, Registerer: reg}); err == nil {
		t.Error("a second feed on the same registry registered its metrics again")
	}
}

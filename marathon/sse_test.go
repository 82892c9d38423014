package marathon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// testWait only guards against hangs; no test asserts how fast anything is.
const testWait = 30 * time.Second

// recorder is a Sink that keeps every update and wakes waiters.
type recorder struct {
	mu      sync.Mutex
	updates []discovery.Update
	wake    chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) Update(u discovery.Update) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []discovery.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.updates)
}

// waitFor waits until pred holds for the updates so far.
func (r *recorder) waitFor(t *testing.T, what string, pred func([]discovery.Update) bool) []discovery.Update {
	t.Helper()
	guard := time.NewTimer(testWait)
	defer guard.Stop()
	for {
		if us := r.all(); pred(us) {
			return us
		}
		select {
		case <-r.wake:
		case <-guard.C:
			t.Fatalf("no %s; updates: %s", what, describe(r.all()))
		}
	}
}

// resyncs counts UpdateResync updates with the given reason.
func resyncs(us []discovery.Update, reason string) int {
	n := 0
	for _, u := range us {
		if u.Kind == discovery.UpdateResync && u.Reason == reason {
			n++
		}
	}
	return n
}

func atLeast(reason string, n int) func([]discovery.Update) bool {
	return func(us []discovery.Update) bool { return resyncs(us, reason) >= n }
}

func describe(us []discovery.Update) string {
	var b strings.Builder
	for _, u := range us {
		fmt.Fprintf(&b, "\n  kind=%d app=%q task=%q reason=%q", u.Kind, u.AppID, u.TaskID, u.Reason)
	}
	return b.String()
}

// testClient builds a Client with a recorder sink, a fresh registry, small
// backoffs and a logger into the test log.
func testClient(t *testing.T, cfg Config) (*Client, *recorder, *prometheus.Registry) {
	t.Helper()
	rec := newRecorder()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec, reg
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// run starts s.Run and stops it (and checks it returned nil) at cleanup,
// before any server registered earlier is closed.
func run(t *testing.T, s *Stream) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	})
}

// metric returns the value of a counter or gauge with exactly the given
// labels, 0 if absent.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, kv []string) bool {
	if len(m.GetLabel())*2 != len(kv) {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// crlf converts LF line ends to CRLF, as Jetty's EventSourceServlet writes
// them.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// streamServer plays Marathon's /v2/events with the upstream wire shape:
// HTTP/1.1 200, Content-Type text/event-stream, Connection: close and no
// chunking (the body ends when the connection closes). script writes the
// body of the n-th connection (from 1); when it returns the connection is
// closed. Requests are recorded.
type streamServer struct {
	*httptest.Server
	conns atomic.Int32
	mu    sync.Mutex
	reqs  []*http.Request
}

func newStreamServer(t *testing.T, script func(n int, w *bufio.Writer, conn net.Conn)) *streamServer {
	t.Helper()
	s := &streamServer{}
	s.Server = httptest.NewServer(s.handler(t, script))
	t.Cleanup(s.Close)
	return s
}

func (s *streamServer) handler(t *testing.T, script func(n int, w *bufio.Writer, conn net.Conn)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.conns.Add(1))
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream;charset=utf-8\r\nConnection: close\r\n\r\n")
		buf.Flush()
		script(n, buf.Writer, conn)
		buf.Flush()
	})
}

func (s *streamServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// holdOpen keeps a hijacked connection open until the client closes it.
func holdOpen(conn net.Conn) { io.Copy(io.Discard, conn) }

func write(w *bufio.Writer, s string) {
	w.WriteString(s)
	w.Flush()
}

// upstreamEvents is Marathon's events.txt capture in its wire form.
func upstreamEvents(t *testing.T) string {
	return crlf(string(upstreamtest.File(t, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt")))
}

// wantUpdates decodes every event of an SSE transcript the way the client
// should, for comparison.
func wantUpdates(t *testing.T, transcript string) []discovery.Update {
	t.Helper()
	var out []discovery.Update
	for _, block := range strings.Split(transcript, "\r\n\r\n") {
		var typ, data string
		for _, line := range strings.Split(block, "\r\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if typ == "" {
			continue
		}
		us, err := DecodeEvent(typ, []byte(data), nil)
		if err != nil {
			t.Fatalf("DecodeEvent(%s): %v", typ, err)
		}
		out = append(out, us...)
	}
	return out
}

// nonResync drops UpdateResync and zeroes Received, for comparisons.
func nonResync(us []discovery.Update) []discovery.Update {
	var out []discovery.Update
	for _, u := range us {
		if u.Kind != discovery.UpdateResync {
			u.Received = time.Time{}
			out = append(out, u)
		}
	}
	return out
}

func TestStreamUpstreamFraming(t *testing.T) {
	events := upstreamEvents(t)
	srv := newStreamServer(t, func(_ int, w *bufio.Writer, conn net.Conn) {
		write(w, "\r\n") // a heartbeat before anything
		for i, block := range strings.SplitAfter(events, "\r\n\r\n") {
			write(w, block)
			if i%2 == 0 {
				write(w, "\r\n") // heartbeats between events
			}
		}
		holdOpen(conn)
	})
	c, rec, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}})
	run(t, c.Stream(rec))

	want := wantUpdates(t, events)
	us := rec.waitFor(t, "updates of events.txt", func(us []discovery.Update) bool {
		return len(nonResync(us)) >= len(want)
	})
	if us[0].Kind != discovery.UpdateResync || us[0].Reason != "connect" {
		t.Errorf("first update = kind %d reason %q, want UpdateResync \"connect\"", us[0].Kind, us[0].Reason)
	}
	for _, u := range us {
		if u.Received.IsZero() {
			t.Errorf("update %+v has no Received time", u)
		}
	}
	if got := nonResync(us); !equalUpdates(got, want) {
		t.Errorf("updates:%s\nwant:%s", describe(got), describe(want))
	}
	if got := metric(t, reg, "vipbridge_marathon_events_total", "type", "status_update_event", "result", "ok"); got != 2 {
		t.Errorf("status_update_event ok = %v, want 2", got)
	}
	if got := metric(t, reg, "vipbridge_marathon_stream_connected"); got != 1 {
		t.Errorf("stream_connected = %v, want 1", got)
	}

	r := srv.requests()[0]
	if r.URL.Path != "/v2/events" {
		t.Errorf("path = %q, want /v2/events", r.URL.Path)
	}
	if got := r.Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("Accept = %q, want text/event-stream", got)
	}
	q := r.URL.Query()
	if got := q["event_type"]; !slices.Equal(got, eventTypes) {
		t.Errorf("event_type = %v, want %v", got, eventTypes)
	}
	if got := q.Get("plan-format"); got != "light" {
		t.Errorf("plan-format = %q, want light", got)
	}
	if q.Has("stream") {
		t.Errorf("query has r3labs' stream parameter: %s", r.URL.RawQuery)
	}
}

func equalUpdates(a, b []discovery.Update) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func TestStreamReconnects(t *testing.T) {
	tests := []struct {
		name   string
		script func(n int, w *bufio.Writer, conn net.Conn)
		// check runs once two "connect" resyncs were seen.
		check func(t *testing.T, us []discovery.Update, reg *prometheus.Registry)
	}{
		{
			name: "server closes the stream",
			script: func(_ int, w *bufio.Writer, _ net.Conn) {
				write(w, "event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\",\"eventType\":\"event_stream_attached\",\"timestamp\":\"2015-09-30T12:44:30.061Z\"}\r\n\r\n")
			},
			check: func(t *testing.T, _ []discovery.Update, reg *prometheus.Registry) {
				if got := metric(t, reg, "vipbridge_marathon_reconnects_total", "reason", reasonClosed); got < 1 {
					t.Errorf("reconnects{closed} = %v, want ≥ 1", got)
				}
			},
		},
		{
			name: "malformed then cut event",
			script: func(_ int, w *bufio.Writer, _ net.Conn) {
				write(w, "event: status_update_event\r\ndata: {not json\r\n\r\n")
				write(w, "\x00\xff garbage without framing\r\n")
				write(w, "event: status_update_event\r\ndata: {\"taskId\":\"t1\",\"appId\":")
			},
			check: func(t *testing.T, us []discovery.Update, reg *prometheus.Registry) {
				if got := metric(t, reg, "vipbridge_marathon_events_total", "type", "status_update_event", "result", "error"); got < 1 {
					t.Errorf("events{status_update_event,error} = %v, want ≥ 1", got)
				}
				if resyncs(us, "malformed event") < 1 {
					t.Errorf("no malformed-event resync in%s", describe(us))
				}
			},
		},
		{
			name: "unknown event type",
			script: func(_ int, w *bufio.Writer, _ net.Conn) {
				write(w, "event: brand_new_event\r\ndata: {\"eventType\":\"brand_new_event\"}\r\n\r\n")
			},
			check: func(t *testing.T, _ []discovery.Update, reg *prometheus.Registry) {
				if got := metric(t, reg, "vipbridge_marathon_events_total", "type", otherEventType, "result", "unknown"); got < 1 {
					t.Errorf("events{other,unknown} = %v, want ≥ 1", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStreamServer(t, tt.script)
			c, rec, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}})
			run(t, c.Stream(rec))
			us := rec.waitFor(t, "second connect", atLeast("connect", 2))
			tt.check(t, us, reg)
		})
	}
}

func TestStreamIdleWatchdog(t *testing.T) {
	tests := []struct {
		name   string
		script func(n int, w *bufio.Writer, conn net.Conn)
	}{
		{
			name: "silent after an event",
			script: func(_ int, w *bufio.Writer, conn net.Conn) {
				write(w, "event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\"}\r\n\r\n")
				holdOpen(conn)
			},
		},
		{
			name: "silent after the headers",
			script: func(_ int, _ *bufio.Writer, conn net.Conn) {
				holdOpen(conn)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newStreamServer(t, tt.script)
			c, rec, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}, IdleTimeout: 200 * time.Millisecond})
			run(t, c.Stream(rec))
			rec.waitFor(t, "reconnect after idle", atLeast("connect", 2))
			if got := metric(t, reg, "vipbridge_marathon_reconnects_total", "reason", reasonIdle); got < 1 {
				t.Errorf("reconnects{idle} = %v, want ≥ 1", got)
			}
		})
	}
}

// TestStreamIdleBeforeHeaders covers a server that accepts the request but
// never answers: the watchdog also bounds the wait for response headers.
func TestStreamIdleBeforeHeaders(t *testing.T) {
	var attempts atomic.Int32
	again := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) >= 2 {
			select {
			case again <- struct{}{}:
			default:
			}
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c, rec, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}, IdleTimeout: 200 * time.Millisecond})
	run(t, c.Stream(rec))
	select {
	case <-again:
	case <-time.After(testWait):
		t.Fatalf("no second attempt after a silent server")
	}
	if got := metric(t, reg, "vipbridge_marathon_reconnects_total", "reason", reasonIdle); got < 1 {
		t.Errorf("reconnects{idle} = %v, want ≥ 1", got)
	}
}

func TestStreamOversizedEvent(t *testing.T) {
	const max = 1024
	fits := "event: api_post_event\r\ndata: {\"pad\":\"" + strings.Repeat("x", max-40) + "\"}"
	if len(fits) > max {
		t.Fatalf("test event is %d bytes, want ≤ %d", len(fits), max)
	}
	huge := "event: status_update_event\r\ndata: {\"pad\":\"" + strings.Repeat("y", 4*max) + "\"}\r\n\r\n"
	srv := newStreamServer(t, func(n int, w *bufio.Writer, conn net.Conn) {
		if n == 1 {
			write(w, "event: event_stream_attached\r\ndata: {}\r\n\r\n")
			write(w, fits+"\r\n\r\n")
			write(w, huge)
		}
		holdOpen(conn)
	})
	c, rec, reg := testClient(t, Config{MarathonURLs: []string{srv.URL}, MaxEventSize: max})
	run(t, c.Stream(rec))
	us := rec.waitFor(t, "resync after oversized event", func(us []discovery.Update) bool {
		return resyncs(us, "oversized event") >= 1 && resyncs(us, "connect") >= 2
	})
	if got := metric(t, reg, "vipbridge_marathon_oversized_events_total"); got != 1 {
		t.Errorf("oversized_events_total = %v, want 1", got)
	}
	if got := metric(t, reg, "vipbridge_marathon_reconnects_total", "reason", reasonOversized); got != 1 {
		t.Errorf("reconnects{oversized} = %v, want 1", got)
	}
	// The event at the limit went through (as a malformed api_post_event:
	// what matters is that the reader handed it over).
	if got := metric(t, reg, "vipbridge_marathon_events_total", "type", "api_post_event", "result", "error") +
		metric(t, reg, "vipbridge_marathon_events_total", "type", "api_post_event", "result", "ok"); got != 1 {
		t.Errorf("api_post_event at the size limit counted %v times, want 1; updates:%s", got, describe(us))
	}
}

func TestStreamRedirectFromNonLeader(t *testing.T) {
	events := upstreamEvents(t)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			leader := newStreamServer(t, func(_ int, w *bufio.Writer, conn net.Conn) {
				write(w, events)
				holdOpen(conn)
			})
			standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, leader.URL+r.URL.RequestURI(), code)
			}))
			t.Cleanup(standby.Close)
			c, rec, _ := testClient(t, Config{MarathonURLs: []string{standby.URL}})
			run(t, c.Stream(rec))
			want := wantUpdates(t, events)
			rec.waitFor(t, "events via the leader", func(us []discovery.Update) bool {
				return resyncs(us, "connect") >= 1 && len(nonResync(us)) >= len(want)
			})
			if got := leader.requests()[0].URL.Query()["event_type"]; !slices.Equal(got, eventTypes) {
				t.Errorf("leader saw event_type = %v, want %v", got, eventTypes)
			}
		})
	}
}

func TestStreamMultipleURLs(t *testing.T) {
	tests := []struct {
		name  string
		first func(t *testing.T) string
	}{
		{
			name: "first refuses connections",
			first: func(t *testing.T) string {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := l.Addr().String()
				l.Close()
				return "http://" + addr
			},
		},
		{
			name: "first answers 502",
			first: func(t *testing.T) string {
				s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "no leader", http.StatusBadGateway)
				}))
				t.Cleanup(s.Close)
				return s.URL
			},
		},
		{
			name: "first is a standby that closes at once",
			first: func(t *testing.T) string {
				return newStreamServer(t, func(int, *bufio.Writer, net.Conn) {}).URL
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := tt.first(t)
			good := newStreamServer(t, func(_ int, w *bufio.Writer, conn net.Conn) {
				write(w, "event: app_terminated_event\r\ndata: {\"appId\":\"/foo\",\"eventType\":\"app_terminated_event\",\"timestamp\":\"2015-09-30T12:44:30.061Z\"}\r\n\r\n")
				holdOpen(conn)
			})
			c, rec, _ := testClient(t, Config{MarathonURLs: []string{first, good.URL}})
			run(t, c.Stream(rec))
			rec.waitFor(t, "event from the second URL", func(us []discovery.Update) bool {
				return slices.ContainsFunc(us, func(u discovery.Update) bool {
					return u.Kind == discovery.UpdateAppRemoved && u.AppID == "/foo"
				})
			})
		})
	}
}

func TestRunWithoutSink(t *testing.T) {
	c, err := New(Config{MarathonURLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(nil).Run(context.Background()); err == nil {
		t.Errorf("Run without Sink = nil, want an error")
	}
}

func TestWatchdogKicksKeepItAlive(t *testing.T) {
	var fired atomic.Bool
	w := newWatchdog(time.Hour, func() { fired.Store(true) })
	w.kick()
	w.check() // as if the timer had run: nothing is idle for an hour
	if fired.Load() {
		t.Errorf("watchdog fired although kicked")
	}
	if w.stop() {
		t.Errorf("stop() = true, want false")
	}
	w.check() // after stop: no effect
	if fired.Load() {
		t.Errorf("watchdog fired after stop")
	}
}

// TestStreamAgainstSimulator runs the client against marathontest's
// simulated Marathon and Mesos: snapshots, events after a scale-up, and a
// Marathon leader change (streams closed, the old node redirecting
// /v2/events to the new leader).
func TestStreamAgainstSimulator(t *testing.T) {
	sc, err := marathontest.LoadScenario("small")
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc, marathontest.WithHeartbeat(50*time.Millisecond))
	t.Cleanup(sim.Close)
	c, rec, _ := testClient(t, Config{
		MarathonURLs: []string{sim.URL()},
		MesosURLs:    []string{sim.MesosURL()},
		IdleTimeout:  5 * time.Second,
	})
	noDNS(c)
	if _, err := c.Mesos().Snapshot(context.Background()); err != nil {
		t.Fatalf("Mesos Snapshot: %v", err)
	}
	st, err := c.Marathon().Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Marathon Snapshot: %v", err)
	}
	if len(st.Apps) != len(sc.Apps) {
		t.Errorf("Marathon Snapshot has %d apps, want %d", len(st.Apps), len(sc.Apps))
	}
	run(t, c.Stream(rec))
	rec.waitFor(t, "connect", atLeast("connect", 1))

	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatalf("ScaleApp: %v", err)
	}
	rec.waitFor(t, "task update of /web", func(us []discovery.Update) bool {
		return slices.ContainsFunc(us, func(u discovery.Update) bool {
			return u.Kind == discovery.UpdateTask && u.AppID == "/web"
		})
	})

	if _, err := sim.ChangeLeader(); err != nil {
		t.Fatalf("ChangeLeader: %v", err)
	}
	rec.waitFor(t, "reconnect to the new leader", atLeast("connect", 2))
}

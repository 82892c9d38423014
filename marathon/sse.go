package marathon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/vipbridge/vipbridge/discovery"
)

// eventTypes are the Marathon events subscribed to with repeated
// event_type query parameters (UPSTREAM.md §4.1, since Marathon 1.3.7);
// each either changes the model or asks for a resync. event_stream_attached
// is kept so that a healthy stream always delivers at least one event.
var eventTypes = []string{
	"status_update_event",
	"instance_changed_event",
	"instance_health_changed_event",
	"health_status_changed_event",
	"app_terminated_event",
	"api_post_event",
	"deployment_success",
	"deployment_failed",
	"pod_created_event",
	"pod_updated_event",
	"pod_deleted_event",
	"event_stream_attached",
}

func knownEventType(t string) bool { return slices.Contains(eventTypes, t) }

// frameSlack is what the SSE scanner buffer holds beyond MaxEventSize: the
// blank line ending an event and bare-CRLF heartbeats before it.
const frameSlack = 64

// Reasons a stream attempt ended, the "reason" label of
// vipbridge_marathon_reconnects_total and the Reason of the UpdateResync
// sent for an oversized event.
const (
	reasonConnect   = "connect"   // no stream: connection, status or redirect error
	reasonClosed    = "closed"    // the server ended the stream
	reasonIdle      = "idle"      // nothing read for IdleTimeout
	reasonOversized = "oversized" // an event exceeded MaxEventSize
	reasonError     = "error"     // another read error

	resyncConnect   = discovery.ResyncConnect
	resyncOversized = "oversized event"
	resyncMalformed = "malformed event"
)

// errIdleTimeout ends a stream (or a connection attempt) on which nothing
// arrived for IdleTimeout.
var errIdleTimeout = errors.New("event stream idle timeout")

// eventsURL is base's /v2/events with the event filter and light plans.
// r3labs/sse adds a "stream" parameter only for a non-empty stream name;
// Run subscribes with the raw (empty) stream so the URL is sent as built.
func eventsURL(base string) string {
	q := url.Values{}
	for _, t := range eventTypes {
		q.Add("event_type", t)
	}
	q.Set("plan-format", "light")
	return base + "/v2/events?" + q.Encode()
}

// Sink receives the event stream's updates: decoded events, and an
// UpdateResync after every (re)connect and whenever events may have been
// lost. Update is called from Stream.Run's goroutine and from the pod
// fetcher Run owns (podsync.go), and must not block for long.
// *discovery.Reconciler satisfies it.
type Sink interface{ Update(discovery.Update) }

// Stream is Marathon's event stream of a Client, feeding a Sink.
type Stream struct {
	c    *Client
	sink Sink
}

// Stream returns c's event stream feeding sink; Stream.Run runs it.
func (c *Client) Stream(sink Sink) *Stream { return &Stream{c: c, sink: sink} }

// Run keeps Marathon's event stream open and feeds the sink until ctx
// ends, then returns nil. It never gives up: after a failed or ended
// stream it waits a jittered, capped backoff and connects again, staying
// on a Marathon URL while it works and moving to the next one when it does
// not. Every successful connect sends an UpdateResync (reason "connect"),
// since Marathon has no replay (UPSTREAM.md §4.4).
//
// The framing of events is r3labs/sse's (its EventStreamReader via
// Client.SubscribeRawWithContext), one attempt per call: r3labs' own retry
// loop cannot rotate URLs, treats a server-side close as success and stops
// retrying after 15 minutes, so it is given backoff.StopBackOff and Run
// loops instead. r3labs has no idle timeout; the watchdog sits in the
// stream's http.Client transport (idleTransport).
func (st *Stream) Run(ctx context.Context) error {
	if st.sink == nil {
		return errors.New("run event stream: no sink configured")
	}
	c, sink := st.c, st.sink
	var pods sync.WaitGroup
	defer pods.Wait()
	pods.Go(func() { c.followPods(ctx, sink) })
	bo := newRetryBackoff(c.backoff)
	k := 0
	for {
		base := c.marathonURLs[k]
		s := c.session(ctx, base, sink)
		if ctx.Err() != nil {
			return nil
		}
		c.metrics.reconnects.WithLabelValues(s.reason).Inc()
		if s.good(c.idle) {
			bo.Reset()
		} else {
			k = (k + 1) % len(c.marathonURLs)
		}
		delay := bo.NextBackOff()
		c.log.Warn("event stream ended", "url", base, "reason", s.reason, "events", s.events, "err", s.err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is the outcome of one stream attempt.
type session struct {
	connected bool
	events    int
	lived     time.Duration
	reason    string
	err       error
}

// good reports whether the stream worked: it delivered an event (Marathon
// sends event_stream_attached first) or stayed open for a while. A standby
// Marathon accepts and closes at once, which is not good: Run then moves
// to the next URL.
func (s session) good(idle time.Duration) bool {
	return s.connected && (s.events > 0 || s.lived >= idle)
}

// session runs one attempt against base, feeding sink, until the stream
// ends.
func (c *Client) session(ctx context.Context, base string, sink Sink) (s session) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := sse.NewClient(eventsURL(base), sse.ClientMaxBufferSize(c.maxEvent+frameSlack))
	sc.Connection = c.stream
	sc.ReconnectStrategy = &backoff.StopBackOff{}
	var t0 time.Time
	sc.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		if err := checkStream(resp); err != nil {
			resp.Body.Close()
			return err
		}
		s.connected, t0 = true, time.Now()
		c.metrics.connected.Set(1)
		where := *resp.Request.URL // after redirects: the leader
		where.RawQuery = ""
		c.log.Info("event stream connected", "url", redactURL(&where))
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Reason: resyncConnect, Received: t0})
		return nil
	}
	s.err = sc.SubscribeRawWithContext(ctx, func(ev *sse.Event) {
		s.events++
		c.handle(ctx, ev, sink)
	})
	if s.connected {
		c.metrics.connected.Set(0)
		s.lived = time.Since(t0)
	}
	s.reason = classify(s)
	if s.reason == reasonOversized {
		c.metrics.oversized.Inc()
		c.log.Warn("oversized event, resyncing", "max_bytes", c.maxEvent)
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Reason: resyncOversized, Received: time.Now()})
	}
	return s
}

// classify names why a session ended. r3labs returns nil when the server
// closed the stream, and the scanner's bufio.ErrTooLong for an event that
// does not fit its buffer.
func classify(s session) string {
	switch {
	case errors.Is(s.err, bufio.ErrTooLong):
		return reasonOversized
	case errors.Is(s.err, errIdleTimeout):
		return reasonIdle
	case !s.connected:
		return reasonConnect
	case s.err == nil:
		return reasonClosed
	}
	return reasonError
}

// checkStream accepts a 200 response whose Content-Type, if any, is
// text/event-stream.
func checkStream(resp *http.Response) error {
	where := redactURL(resp.Request.URL)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", where, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/event-stream" {
			return fmt.Errorf("GET %s: content type %q, want text/event-stream", where, ct)
		}
	}
	return nil
}

// handle decodes one event and sends its updates to sink. Malformed
// events are counted, logged and answered with a resync (an update was
// lost); unknown types are counted. Neither ends the stream.
func (c *Client) handle(ctx context.Context, ev *sse.Event, sink Sink) {
	received := time.Now()
	if ctx.Err() != nil {
		return // a partial event flushed while shutting down
	}
	// An event without "event:" line gets "" here; DecodeEvent then reads
	// the type from the data's eventType field.
	typ := string(ev.Event)
	updates, err := DecodeEvent(typ, ev.Data, c.resolver.bind(ctx))
	switch {
	case errors.Is(err, ErrUnknownEvent):
		c.metrics.event(typ, resultUnknown)
		c.log.Debug("unknown event type", "type", typ)
		return
	case err != nil:
		c.metrics.event(typ, resultError)
		c.log.Warn("malformed event, resyncing", "type", typ, "bytes", len(ev.Data), "err", err)
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Reason: resyncMalformed, Received: received})
		return
	}
	c.metrics.event(typ, resultOK)
	c.log.Debug("event", "type", typ, "updates", len(updates))
	updates = c.pods.route(typ, ev.Data, updates, received)
	fw := c.framework()
	for _, u := range updates {
		if u.Received.IsZero() {
			u.Received = received
		}
		if u.Kind == discovery.UpdateApp {
			u.App.Framework = fw
		}
		sink.Update(u)
	}
}

// idleTransport is the event stream's transport: a watchdog per request
// cancels it when no byte (heartbeats included) arrived for timeout, from
// sending the request through reading the body. Marathon writes a bare
// CRLF every 10 s (Jetty's EventSourceServlet heartbeat), so silence means
// a dead peer or a half-open connection that TCP alone would not notice.
type idleTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := newWatchdog(t.timeout, cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		fired := w.stop()
		cancel()
		if fired {
			return nil, fmt.Errorf("%w: no response within %s", errIdleTimeout, t.timeout)
		}
		return nil, err
	}
	w.kick()
	resp.Body = &idleBody{rc: resp.Body, w: w, cancel: cancel}
	return resp, nil
}

// idleBody feeds the watchdog with every read and reports its firing as
// errIdleTimeout rather than as a cancelled context, which r3labs would
// take for a clean end of stream.
type idleBody struct {
	rc     io.ReadCloser
	w      *watchdog
	cancel context.CancelFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && b.w.fired.Load() {
		err = fmt.Errorf("%w: nothing read for %s", errIdleTimeout, b.w.timeout)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.w.stop()
	b.cancel()
	return b.rc.Close()
}

// watchdog calls cancel once no kick happened for timeout. Kicks are one
// atomic store; the timer re-arms itself for the remaining time instead of
// being reset on every read.
type watchdog struct {
	timeout time.Duration
	start   time.Time    // monotonic origin of last
	last    atomic.Int64 // time.Since(start) of the last kick
	fired   atomic.Bool
	cancel  context.CancelFunc

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func newWatchdog(timeout time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{timeout: timeout, start: time.Now(), cancel: cancel}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(timeout, w.check)
	return w
}

func (w *watchdog) kick() { w.last.Store(int64(time.Since(w.start))) }

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	idle := time.Since(w.start) - time.Duration(w.last.Load())
	if idle < w.timeout {
		w.timer.Reset(w.timeout - idle)
		return
	}
	w.fired.Store(true)
	w.cancel()
}

// stop disarms the watchdog and reports whether it had fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
	return w.fired.Load()
}

package marathon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// sseFuzzMax is the MaxEventSize of the stream fuzz: small, so that the
// fuzzer reaches the limit easily.
const sseFuzzMax = 256

// bodyTransport answers every request with body as a 200 text/event-stream
// response: the bytes go through the same http.Client, r3labs
// EventStreamReader and DecodeEvent path as Marathon's.
type bodyTransport []byte

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"text/event-stream"}},
		Body:    io.NopCloser(bytes.NewReader(b)),
		Request: req,
	}, nil
}

// eventSizes is a slog handler that keeps the largest "bytes" attribute
// logged: the size of a malformed event handed over by the reader.
type eventSizes struct {
	mu  *sync.Mutex
	max *int64
}

func (h eventSizes) Enabled(context.Context, slog.Level) bool { return true }
func (h eventSizes) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h eventSizes) WithGroup(string) slog.Handler            { return h }
func (h eventSizes) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "bytes" {
			h.mu.Lock()
			*h.max = max(*h.max, a.Value.Int64())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// streamBody runs one stream session over body and returns its outcome,
// the updates sent to the sink and the largest malformed event logged.
func streamBody(t *testing.T, body []byte) (session, []discovery.Update, int64) {
	t.Helper()
	var (
		mu      sync.Mutex
		largest int64
		updates []discovery.Update
	)
	c, err := New(Config{
		MarathonURLs: []string{"http://marathon.invalid:8080"},
		HTTPClient:   &http.Client{Transport: bodyTransport(body)},
		MaxEventSize: sseFuzzMax,
		Logger:       slog.New(eventSizes{mu: &mu, max: &largest}),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.resolver.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.9")}, nil // no DNS from the fuzzer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := c.session(ctx, c.marathonURLs[0], sinkFunc(func(u discovery.Update) { updates = append(updates, u) }))
	if ctx.Err() != nil {
		t.Fatalf("session over a %d-byte body did not end", len(body))
	}
	return s, updates, largest
}

// sinkFunc is a Sink made of a function.
type sinkFunc func(discovery.Update)

func (f sinkFunc) Update(u discovery.Update) { f(u) }

// sseCrashers holds stream bodies the fuzzer once found troublesome; they
// run as table rows and seed FuzzStream. (None so far.)
var sseCrashers = []struct {
	name string
	body string
}{}

var sseSeeds = []struct {
	name string
	body string
}{
	{name: "attached then status", body: "event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\"}\r\n\r\nevent: status_update_event\r\ndata: {\"eventType\":\"status_update_event\",\"taskId\":\"t.1\",\"appId\":\"/a\",\"taskStatus\":\"TASK_RUNNING\",\"host\":\"agent-1\",\"ports\":[31000]}\r\n\r\n"},
	{name: "heartbeats only", body: "\r\n\r\n\r\n"},
	{name: "lf framing, multi-line data", body: "event: api_post_event\ndata: {\"appDefinition\":\ndata: {\"id\":\"/a\"}}\n\n"},
	{name: "cr only", body: "event: app_terminated_event\rdata: {\"appId\":\"/a\"}\r\r"},
	{name: "no terminator", body: "event: status_update_event\r\ndata: {\"taskId\":"},
	{name: "unknown type", body: "event: framework_message_event\r\ndata: {}\r\n\r\n"},
	{name: "id and retry", body: "id: 7\r\nretry: 10\r\n: comment\r\nevent: deployment_success\r\ndata: {}\r\n\r\n"},
	{name: "at the limit", body: "event: api_post_event\r\ndata: {\"pad\":\"" + strings.Repeat("x", sseFuzzMax-40) + "\"}\r\n\r\n"},
	{name: "over the limit", body: "event: status_update_event\r\ndata: " + strings.Repeat("y", 4*sseFuzzMax) + "\r\n\r\n"},
	{name: "over the limit without framing", body: strings.Repeat("z", sseFuzzMax+frameSlack+1)},
	{name: "nul and invalid utf-8", body: "event: \x00\xff\r\ndata: \xfe\xfd\r\n\r\n"},
}

// hasBlankLine reports whether body holds an event terminator as r3labs
// splits them (\r\r, \n\n, \r\n\n, \n\r\n, \r\n\r\n all contain one of
// these three).
func hasBlankLine(body []byte) bool {
	return bytes.Contains(body, []byte("\r\r")) || bytes.Contains(body, []byte("\n\n")) || bytes.Contains(body, []byte("\n\r\n"))
}

// checkStreamBody asserts the stream invariants: events over the limit end
// the stream with exactly one oversized resync and never reach the
// decoder; a body that fits cannot be oversized; updates are well formed.
func checkStreamBody(t *testing.T, body []byte) {
	t.Helper()
	s, updates, largest := streamBody(t, body)
	limit := sseFuzzMax + frameSlack
	if largest > int64(limit) {
		t.Fatalf("a %d-byte event reached the decoder; the limit is %d", largest, limit)
	}
	if len(body) <= limit && s.reason == reasonOversized {
		t.Fatalf("a %d-byte body ended as oversized (limit %d)", len(body), limit)
	}
	if len(body) > limit && !hasBlankLine(body) && s.reason != reasonOversized {
		t.Fatalf("a %d-byte event without terminator ended as %q, want %q", len(body), s.reason, reasonOversized)
	}
	oversized := 0
	for _, u := range updates {
		if u.Kind == discovery.UpdateResync && u.Reason == resyncOversized {
			oversized++
		}
	}
	if want := map[bool]int{true: 1, false: 0}[s.reason == reasonOversized]; oversized != want {
		t.Fatalf("%d oversized resyncs for a session ending %q, want %d", oversized, s.reason, want)
	}
	if s.reason != reasonOversized && s.reason != reasonClosed {
		t.Fatalf("session over a fixed body ended %q (%v), want closed or oversized", s.reason, s.err)
	}
	checkUpdates(t, updates)
}

func TestStreamBodies(t *testing.T) {
	for _, tt := range append(sseSeeds, sseCrashers...) {
		t.Run(tt.name, func(t *testing.T) { checkStreamBody(t, []byte(tt.body)) })
	}
	s, _, _ := streamBody(t, []byte(sseSeeds[len(sseSeeds)-3].body))
	if s.reason != reasonOversized {
		t.Errorf("over the limit: session ended %q, want %q", s.reason, reasonOversized)
	}
}

func FuzzStream(f *testing.F) {
	for _, tt := range append(sseSeeds, sseCrashers...) {
		f.Add([]byte(tt.body))
	}
	addUpstreamSeeds(f, func(data []byte) { f.Add(data) },
		"mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt")
	f.Fuzz(func(t *testing.T, body []byte) {
		checkStreamBody(t, body)
	})
}

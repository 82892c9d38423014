package httpapi

// GET /v1/watch: the daemon's own server-sent event stream, which the
// status page follows. The first event is a snapshot, every later one a
// delta; a client that falls behind is told and dropped (EventSource then
// reconnects and starts again from a snapshot).

import (
	"errors"
	"net/http"
	"time"
)

// watchHeartbeat is how often an idle stream gets a comment line, so that
// proxies and the write deadline see it alive.
const watchHeartbeat = 15 * time.Second

// watchRetry is the reconnection delay the stream asks EventSource for,
// in milliseconds.
const watchRetry = "2000"

// Events a client may see besides snapshot and delta.
var (
	droppedEvent = []byte("event: dropped\ndata: {\"reason\":\"client fell behind; reconnect for a new snapshot\"}\n\n")
	closedEvent  = []byte("event: closed\ndata: {\"reason\":\"server shutting down\"}\n\n")
)

// v1Watch serves GET /v1/watch as text/event-stream (see the Feed): the
// events "snapshot", then "delta", and last "dropped" (the client fell
// behind) or "closed" (the server stops). Without a Feed it is a 404;
// at the Feed's client limit a 503.
func (a *api) v1Watch(w http.ResponseWriter, r *http.Request) {
	if a.feed == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no watch feed"})
		return
	}
	c, st, changes, err := a.feed.subscribe()
	if errors.Is(err, errTooManyWatchers) {
		w.Header().Set("Retry-After", "10")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		return
	}
	defer a.feed.unsubscribe(c)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	// The server's read and write timeouts bound whole requests; a stream
	// lives on, with a write deadline per event instead.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // not every writer supports deadlines: the stream works without
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: "+watchRetry+"\n\n")) || !send(a.feed.snapshot(st, changes, time.Now())) {
		return
	}
	beat := time.NewTicker(watchHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.feed.done:
			send(closedEvent)
			return
		case <-c.dropped:
			send(droppedEvent)
			return
		case ev := <-c.events:
			if !send(ev) {
				return
			}
		case <-beat.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		}
	}
}

package marathontest

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is one open /v2/events stream.
type subscriber struct {
	filter map[string]bool // nil: every event type
	frames chan event
	conn   net.Conn
	remote string
	once   sync.Once
	done   chan struct{}
	// cut and stalled are faults (faults.go): write half of the next
	// frame then close; stop writing without closing.
	cut     atomic.Bool
	stalled atomic.Bool
}

// close ends the stream at once: the connection is closed under the
// writer, as when a Marathon node loses leadership or drops a slow
// consumer.
func (sub *subscriber) close() {
	sub.once.Do(func() {
		close(sub.done)
		sub.conn.Close()
	})
}

func (sub *subscriber) wants(eventType string) bool {
	return sub.filter == nil || sub.filter[eventType]
}

// publish offers ev to every stream that wants it. A stream whose queue is
// full is closed, as Marathon does beyond
// --event_stream_max_outstanding_messages (HttpEventStreamHandleActor).
// The caller holds s.mu, which keeps events in emission order.
func (s *Server) publish(evs ...event) {
	s.remember(evs)
	s.pokeMesos() // the operator streams tell what changed in Mesos
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for _, ev := range evs {
		for sub := range s.subs {
			if !sub.wants(ev.Type) {
				continue
			}
			select {
			case sub.frames <- ev:
			default:
				delete(s.subs, sub)
				sub.close()
				s.faults.slowDrops.Add(1)
			}
		}
	}
}

// publishBlocking delivers ev to every stream that wants it, waiting for
// room in the queues instead of dropping slow streams; for benchmarks.
func (s *Server) publishBlocking(ev event) {
	s.subMu.Lock()
	subs := make([]*subscriber, 0, len(s.subs))
	for sub := range s.subs {
		if sub.wants(ev.Type) {
			subs = append(subs, sub)
		}
	}
	s.subMu.Unlock()
	for _, sub := range subs {
		select {
		case sub.frames <- ev:
		case <-sub.done:
		}
	}
}

// dropStreams closes every open stream.
func (s *Server) dropStreams() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		delete(s.subs, sub)
		sub.close()
	}
}

func (s *Server) unsubscribe(sub *subscriber) bool {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	_, ok := s.subs[sub]
	delete(s.subs, sub)
	return ok
}

// acceptsEventStream reports whether some Accept header is exactly
// "text/event-stream": Jetty's EventSourceServlet.doGet compares the whole
// value, otherwise the request falls through to 405.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if v == "text/event-stream" {
			return true
		}
	}
	return false
}

// handleEvents serves GET /v2/events like Marathon's HttpEventStreamServlet
// (a Jetty EventSourceServlet): non-leaders redirect with 302, the
// response has no chunking and Connection: close, frames are
// "event: <type>\r\ndata: <json>\r\n\r\n", and a bare "\r\n" heartbeat is
// written every heartbeat period.
func (s *Server) handleEvents(n *node, w http.ResponseWriter, r *http.Request) {
	if leader := s.leaderNode(); leader != n {
		http.Redirect(w, r, leader.url+r.URL.RequestURI(), http.StatusFound)
		return
	}
	if !acceptsEventStream(r) {
		http.Error(w, "HTTP method GET is not supported by this URL", http.StatusMethodNotAllowed)
		return
	}
	var filter map[string]bool
	if types := r.URL.Query()["event_type"]; len(types) > 0 {
		filter = make(map[string]bool, len(types))
		for _, t := range types {
			filter[t] = true
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	conn, bw, err := hj.Hijack()
	if err != nil {
		return
	}
	sub := &subscriber{
		filter: filter,
		frames: make(chan event, s.opts.maxOutstanding),
		conn:   conn,
		remote: remoteHost(r.RemoteAddr),
		done:   make(chan struct{}),
	}
	header := "HTTP/1.1 200 OK\r\n" +
		"Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n" +
		"Content-Type: text/event-stream;charset=utf-8\r\n" +
		"X-Marathon-Leader: " + n.url + "\r\n" +
		"Connection: close\r\n\r\n"
	// Attach before the client can see the response, so that every event
	// emitted after it has the headers reaches it.
	if !s.attach(sub) {
		conn.Close()
		return
	}
	defer s.streams.Done()
	if _, err := bw.WriteString(header); err != nil || bw.Flush() != nil {
		s.unsubscribe(sub)
		sub.close()
		return
	}
	s.stream(sub, bw.Writer)
}

// attach registers sub and publishes event_stream_attached, so the new
// stream receives it first. It reports false once the server is closing.
func (s *Server) attach(sub *subscriber) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subMu.Lock()
	if s.closing {
		s.subMu.Unlock()
		return false
	}
	s.subs[sub] = struct{}{}
	s.streams.Add(1)
	s.subMu.Unlock()
	s.publish(streamEvent("event_stream_attached", sub.remote, s.now()))
	return true
}

// stream writes sub's frames and heartbeats until the stream is closed by
// the server or the peer goes away.
func (s *Server) stream(sub *subscriber, bw *bufio.Writer) {
	defer sub.close()
	heartbeat := time.NewTicker(s.opts.heartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-sub.done:
			return
		case ev := <-sub.frames:
			if s.faulty(sub, bw, ev) {
				return
			}
			writeFrame(bw, ev)
			err = bw.Flush()
		case <-heartbeat.C:
			if s.faulty(sub, bw, event{}) {
				return
			}
			bw.WriteString("\r\n")
			err = bw.Flush()
		}
		if err != nil {
			if s.unsubscribe(sub) {
				s.mu.Lock()
				s.publish(streamEvent("event_stream_detached", sub.remote, s.now()))
				s.mu.Unlock()
			}
			return
		}
	}
}

// writeFrame writes one event in Jetty's framing; multi-line data becomes
// several data lines.
func writeFrame(bw *bufio.Writer, ev event) {
	bw.WriteString("event: ")
	bw.WriteString(ev.Type)
	bw.WriteString("\r\n")
	for line := range bytes.Lines(ev.Data) {
		bw.WriteString("data: ")
		bw.Write(bytes.TrimRight(line, "\r\n"))
		bw.WriteString("\r\n")
	}
	if len(ev.Data) == 0 {
		bw.WriteString("data: \r\n")
	}
	bw.WriteString("\r\n")
}

func remoteHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

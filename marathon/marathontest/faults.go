package marathontest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is a failure injected into the REST answers of one path
// (InjectFault): an error status, a slow answer, or no answer at all.
type Fault struct {
	// Status, if not 0, is the status answered instead of the real one,
	// e.g. 503 (Marathon or Mesos without a leader) or 500.
	Status int
	// Delay holds the request this long before answering (with Status, or
	// normally when Status is 0).
	Delay time.Duration
	// Hang holds the request until the client gives up or ClearFaults or
	// Close is called, then closes the connection without an answer: a
	// timeout as the client sees it.
	Hang bool
	// Count is how many requests the fault applies to; 0 means every
	// request until ClearFaults.
	Count int
}

// faultState is the injected faults of a Server.
type faultState struct {
	mu        sync.Mutex
	paths     map[string]*Fault
	release   chan struct{} // closed by clear and close: ends hanging requests
	gapTimer  *time.Timer   // ends the health gap after a leader change
	closed    bool
	slowDrops atomic.Int64 // streams dropped by publish for a full queue
	hits      atomic.Int64 // requests a fault applied to
}

func newFaultState() *faultState {
	return &faultState{paths: map[string]*Fault{}, release: make(chan struct{})}
}

// WithFailoverHealthGap makes ChangeLeader behave like a real Marathon
// failover for health checks: the new leader has no health result until the
// checks run again, so healthCheckResults (and tasksHealthy) are missing
// from /v2/apps and /v2/tasks for d. Then every health-checked task reports
// its result again, with health_status_changed_event and
// instance_health_changed_event. A SetHealth (or a new task) in the gap
// reports that task at once.
func WithFailoverHealthGap(d time.Duration) Option { return func(o *options) { o.healthGap = d } }

// InjectFault makes REST requests for path (exact, without query: "/v2/apps",
// "/v2/info", "/master/state") fail as f says, on every Marathon node and
// Mesos master, replacing an earlier fault on that path. Event streams are
// not affected; see CutStreams and StallStreams.
func (s *Server) InjectFault(path string, f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.paths[path] = &f
}

// ClearFaults removes every injected REST fault and ends hanging requests.
func (s *Server) ClearFaults() {
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	clear(fs.paths)
	close(fs.release)
	fs.release = make(chan struct{})
}

// FaultHits is how many REST requests an injected fault applied to.
func (s *Server) FaultHits() int { return int(s.faults.hits.Load()) }

// SlowDrops is how many event streams were closed because their queue of
// outstanding events was full (WithMaxOutstanding).
func (s *Server) SlowDrops() int { return int(s.faults.slowDrops.Load()) }

// take returns the fault for path, consuming one of its Count, and the
// channel that ends a hang.
func (fs *faultState) take(path string) (Fault, <-chan struct{}, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.paths[path]
	if !ok {
		return Fault{}, nil, false
	}
	out := *f
	if f.Count > 0 {
		if f.Count--; f.Count == 0 {
			delete(fs.paths, path)
		}
	}
	fs.hits.Add(1)
	return out, fs.release, true
}

// wrap applies the injected faults before h.
func (fs *faultState) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, release, ok := fs.take(r.URL.Path)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		if f.Hang {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
				}
			}
			return
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-release:
				t.Stop()
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status != 0 {
			writeJSON(w, f.Status, obj{"message": fmt.Sprintf("injected fault: %d %s", f.Status, http.StatusText(f.Status))})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// close ends hanging requests and the health gap timer for good.
func (fs *faultState) close() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return
	}
	fs.closed = true
	close(fs.release)
	fs.release = make(chan struct{})
	if fs.gapTimer != nil {
		fs.gapTimer.Stop()
	}
}

// blindHealth starts the health gap of a leader change (WithFailoverHealthGap).
// The caller holds s.mu.
func (s *Server) blindHealth() {
	if s.opts.healthGap <= 0 {
		return
	}
	for _, a := range s.c.apps {
		for _, t := range a.tasks {
			if t.healthy != nil {
				t.blind = true
			}
		}
	}
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return
	}
	if fs.gapTimer != nil {
		fs.gapTimer.Stop()
	}
	fs.gapTimer = time.AfterFunc(s.opts.healthGap, s.endHealthGap)
}

// EndHealthGap ends the health gap of the last ChangeLeader now instead of
// when WithFailoverHealthGap's period is over; see endHealthGap.
func (s *Server) EndHealthGap() {
	s.faults.mu.Lock()
	if s.faults.gapTimer != nil {
		s.faults.gapTimer.Stop()
	}
	s.faults.mu.Unlock()
	s.endHealthGap()
}

// endHealthGap reports every hidden health result again, as the new
// leader's first health checks do: results of now (lastSuccess or
// lastFailure), with their events.
func (s *Server) endHealthGap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, a := range s.c.sortedApps() {
		for _, t := range a.tasks {
			if t.blind {
				s.publish(s.c.healthEvents(t, t.setHealth(*t.healthy, now))...)
			}
		}
	}
}

// ChangeMesosLeader swaps the leading and the standby Mesos master
// (WithStandbyMaster): the old leader now answers 307 to the new one. It
// returns the new leader's URL.
func (s *Server) ChangeMesosLeader() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mesosStandby == nil {
		return "", fmt.Errorf("change mesos leader: no standby master (WithStandbyMaster)")
	}
	s.mesos, s.mesosStandby = s.mesosStandby, s.mesos
	s.dropMesosStreams() // the old leader's operator streams end with its leadership
	return s.mesos.url, nil
}

// CutStreams arms every open event stream to write the first half of its
// next event frame and then close the connection, as a connection lost in
// the middle of an event. That event and every later one are lost to the
// stream; heartbeats do not trigger the cut.
func (s *Server) CutStreams() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		sub.cut.Store(true)
	}
}

// StallStreams makes every open event stream stop writing, heartbeats
// included, without closing its connection: a half-open connection as the
// client sees it (no bytes, no FIN). Events keep queueing for it; a queue
// that fills up closes the stream as for any slow consumer. Streams opened
// later are not stalled.
func (s *Server) StallStreams() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		sub.stalled.Store(true)
	}
}

// faulty applies sub's stream faults before ev (the zero event for a
// heartbeat) is written, and reports whether the stream must end. A
// stalled stream waits here, holding its connection, until it is closed.
func (s *Server) faulty(sub *subscriber, bw *bufio.Writer, ev event) bool {
	if sub.stalled.Load() {
		<-sub.done
		return true
	}
	if ev.Type == "" || !sub.cut.Load() {
		return false
	}
	var frame bytes.Buffer
	fw := bufio.NewWriter(&frame)
	writeFrame(fw, ev)
	fw.Flush()
	bw.Write(frame.Bytes()[:frame.Len()/2])
	bw.Flush()
	s.unsubscribe(sub)
	return true
}

// historySize is how many published events Replay can send again.
const historySize = 512

// remember keeps evs for Replay. The caller holds s.mu.
func (s *Server) remember(evs []event) {
	for _, ev := range evs {
		if ev.raw || ev.Type == "event_stream_attached" || ev.Type == "event_stream_detached" {
			continue
		}
		if len(s.history) == historySize {
			s.history = slices.Delete(s.history, 0, historySize/4)
		}
		s.history = append(s.history, ev)
	}
}

// Replay sends the last n events again (at most 512; not those of Emit),
// in reverse order or
// in the order shuffle leaves them (shuffle is rand.Shuffle's shape): old,
// duplicated, out-of-order events, which Marathon does not rule out. State
// is not changed. It returns the number sent.
func (s *Server) Replay(n int, shuffle func(n int, swap func(i, j int))) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.history))
	evs := slices.Clone(s.history[len(s.history)-n:])
	if shuffle != nil {
		shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	} else {
		slices.Reverse(evs)
	}
	// Replayed events are history already; do not remember them twice.
	history := slices.Clone(s.history)
	for _, ev := range evs {
		s.publish(ev)
	}
	s.history = history
	return n
}

// Burst publishes n status_update_events restating running tasks (round
// robin), like EmitStatus, but as Marathon does: a stream whose queue is
// full (WithMaxOutstanding) is closed. With StallStreams first, a burst
// longer than the queue disconnects the slow consumer. It returns the
// number sent: 0 when no task is running.
func (s *Server) Burst(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var evs []event
	for _, a := range s.c.sortedApps() {
		for _, t := range a.tasks {
			if t.state == "TASK_RUNNING" {
				evs = append(evs, s.c.statusUpdateEvent(t, now))
			}
		}
	}
	if len(evs) == 0 {
		return 0
	}
	for i := range n {
		s.publish(evs[i%len(evs)])
	}
	return n
}

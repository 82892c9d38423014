package marathontest

// The Mesos master's operator API: POST /api/v1 {"type":"SUBSCRIBE"}
// streams RecordIO-framed JSON events as Mesos frames them (apache/mesos
// docs/recordio.md: size "\n" data): SUBSCRIBED with the whole state in
// v1 shape, one HEARTBEAT at once and then every heartbeat interval, and
// TASK_ADDED / TASK_UPDATED / AGENT_ADDED / FRAMEWORK_ADDED /
// FRAMEWORK_REMOVED as the cluster changes. A standby master answers 307
// with a scheme-less Location, as Mesos does; WithoutSubscribe serves a
// master that has no operator API.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FrameworkID is Marathon's Mesos framework ID, as reported in /v2/info
// (frameworkId) and in the master's state.
func (s *Server) FrameworkID() string { return s.c.frameworkID }

// WithMesosHeartbeat sets the operator stream's heartbeat interval (and
// the heartbeat_interval_seconds SUBSCRIBED announces); Mesos's is 15 s.
func WithMesosHeartbeat(d time.Duration) Option { return func(o *options) { o.mesosHeartbeat = d } }

// WithoutSubscribe serves a Mesos master without the operator API (as
// before Mesos 1.0): POST /api/v1 answers 404 and /version says 0.28.2.
func WithoutSubscribe() Option { return func(o *options) { o.noSubscribe = true } }

// mesosAPI is the operator API's state: its subscribers, the requests
// counted per path, and a failover in progress.
type mesosAPI struct {
	mu         sync.Mutex
	subs       map[*mesosSub]struct{}
	requests   map[string]int
	recovering bool // a failed-over master whose agents have not re-registered
	loop       bool // each master redirects SUBSCRIBE to the other
	// lastWrite is when the last events (heartbeats aside) were written to
	// a stream, in Unix nanoseconds.
	lastWrite atomic.Int64
	// eventBytes counts the bytes of those events, framing included.
	eventBytes atomic.Int64
}

// MesosEventBytes returns the bytes of events (heartbeats aside, SUBSCRIBED
// included) written to operator streams so far, RecordIO framing included.
func (s *Server) MesosEventBytes() int64 { return s.mesosAPI.eventBytes.Load() }

// LastMesosEvents returns when events (heartbeats aside) were last written
// to an operator stream, read just before the write: the start of an
// event's propagation, for benchmarks.
func (s *Server) LastMesosEvents() time.Time { return time.Unix(0, s.mesosAPI.lastWrite.Load()) }

// mesosSub is one SUBSCRIBE stream.
type mesosSub struct {
	wake chan struct{} // cap 1: the cluster changed
	drop chan struct{} // closed: end the stream (failover)
	// Faults of the next write: cut it in half and close; announce a
	// length 3 bytes short and close; write nothing any more.
	cut, lie, stall atomic.Bool
}

// CutMesosStreams makes every operator stream write half of its next
// record (a heartbeat at the latest) and close: a stream cut mid-record.
func (s *Server) CutMesosStreams() { s.eachMesosSub(func(sub *mesosSub) { sub.cut.Store(true) }) }

// LieMesosStreams makes every operator stream announce its next record 3
// bytes shorter than it is, write it whole and close: a lying length.
func (s *Server) LieMesosStreams() { s.eachMesosSub(func(sub *mesosSub) { sub.lie.Store(true) }) }

// StallMesosStreams makes every operator stream stop writing, heartbeats
// included, without closing: a half-open connection.
func (s *Server) StallMesosStreams() { s.eachMesosSub(func(sub *mesosSub) { sub.stall.Store(true) }) }

// MesosRedirectLoop makes each master answer SUBSCRIBE with 307 to the
// other (on), as masters that disagree on the leader; needs
// WithStandbyMaster. Streams already open are not affected: see
// DropMesosStreams.
func (s *Server) MesosRedirectLoop(on bool) {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	s.mesosAPI.loop = on
}

// DropMesosStreams ends every operator stream at once.
func (s *Server) DropMesosStreams() { s.dropMesosStreams() }

func (s *Server) eachMesosSub(f func(*mesosSub)) {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	for sub := range s.mesosAPI.subs {
		f(sub)
	}
}

// MesosRequests returns how many requests the Mesos masters got for path
// ("/master/state", "/api/v1").
func (s *Server) MesosRequests(path string) int {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	return s.mesosAPI.requests[path]
}

// MesosSubscribers returns the number of open SUBSCRIBE streams.
func (s *Server) MesosSubscribers() int {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	return len(s.mesosAPI.subs)
}

// countMesos counts every request to a Mesos master.
func (s *Server) countMesos(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mesosAPI.mu.Lock()
		if s.mesosAPI.requests == nil {
			s.mesosAPI.requests = map[string]int{}
		}
		s.mesosAPI.requests[r.URL.Path]++
		s.mesosAPI.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// pokeMesos tells every operator stream that the cluster changed; it
// never blocks.
func (s *Server) pokeMesos() {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	for sub := range s.mesosAPI.subs {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// FailoverMesos fails the leading Mesos master over: every operator
// stream ends, and the new master's SUBSCRIBED lists the agents as
// recovered_agents with no task nor framework, as after a real failover
// (recovered-agents.json), until ReregisterAgents.
func (s *Server) FailoverMesos() {
	s.mesosAPI.mu.Lock()
	s.mesosAPI.recovering = true
	s.mesosAPI.mu.Unlock()
	s.dropMesosStreams()
}

// dropMesosStreams ends every operator stream.
func (s *Server) dropMesosStreams() {
	s.mesosAPI.mu.Lock()
	subs := slices.Collect(maps.Keys(s.mesosAPI.subs))
	clear(s.mesosAPI.subs)
	s.mesosAPI.mu.Unlock()
	for _, sub := range subs {
		close(sub.drop)
	}
}

// ReregisterAgents ends a failover: the agents re-register, and the
// streams get AGENT_ADDED for each, then FRAMEWORK_ADDED and TASK_ADDED
// for what runs on them.
func (s *Server) ReregisterAgents() {
	s.mesosAPI.mu.Lock()
	s.mesosAPI.recovering = false
	s.mesosAPI.mu.Unlock()
	s.pokeMesos()
}

func (s *Server) isRecovering() bool {
	s.mesosAPI.mu.Lock()
	defer s.mesosAPI.mu.Unlock()
	return s.mesosAPI.recovering
}

// handleVersion serves GET /version.
func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	v := "1.9.0"
	if s.opts.noSubscribe {
		v = "0.28.2"
	}
	writeJSON(w, http.StatusOK, obj{"version": v, "git_sha": "marathontest", "build_user": "marathontest"})
}

// handleOperatorAPI serves POST /api/v1 on master n.
func (s *Server) handleOperatorAPI(n *node, w http.ResponseWriter, r *http.Request) {
	if s.opts.noSubscribe {
		http.NotFound(w, r)
		return
	}
	if other := s.otherMaster(n); other != nil {
		w.Header().Set("Location", "//"+hostPort(other.url)+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if leader := s.mesosLeader(); leader != n {
		// Mesos redirects before parsing the body, scheme-less
		// (src/master/http.cpp Master::Http::redirect).
		w.Header().Set("Location", "//"+hostPort(leader.url)+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var call struct {
		Type string `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&call); err != nil || call.Type != "SUBSCRIBE" {
		http.Error(w, "Failed to validate master::Call: only SUBSCRIBE is simulated", http.StatusBadRequest)
		return
	}
	s.serveSubscription(w, r)
}

// otherMaster is the master n redirects to in a redirect loop, or nil.
func (s *Server) otherMaster(n *node) *node {
	s.mesosAPI.mu.Lock()
	loop := s.mesosAPI.loop
	s.mesosAPI.mu.Unlock()
	if !loop {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mesosStandby == nil {
		return nil
	}
	if n == s.mesos {
		return s.mesosStandby
	}
	return s.mesos
}

// serveSubscription streams one subscriber until it goes away, the server
// closes or the master fails over.
func (s *Server) serveSubscription(w http.ResponseWriter, r *http.Request) {
	sub := &mesosSub{wake: make(chan struct{}, 1), drop: make(chan struct{})}
	s.mesosAPI.mu.Lock()
	if s.mesosAPI.subs == nil {
		s.mesosAPI.subs = map[*mesosSub]struct{}{}
	}
	s.mesosAPI.subs[sub] = struct{}{}
	s.mesosAPI.mu.Unlock()
	defer func() {
		s.mesosAPI.mu.Lock()
		delete(s.mesosAPI.subs, sub)
		s.mesosAPI.mu.Unlock()
	}()
	interval := s.opts.mesosHeartbeat
	if interval <= 0 {
		interval = 15 * time.Second
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	view, tasks, _ := s.mesosView(nil)
	send := func(events ...obj) bool {
		if sub.stall.Load() {
			return true
		}

		var b []byte
		for _, ev := range events {
			data, err := json.Marshal(ev)
			if err != nil {
				return false
			}
			if sub.lie.Load() {
				b = append(strconv.AppendInt(b, int64(len(data)-3), 10), '\n')
				b = append(b, data...)
				continue
			}
			b = appendRecord(b, data)
		}
		broken := sub.cut.Load() || sub.lie.Load()
		if sub.cut.Load() {
			b = b[:len(b)/2]
		}
		if len(events) > 1 || events[0]["type"] != "HEARTBEAT" {
			s.mesosAPI.lastWrite.Store(time.Now().UnixNano())
			s.mesosAPI.eventBytes.Add(int64(len(b)))
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		w.(http.Flusher).Flush()
		return !broken
	}
	if !send(view.subscribed(interval, tasks), obj{"type": "HEARTBEAT"}) {
		return
	}
	tasks = nil
	beat := time.NewTicker(interval)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.drop:
			return
		case <-beat.C:
			if !send(obj{"type": "HEARTBEAT"}) {
				return
			}
		case <-sub.wake:
			next, _, evs := s.mesosView(view)
			if len(evs) > 0 && !send(evs...) {
				return
			}
			view = next
		}
	}
}

// appendRecord frames data as one RecordIO record, as Mesos does
// (stout recordio.hpp: stringify(size) + "\n" + record).
func appendRecord(dst, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, '\n')
	return append(dst, data...)
}

// StartFrameworkTask starts task t of the framework named framework (added
// when new) as another framework would: operator streams get TASK_ADDED
// then TASK_UPDATED.
func (s *Server) StartFrameworkTask(framework string, t FrameworkTask) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.ID == "" || t.Agent < 0 || t.Agent >= len(s.c.agents) {
		return fmt.Errorf("start framework task %q: want an id and an agent index below %d", t.ID, len(s.c.agents))
	}
	s.c.others = slices.Clone(s.c.others)
	i := slices.IndexFunc(s.c.others, func(f Framework) bool { return f.Name == framework })
	if i < 0 {
		s.c.others = append(s.c.others, Framework{Name: framework})
		i = len(s.c.others) - 1
	}
	s.c.others[i].Tasks = append(slices.Clone(s.c.others[i].Tasks), t)
	s.pokeMesos()
	return nil
}

// SetFrameworkTaskHealth sets the health of another framework's task, as
// its health check would: a TASK_UPDATED with the new health.
func (s *Server) SetFrameworkTaskHealth(taskID string, healthy bool) error {
	return s.changeFrameworkTask(taskID, func(f *Framework, i int) { f.Tasks[i].Healthy = &healthy })
}

// KillFrameworkTask kills another framework's task: TASK_UPDATED to
// TASK_KILLED, and the task is gone from the master's state.
func (s *Server) KillFrameworkTask(taskID string) error {
	return s.changeFrameworkTask(taskID, func(f *Framework, i int) { f.Tasks = slices.Delete(f.Tasks, i, i+1) })
}

func (s *Server) changeFrameworkTask(taskID string, change func(f *Framework, i int)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fi := range s.c.others {
		if i := slices.IndexFunc(s.c.others[fi].Tasks, func(t FrameworkTask) bool { return t.ID == taskID }); i >= 0 {
			s.c.others = slices.Clone(s.c.others)
			f := &s.c.others[fi]
			f.Tasks = slices.Clone(f.Tasks)
			change(f, i)
			s.pokeMesos()
			return nil
		}
	}
	return fmt.Errorf("framework task %s: %w", taskID, errNotFound)
}

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
	"strings"
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
}

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
	view := s.mesosView()
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
		if _, err := w.Write(b); err != nil {
			return false
		}
		w.(http.Flusher).Flush()
		return !broken
	}
	if !send(view.subscribed(interval), obj{"type": "HEARTBEAT"}) {
		return
	}
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
			next := s.mesosView()
			if evs := view.diff(next); len(evs) > 0 && !send(evs...) {
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

// mesosView is what a subscriber has been told: the agents, frameworks
// and tasks of the master in v1 shape.
type mesosView struct {
	recovering bool
	agents     []obj            // v1 GetAgents.Agent, in agent order
	recovered  []obj            // v1 AgentInfo of agents not re-registered
	frameworks map[string]obj   // v1 FrameworkInfo by ID
	tasks      map[string]obj   // v1 Task by "<framework id>/<task id>"
	order      []string         // task keys in state order
	health     map[string]*bool // the latest status' health, by task key
}

// mesosView renders the cluster as the operator API shows it.
func (s *Server) mesosView() *mesosView {
	s.mu.Lock()
	hp := hostPort(s.mesos.url)
	state := s.c.masterState("master@"+hp, "", s.nodes[s.leader].url, s.now())
	s.mu.Unlock()
	v := &mesosView{recovering: s.isRecovering(), frameworks: map[string]obj{}, tasks: map[string]obj{}, health: map[string]*bool{}}
	for _, a := range state["slaves"].([]any) {
		ag := a.(obj)
		info := obj{"id": obj{"value": ag["id"]}, "hostname": ag["hostname"], "port": 5051}
		if v.recovering {
			v.recovered = append(v.recovered, info)
			continue
		}
		v.agents = append(v.agents, obj{"agent_info": info, "pid": ag["pid"], "active": true, "version": "1.9.0"})
	}
	if v.recovering {
		return v
	}
	for _, f := range state["frameworks"].([]any) {
		fw := f.(obj)
		id := fw["id"].(string)
		v.frameworks[id] = obj{"id": obj{"value": id}, "name": fw["name"], "hostname": fw["hostname"], "user": "root"}
		for _, t := range fw["tasks"].([]any) {
			task := v1Task(t.(obj))
			key := id + "/" + t.(obj)["id"].(string)
			v.tasks[key] = task
			v.order = append(v.order, key)
			if st := task["statuses"].([]any); len(st) > 0 {
				if h, ok := st[len(st)-1].(obj)["healthy"].(bool); ok {
					v.health[key] = &h
				}
			}
		}
	}
	return v
}

// subscribed is the SUBSCRIBED event of the view.
func (v *mesosView) subscribed(interval time.Duration) obj {
	agents := obj{"agents": orEmpty(v.agents)}
	if len(v.recovered) > 0 {
		agents["recovered_agents"] = v.recovered
	}
	var frameworks, tasks []obj
	for _, id := range slices.Sorted(maps.Keys(v.frameworks)) {
		frameworks = append(frameworks, obj{"framework_info": v.frameworks[id], "active": true, "connected": true, "recovered": false})
	}
	for _, k := range v.order {
		tasks = append(tasks, v.tasks[k])
	}
	return obj{"type": "SUBSCRIBED", "subscribed": obj{
		"heartbeat_interval_seconds": interval.Seconds(),
		"get_state": obj{
			"get_agents":     agents,
			"get_frameworks": obj{"frameworks": orEmpty(frameworks)},
			"get_tasks":      obj{"tasks": orEmpty(tasks)},
			"get_executors":  obj{},
		},
	}}
}

func orEmpty(list []obj) []obj {
	if list == nil {
		return []obj{}
	}
	return list
}

// diff lists the events that take a subscriber from v to next, in the
// order Mesos sends them: agents, frameworks, new tasks (TASK_ADDED in
// TASK_STAGING without statuses, then TASK_UPDATED to their state), changed
// tasks, ended tasks (TASK_UPDATED to TASK_KILLED), removed frameworks.
func (v *mesosView) diff(next *mesosView) []obj {
	var evs []obj
	known := map[string]bool{}
	for _, a := range v.agents {
		known[a["agent_info"].(obj)["id"].(obj)["value"].(string)] = true
	}
	for _, a := range next.agents {
		if !known[a["agent_info"].(obj)["id"].(obj)["value"].(string)] {
			evs = append(evs, obj{"type": "AGENT_ADDED", "agent_added": obj{"agent": a}})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(next.frameworks)) {
		if _, ok := v.frameworks[id]; !ok {
			evs = append(evs, obj{"type": "FRAMEWORK_ADDED", "framework_added": obj{"framework": obj{"framework_info": next.frameworks[id], "active": true, "connected": true}}})
		}
	}
	for _, k := range next.order {
		t := next.tasks[k]
		old, ok := v.tasks[k]
		switch {
		case !ok:
			added := maps.Clone(t)
			added["state"], added["statuses"] = "TASK_STAGING", []any{}
			evs = append(evs, obj{"type": "TASK_ADDED", "task_added": obj{"task": added}}, taskUpdated(t, ""))
		case old["state"] != t["state"]:
			evs = append(evs, taskUpdated(t, ""))
		case !sameHealth(v.health[k], next.health[k]):
			evs = append(evs, taskUpdated(t, "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"))
		}
	}
	for _, k := range v.order {
		if _, ok := next.tasks[k]; !ok {
			gone := maps.Clone(v.tasks[k])
			gone["state"] = "TASK_KILLED"
			st := v.tasks[k]["statuses"].([]any)
			last := obj{}
			if len(st) > 0 {
				last = maps.Clone(st[len(st)-1].(obj))
			}
			last["state"] = "TASK_KILLED"
			delete(last, "healthy")
			gone["statuses"] = []any{last}
			evs = append(evs, taskUpdated(gone, "REASON_TASK_KILLED_DURING_LAUNCH"))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(v.frameworks)) {
		if _, ok := next.frameworks[id]; !ok {
			evs = append(evs, obj{"type": "FRAMEWORK_REMOVED", "framework_removed": obj{"framework_info": v.frameworks[id]}})
		}
	}
	return evs
}

func sameHealth(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// taskUpdated is the TASK_UPDATED of v1 task t: its framework, its state
// and its latest status, nothing else (protobuf_utils.cpp
// createTaskUpdated).
func taskUpdated(t obj, reason string) obj {
	st := t["statuses"].([]any)
	status := obj{"state": t["state"]}
	if len(st) > 0 {
		status = maps.Clone(st[len(st)-1].(obj))
	}
	status["task_id"], status["agent_id"] = t["task_id"], t["agent_id"]
	status["source"] = "SOURCE_EXECUTOR"
	if reason != "" {
		status["reason"] = reason
	}
	return obj{"type": "TASK_UPDATED", "task_updated": obj{"framework_id": t["framework_id"], "state": t["state"], "status": status}}
}

// v1Task converts a task of /master/state (taskBase) into the v1 Task the
// operator API sends: IDs as {"value"}, slave_id as agent_id, resources as
// a list with ports as RANGES, labels wrapped in {"labels"}.
func v1Task(t obj) obj {
	out := obj{
		"task_id":      obj{"value": t["id"]},
		"name":         t["name"],
		"framework_id": obj{"value": t["framework_id"]},
		"agent_id":     obj{"value": t["slave_id"]},
		"state":        t["state"],
	}
	if d, ok := t["discovery"]; ok {
		out["discovery"] = d
	}
	if l, ok := t["labels"]; ok {
		out["labels"] = obj{"labels": l}
	}
	var statuses []any
	for _, s := range t["statuses"].([]any) {
		st := maps.Clone(s.(obj))
		st["task_id"], st["agent_id"] = out["task_id"], out["agent_id"]
		statuses = append(statuses, st)
	}
	out["statuses"] = statuses
	out["resources"] = v1Resources(t["resources"].(obj))
	return out
}

func v1Resources(res obj) []any {
	var out []any
	for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
		if v, ok := res[name]; ok {
			out = append(out, obj{"name": name, "type": "SCALAR", "scalar": obj{"value": v}})
		}
	}
	if ports, ok := res["ports"].(string); ok {
		var ranges []any
		for _, part := range strings.Split(strings.Trim(ports, "[]"), ",") {
			lo, hi, _ := strings.Cut(strings.TrimSpace(part), "-")
			b, err1 := strconv.Atoi(lo)
			e, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				ranges = append(ranges, obj{"begin": b, "end": e})
			}
		}
		out = append(out, obj{"name": "ports", "type": "RANGES", "ranges": obj{"range": ranges}})
	}
	return out
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

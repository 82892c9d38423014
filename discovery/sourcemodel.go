package discovery

// The source model: one source's apps and tasks, replaced by full
// snapshots and changed by incremental updates, with the rules that keep
// late, replayed and out-of-order events from undoing newer state.

import (
	"reflect"
	"slices"
	"strings"
	"time"
)

// sourceModel is the reconciler's model of one source: its apps with their
// tasks, changed by full snapshots and by incremental Updates.
//
// Invariant: an App value in apps is never mutated in place once stored;
// changes replace the App and copy its Tasks slice. The store's write queue
// and Build may therefore hold App values without copying them.
type sourceModel struct {
	apps map[string]App
	// dirty holds IDs of apps changed since the last persist: present ones
	// are written, absent ones deleted.
	dirty map[string]struct{}
	// changed holds IDs of apps changed since the last build (the
	// incremental builder takes and clears it): present ones are rebuilt,
	// absent ones dropped.
	changed map[string]struct{}
	// health remembers each task's last non-None health and since when
	// snapshots lack it, for the health grace period, and the time of its
	// newest result, to tell late health events.
	health map[string]healthMemo
	// gone holds tasks a terminal update or a snapshot removed, so that an
	// older event for one, replayed or late, cannot bring it back (task IDs
	// are never reused; only a TASK_RUNNING newer than the last known state
	// may, for a task that comes back from unreachable); kept for
	// tombstoneTTL.
	gone map[string]tombstone
	// late counts updates ignored as older than what the model knows, or
	// applied though they could not be ordered against it: evidence of
	// out-of-order delivery, after which the reconciler resyncs (an older
	// event may also have slipped through undetected).
	late int
	// cluster is the source's last Cluster (nil: none known);
	// clusterDirty and clusterChanged say it changed since the last
	// persist and the last build.
	cluster                      *Cluster
	clusterDirty, clusterChanged bool
	// seq is the State.Seq of the last snapshot taken.
	seq uint64
	// touched holds, for each app an update changed since the last
	// snapshot, when (replace keeps those apps); updating is the time of
	// the update being applied (zero outside update).
	touched  map[string]time.Time
	updating time.Time
}

// tombstone is a task ended by a terminal update or gone from a snapshot.
type tombstone struct {
	updated time.Time // the terminal update's Task.Updated, or the task's last known one
	at      time.Time // when it was applied
	// snapshot is true when a snapshot removed the task: when it ended is
	// not known, only that it was after updated.
	snapshot bool
}

// tombstoneTTL is how long a removed task's tombstone is kept: far longer
// than any event stays in flight.
const tombstoneTTL = 10 * time.Minute

type healthMemo struct {
	health Health
	// at is the time of the newest health result known (Marathon's
	// clock): the last health event applied or a snapshot's
	// Task.HealthAt, whichever is later; zero when unknown.
	at time.Time
	// snapshot is true when at is a snapshot's HealthAt: the snapshot
	// holds every result up to its own time, so an event of the same
	// millisecond is no newer than it.
	snapshot bool
	// missing is when a snapshot first lacked the result (zero while
	// it is reported): the grace runs from there, not from the last
	// report, which may be a whole resync interval older.
	missing time.Time
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func newSourceModel(apps []App) *sourceModel {
	m := &sourceModel{apps: make(map[string]App, len(apps)), dirty: map[string]struct{}{},
		changed: make(map[string]struct{}, len(apps)), health: map[string]healthMemo{}, touched: map[string]time.Time{}}
	for _, a := range apps {
		m.apps[a.ID] = a
		m.changed[a.ID] = struct{}{}
		m.remember(a.Tasks, time.Time{}) // stored or snapshot health: no event time
	}
	return m
}

// mark notes that app id changed (or is gone), for the store and the build.
func (m *sourceModel) mark(id string) {
	m.dirty[id] = struct{}{}
	m.changed[id] = struct{}{}
	if !m.updating.IsZero() {
		m.touched[id] = m.updating
	}
}

// remember records the health of tasks that have a result, with the time
// of the health event that set it (zero for a snapshot).
func (m *sourceModel) remember(tasks []Task, at time.Time) {
	for _, t := range tasks {
		if t.Health != HealthNone {
			m.health[t.ID] = healthMemo{health: t.Health, at: at}
		}
	}
}

// replace makes apps (a full snapshot) the model. A task whose health is
// HealthNone keeps its last health for grace from the first snapshot
// without it: a Marathon leader
// failover drops every health result until the checks run again, and that
// must not drain every backend at once.
//
// started is when the snapshot was asked for (zero: unknown). An app an
// update changed since then is newer in the model than in the snapshot,
// which may have been read before the update happened: the model's
// version (or absence) of it stays, and the next resync settles it.
func (m *sourceModel) replace(apps []App, now time.Time, grace time.Duration, started time.Time) {
	newer := func(id string) bool {
		t, ok := m.touched[id]
		return ok && !started.IsZero() && !t.Before(started)
	}
	next := make(map[string]App, len(apps))
	live := make(map[string]struct{}, len(m.health))
	for id := range m.touched {
		if a, ok := m.apps[id]; ok && newer(id) {
			next[id] = a
			for _, t := range a.Tasks {
				live[t.ID] = struct{}{}
			}
		}
	}
	for _, a := range apps {
		if newer(a.ID) {
			continue
		}
		a = m.withGrace(a, now, grace)
		for _, t := range a.Tasks {
			live[t.ID] = struct{}{}
		}
		if old, ok := m.apps[a.ID]; !ok || !reflect.DeepEqual(old, a) {
			m.mark(a.ID)
		}
		next[a.ID] = a
	}
	for id, old := range m.apps {
		if _, ok := next[id]; !ok {
			m.mark(id)
		}
		for _, t := range old.Tasks {
			if _, ok := live[t.ID]; !ok {
				m.bury(t.ID, t.Updated, now, true) // ended between events: gone for good
			}
		}
	}
	for id := range m.health {
		if _, ok := live[id]; !ok {
			delete(m.health, id)
		}
	}
	for id, g := range m.gone {
		if now.Sub(g.at) > tombstoneTTL {
			delete(m.gone, id)
		}
	}
	m.apps = next
	clear(m.touched) // the next snapshot is asked for after now
}

// withGrace applies the health grace to a's tasks and takes their HealthAt
// into the health memory, copying Tasks if it changes any (the snapshot's
// slices belong to the source).
func (m *sourceModel) withGrace(a App, now time.Time, grace time.Duration) App {
	copied := false
	own := func() {
		if !copied {
			a.Tasks = slices.Clone(a.Tasks)
			copied = true
		}
	}
	for i, t := range a.Tasks {
		if !t.HealthAt.IsZero() {
			// It moves on at every health check: kept out of the app, which
			// replace compares and the store writes.
			own()
			a.Tasks[i].HealthAt = time.Time{}
		}
		if t.Health != HealthNone {
			// The newest result time known stays: an event older than it
			// is older than this snapshot's result too.
			last := m.health[t.ID]
			m.health[t.ID] = healthMemo{health: t.Health, at: later(last.at, t.HealthAt),
				snapshot: !t.HealthAt.IsZero() && !t.HealthAt.Before(last.at)}
			continue
		}
		memo, ok := m.health[t.ID]
		if !ok {
			continue
		}
		if memo.missing.IsZero() {
			memo.missing = now
			m.health[t.ID] = memo
		}
		if now.Sub(memo.missing) > grace {
			delete(m.health, t.ID)
			continue
		}
		own()
		a.Tasks[i].Health = memo.health
	}
	return a
}

// update applies one incremental update and reports whether the model does
// not know what the update refers to (the caller then resyncs).
func (m *sourceModel) update(u Update, now time.Time) (unknown bool) {
	m.updating = now
	defer func() { m.updating = time.Time{} }()
	switch u.Kind {
	case UpdateTask:
		return m.updateTask(u, now)
	case UpdateHealth:
		return m.updateHealth(u, now)
	case UpdateApp:
		return m.updateApp(u)
	case UpdateAppReplace:
		return m.replaceApp(u.App)
	case UpdateCluster:
		m.setCluster(u.Cluster)
		return false
	case UpdateAppRemoved:
		id := updateAppID(u)
		if _, ok := m.apps[id]; ok {
			delete(m.apps, id)
			m.mark(id)
		}
		return false
	}
	return false
}

func updateAppID(u Update) string {
	if u.AppID != "" {
		return u.AppID
	}
	return u.App.ID
}

// taskMatches reports whether task t is the task or Marathon instance id:
// since Marathon 1.5 task IDs are "<instance id>.<n>" or
// "<instance id>._app.<n>", and events name either.
func taskMatches(t Task, id string) bool {
	return t.ID == id || strings.HasPrefix(t.ID, id+".")
}

// updateTask upserts or (terminal) removes u.Task. Fields the event lacks
// (health, agent IP, addresses, ports) keep their known values; an update
// older than the known task (by Task.Updated, then by lifecycle for equal
// times: Marathon stamps TASK_STAGING and TASK_RUNNING in the same
// millisecond) is ignored, as Marathon does not order events
// (docs/docs/event-bus.md), and so is one no newer than the terminal
// update that removed the task.
func (m *sourceModel) updateTask(u Update, now time.Time) bool {
	a, ok := m.apps[u.AppID]
	if !ok {
		return true
	}
	nt := u.Task
	if nt.ID == "" {
		nt.ID = u.TaskID
	}
	if nt.ID == "" {
		return true
	}
	tasks := make([]Task, 0, len(a.Tasks)+1)
	// restated: every task the update matches only moves on in time (an
	// instance id matches each task of the instance).
	found, restated := false, true
	for _, t := range a.Tasks {
		if !taskMatches(t, nt.ID) {
			tasks = append(tasks, t)
			continue
		}
		found = true
		if !t.Updated.IsZero() && (nt.Updated.Before(t.Updated) || nt.Updated.Equal(t.Updated) && nt.State < t.State) {
			m.late++
			return false // older than what we know
		}
		if nt.State != TaskTerminal {
			merged := mergeTask(t, nt)
			restated = restated && sameButUpdated(t, merged)
			tasks = append(tasks, merged)
		} else {
			restated = false
			m.bury(t.ID, nt.Updated, now, false)
		}
	}
	if !found {
		if !m.takesNew(nt, now) {
			return false
		}
		tasks = append(tasks, nt)
	}
	a.Tasks = tasks
	m.apps[a.ID] = a
	if !found || !restated {
		m.mark(a.ID)
	}
	return false
}

// takesNew reports whether nt, a task the app does not have, is to be
// added: not when it ended (its end is remembered, so that an older event
// cannot add it), nor when it is dying, nor when it ended before unless it
// is a newer TASK_RUNNING (back from unreachable).
func (m *sourceModel) takesNew(nt Task, now time.Time) bool {
	g, buried := m.gone[nt.ID]
	switch {
	case nt.State == TaskTerminal:
		if !buried {
			m.bury(nt.ID, nt.Updated, now, false) // never seen: an older event must not add it
		}
		return false
	case buried && (nt.State != TaskRunning || !nt.Updated.After(g.updated)):
		m.late++
		return false // a late event of a task already ended
	case nt.State == TaskKilling:
		return false // a task we never saw running, already dying: no backend to add
	}
	if buried && g.snapshot {
		// Newer than the task's last known state, but perhaps not than its
		// unknown end: taken, and counted late so that a resync tells.
		m.late++
	}
	return true
}

// sameButUpdated reports whether a and b differ in Updated at most: it
// compares every field mergeTask may write but Updated. An
// update that only restates a task (Marathon's periodic task
// reconciliation restates every running task) moves the task's time on,
// for ordering later events, but changes no backend: it is neither built
// nor stored (a restart resyncs before it could matter).
func sameButUpdated(a, b Task) bool {
	return a.ID == b.ID && a.Host == b.Host && a.AgentIP == b.AgentIP && a.State == b.State && a.Health == b.Health &&
		slices.Equal(a.IPs, b.IPs) && slices.Equal(a.HostPorts, b.HostPorts) && a.HealthAt.Equal(b.HealthAt) &&
		a.Name == b.Name && a.AgentID == b.AgentID && reflect.DeepEqual(a.Discovery, b.Discovery) &&
		a.ResourcePorts == b.ResourcePorts && a.DockerIP == b.DockerIP && a.MesosIP == b.MesosIP
}

// bury records that task id ended with an update stamped updated, or, when
// snapshot, was found gone by a snapshot after its last update, updated.
func (m *sourceModel) bury(id string, updated, now time.Time, snapshot bool) {
	if m.gone == nil {
		m.gone = map[string]tombstone{}
	}
	m.gone[id] = tombstone{updated: updated, at: now, snapshot: snapshot}
}

// mergeTask lays the fields of nt that the event carried over old.
func mergeTask(old, nt Task) Task {
	out := old
	out.State = nt.State
	if !nt.Updated.IsZero() {
		out.Updated = nt.Updated
	}
	if nt.Host != "" {
		out.Host = nt.Host
	}
	if nt.AgentIP.IsValid() {
		out.AgentIP = nt.AgentIP
	}
	if len(nt.IPs) > 0 {
		out.IPs = nt.IPs
	}
	if len(nt.HostPorts) > 0 {
		out.HostPorts = nt.HostPorts
	}
	if nt.Health != HealthNone {
		out.Health = nt.Health
	}
	if nt.AgentID != "" {
		out.AgentID = nt.AgentID
	}
	return out
}

// updateHealth sets the health of the tasks matching u.TaskID (looking in
// u.AppID first, then everywhere).
func (m *sourceModel) updateHealth(u Update, now time.Time) bool {
	if u.TaskID == "" {
		return true
	}
	if a, ok := m.apps[u.AppID]; ok && m.setHealth(a, u.TaskID, u.Health, u.Task.Updated) {
		return false
	}
	for _, a := range m.apps {
		if a.ID != u.AppID && m.setHealth(a, u.TaskID, u.Health, u.Task.Updated) {
			return false
		}
	}
	return true
}

// A health event older than the newest health result known for the task
// (at, from the event's timestamp; zero if unknown), or of the same
// millisecond as a snapshot's, is a late or replayed one: it is ignored,
// and reported as applied. One of the same millisecond as the last event
// that says otherwise cannot be ordered: it is applied, and counted late
// too, so that a resync tells.
func (m *sourceModel) setHealth(a App, id string, h Health, at time.Time) bool {
	i := slices.IndexFunc(a.Tasks, func(t Task) bool { return taskMatches(t, id) })
	if i < 0 {
		return false
	}
	if last, ok := m.health[a.Tasks[i].ID]; ok && !at.IsZero() {
		if at.Before(last.at) || at.Equal(last.at) && last.snapshot && h != last.health {
			m.late++
			return true
		}
		if at.Equal(last.at) && h != last.health {
			m.late++
		}
	}
	a.Tasks = slices.Clone(a.Tasks)
	for j := i; j < len(a.Tasks); j++ {
		t := &a.Tasks[j]
		if !taskMatches(*t, id) {
			continue // its health and the time of it are its own
		}
		t.Health = h
		if h == HealthNone {
			delete(m.health, t.ID)
			continue
		}
		last := m.health[t.ID]
		m.health[t.ID] = healthMemo{health: h, at: later(last.at, at), snapshot: last.snapshot && !at.After(last.at)}
	}
	m.apps[a.ID] = a
	m.mark(a.ID)
	return true
}

// updateApp replaces an app's definition and keeps its tasks. An app not
// known yet is added, and reported unknown so that its tasks get fetched.
func (m *sourceModel) updateApp(u Update) bool {
	na := u.App
	if na.ID == "" {
		na.ID = u.AppID
	}
	if na.ID == "" {
		return true
	}
	old, ok := m.apps[na.ID]
	if ok {
		na.Tasks = old.Tasks
		if na.Framework == "" {
			na.Framework = old.Framework
		}
	}
	m.apps[na.ID] = na
	m.mark(na.ID)
	return !ok
}

// replaceApp replaces (or adds) app a whole, with its tasks. The source
// orders its updates (Update.Seq), so no tombstone is needed.
func (m *sourceModel) replaceApp(a App) bool {
	if a.ID == "" {
		return true
	}
	old, ok := m.apps[a.ID]
	if ok && reflect.DeepEqual(old, a) {
		return false
	}
	m.remember(a.Tasks, time.Time{})
	m.apps[a.ID] = a
	m.mark(a.ID)
	return false
}

// setCluster makes cl the source's cluster (a snapshot's; nil: the source
// knows none) and reports whether it changed.
func (m *sourceModel) setCluster(cl *Cluster) bool {
	if reflect.DeepEqual(m.cluster, cl) {
		return false
	}
	m.cluster, m.clusterDirty, m.clusterChanged = cl, true, true
	return true
}

// persist turns the dirty apps (and cluster) into a store batch and clears
// them.
func (m *sourceModel) persist(source string) Batch {
	b := Batch{Source: source}
	if m.clusterDirty {
		b.Cluster, b.SetCluster = m.cluster, true
		m.clusterDirty = false
	}
	for id := range m.dirty {
		if a, ok := m.apps[id]; ok {
			b.Put = append(b.Put, a)
		} else {
			b.Delete = append(b.Delete, id)
		}
	}
	clear(m.dirty)
	return b
}

// appendApps appends every app of the model to dst.
func (m *sourceModel) appendApps(dst []App) []App {
	for _, a := range m.apps {
		dst = append(dst, a)
	}
	return dst
}

package discovery

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// taskUpdateAt is an update of /web's task on port 31000 to state st,
// stamped at.
func taskUpdateAt(at time.Time, st TaskState) Update {
	task := webTask("/web", 31000, st, HealthNone)
	task.Updated = at
	return Update{Kind: UpdateTask, AppID: "/web", Task: task}
}

// TestUpdateTaskOutOfOrder replays old and duplicated task updates, as
// Marathon's event bus may deliver them; found by the chaos test
// (cmd/vipbridge/chaos_test.go, "events out of order and duplicated").
func TestUpdateTaskOutOfOrder(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration, st TaskState) Update { return taskUpdateAt(t0.Add(d), st) }
	tests := []struct {
		name    string
		updates []Update
		want    []TaskState // the task's state after them; empty = gone
	}{
		{name: "in order", updates: []Update{at(0, TaskStarting), at(time.Second, TaskRunning)}, want: []TaskState{TaskRunning}},
		{name: "older staging after running", updates: []Update{at(time.Second, TaskRunning), at(0, TaskStarting)}, want: []TaskState{TaskRunning}},
		{name: "staging in the same millisecond as running", updates: []Update{at(0, TaskStarting), at(0, TaskRunning), at(0, TaskStarting)}, want: []TaskState{TaskRunning}},
		{name: "killing in the same millisecond as running", updates: []Update{at(0, TaskRunning), at(0, TaskKilling), at(0, TaskRunning)}, want: []TaskState{TaskKilling}},
		{name: "running replayed after killed", updates: []Update{at(0, TaskRunning), at(time.Second, TaskTerminal), at(0, TaskRunning)}},
		{name: "running replayed twice after killed", updates: []Update{at(0, TaskRunning), at(time.Second, TaskTerminal), at(0, TaskRunning), at(0, TaskStarting)}},
		{name: "running in the same millisecond as killed", updates: []Update{at(0, TaskRunning), at(0, TaskTerminal), at(0, TaskRunning)}},
		{name: "newer running after lost comes back", updates: []Update{at(0, TaskRunning), at(time.Second, TaskTerminal), at(2*time.Second, TaskRunning)}, want: []TaskState{TaskRunning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSourceModel([]App{webApp("/web", false)})
			for _, u := range tt.updates {
				m.update(u, t0)
			}
			var got []TaskState
			for _, task := range m.apps["/web"].Tasks {
				got = append(got, task.State)
			}
			if len(got) != len(tt.want) || len(got) == 1 && got[0] != tt.want[0] {
				t.Errorf("states = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTombstonesExpireWithResyncs(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	m := newSourceModel([]App{webApp("/web", false, 31000)})
	dead := webTask("/web", 31000, TaskTerminal, HealthNone)
	dead.Updated = t0
	m.update(Update{Kind: UpdateTask, AppID: "/web", Task: dead}, t0)
	if len(m.gone) != 1 {
		t.Fatalf("tombstones after a terminal update = %d, want 1", len(m.gone))
	}
	m.replace([]App{webApp("/web", false)}, t0.Add(tombstoneTTL), time.Minute, time.Time{})
	if len(m.gone) != 1 {
		t.Errorf("tombstone dropped before its TTL")
	}
	m.replace([]App{webApp("/web", false)}, t0.Add(tombstoneTTL+time.Second), time.Minute, time.Time{})
	if len(m.gone) != 0 {
		t.Errorf("tombstones after the TTL = %d, want 0", len(m.gone))
	}
}

// TestUpdateAfterSnapshotRemoval: a task that a snapshot no longer has ended
// between events; a late or replayed event must not bring it back (found by
// the chaos test under load: a replayed TASK_KILLING re-added a weight-0
// backend until the next resync).
func TestUpdateAfterSnapshotRemoval(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration, st TaskState) Update { return taskUpdateAt(t0.Add(d), st) }
	tests := []struct {
		name   string
		replay Update
		want   int  // tasks of /web afterwards
		late   bool // counted late: the reconciler resyncs
	}{
		{name: "old running replayed", replay: at(0, TaskRunning), want: 0, late: true},
		{name: "killing we never saw", replay: at(5*time.Second, TaskKilling), want: 0, late: true},
		{name: "staging replayed", replay: at(-time.Second, TaskStarting), want: 0, late: true},
		{name: "newer running: back from unreachable, or replayed from before an unknown end", replay: at(10*time.Second, TaskRunning), want: 1, late: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSourceModel([]App{webApp("/web", false)})
			m.update(at(time.Second, TaskRunning), t0)
			if n := len(m.apps["/web"].Tasks); n != 1 {
				t.Fatalf("tasks after running = %d, want 1", n)
			}
			m.replace([]App{webApp("/web", false)}, t0.Add(time.Minute), time.Minute, time.Time{}) // the snapshot: task gone
			late := m.late
			m.update(tt.replay, t0.Add(time.Minute))
			if n := len(m.apps["/web"].Tasks); n != tt.want {
				t.Errorf("tasks after replaying %v = %d, want %d", tt.replay.Task.State, n, tt.want)
			}
			if got := m.late > late; got != tt.late {
				t.Errorf("counted late = %v, want %v", got, tt.late)
			}
		})
	}
	t.Run("running replayed after the end of a task never seen", func(t *testing.T) {
		m := newSourceModel([]App{webApp("/web", false)})
		m.update(at(time.Second, TaskTerminal), t0)
		m.update(at(0, TaskRunning), t0)
		if n := len(m.apps["/web"].Tasks); n != 0 {
			t.Errorf("tasks = %d, want 0", n)
		}
	})
	t.Run("killing of a task never seen is not a backend", func(t *testing.T) {
		m := newSourceModel([]App{webApp("/web", false)})
		m.update(at(0, TaskKilling), t0)
		if n := len(m.apps["/web"].Tasks); n != 0 {
			t.Errorf("tasks = %d, want 0", n)
		}
	})
}

// TestUpdateHealthOutOfOrder: a replayed older health event must not undo a
// newer one, before or after a resync (found by the chaos test under load:
// a replayed "unhealthy" drained a healthy backend until the next resync).
func TestUpdateHealthOutOfOrder(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	health := func(d time.Duration, h Health) Update {
		return Update{Kind: UpdateHealth, AppID: "/web", TaskID: webTask("/web", 31000, TaskRunning, h).ID, Health: h,
			Task: Task{Updated: t0.Add(d)}}
	}
	healthOf := func(m *sourceModel) Health { return m.apps["/web"].Tasks[0].Health }
	app := webApp("/web", true, 31000)

	m := newSourceModel([]App{app})
	m.update(health(time.Second, HealthUnhealthy), t0)
	m.update(health(2*time.Second, HealthHealthy), t0)
	m.update(health(time.Second, HealthUnhealthy), t0) // replayed
	if got := healthOf(m); got != HealthHealthy {
		t.Errorf("health after a replayed older event = %v, want healthy", got)
	}

	synced := webApp("/web", true, 31000)
	synced.Tasks[0].Health = HealthHealthy
	m.replace([]App{synced}, t0.Add(time.Minute), time.Minute, time.Time{})
	m.update(health(time.Second, HealthUnhealthy), t0.Add(time.Minute)) // replayed after a resync
	if got := healthOf(m); got != HealthHealthy {
		t.Errorf("health after a resync and a replayed older event = %v, want healthy", got)
	}
	m.update(health(3*time.Second, HealthUnhealthy), t0.Add(time.Minute))
	if got := healthOf(m); got != HealthUnhealthy {
		t.Errorf("health after a newer event = %v, want unhealthy", got)
	}
}

// TestUpdateRestatedTask: an update that restates a running task (as
// Marathon's task reconciliation does for every task) moves the task's
// time on but marks nothing to build or store; one that changes it does.
func TestUpdateRestatedTask(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration, st TaskState, h Health) Update {
		task := webTask("/web", 31000, st, h)
		task.Updated = t0.Add(d)
		return Update{Kind: UpdateTask, AppID: "/web", Task: task}
	}
	tests := []struct {
		name   string
		second Update
		marked bool
	}{
		{name: "restated", second: at(time.Second, TaskRunning, HealthNone), marked: false},
		{name: "restated, same time", second: at(0, TaskRunning, HealthNone), marked: false},
		{name: "state changed", second: at(time.Second, TaskKilling, HealthNone), marked: true},
		{name: "health changed", second: at(time.Second, TaskRunning, HealthUnhealthy), marked: true},
		{name: "killed", second: at(time.Second, TaskTerminal, HealthNone), marked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSourceModel([]App{webApp("/web", false)})
			m.update(at(0, TaskRunning, HealthNone), t0)
			clear(m.changed)
			clear(m.dirty)
			m.update(tt.second, t0)
			_, changed := m.changed["/web"]
			_, dirty := m.dirty["/web"]
			if changed != tt.marked || dirty != tt.marked {
				t.Errorf("changed %v, dirty %v; want %v", changed, dirty, tt.marked)
			}
			if tasks := m.apps["/web"].Tasks; len(tasks) > 0 && !tasks[0].Updated.Equal(tt.second.Task.Updated) {
				t.Errorf("task updated %v, want %v", tasks[0].Updated, tt.second.Task.Updated)
			}
		})
	}
	// An instance id matches every task of the instance: one that changes
	// marks the app though another is only restated (found in review).
	m := newSourceModel([]App{webApp("/web", false)})
	starting, running := at(0, TaskStarting, HealthNone), at(0, TaskRunning, HealthNone)
	starting.Task.ID, running.Task.ID = "inst1.a", "inst1.b"
	m.update(starting, t0)
	m.update(running, t0)
	clear(m.changed)
	clear(m.dirty)
	inst := at(time.Second, TaskRunning, HealthNone)
	inst.Task.ID = "inst1"
	m.update(inst, t0)
	if _, ok := m.changed["/web"]; !ok {
		t.Errorf("an instance update that starts one of its tasks left the app unmarked: %+v", m.apps["/web"].Tasks)
	}

	// The restated time orders later events: an older one is late.
	m = newSourceModel([]App{webApp("/web", false)})
	m.update(at(0, TaskRunning, HealthNone), t0)
	m.update(at(2*time.Second, TaskRunning, HealthNone), t0)
	m.update(at(time.Second, TaskKilling, HealthNone), t0)
	if st := m.apps["/web"].Tasks[0].State; st != TaskRunning || m.late != 1 {
		t.Errorf("after a late killing: state %v, late %d; want running, 1", st, m.late)
	}
}

// TestHealthEventOlderThanSnapshot: a health event older than the health
// result a snapshot reported (Task.HealthAt) is late: ignored and counted
// (found by the chaos test under load, "events out of order and
// duplicated": a replayed "unhealthy" drained a backend whose health had
// come from a resync, until the next periodic resync).
func TestHealthEventOlderThanSnapshot(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	health := func(d time.Duration, h Health) Update {
		return Update{Kind: UpdateHealth, AppID: "/web", TaskID: webTask("/web", 31000, TaskRunning, h).ID, Health: h,
			Task: Task{Updated: t0.Add(d)}}
	}
	tests := []struct {
		name     string
		before   []Update      // applied before the snapshot
		healthAt time.Duration // the snapshot's HealthAt after t0; 0: none
		event    Update
		want     Health
		late     int
	}{
		{name: "older unhealthy replayed", healthAt: 2 * time.Second, event: health(time.Second, HealthUnhealthy), want: HealthHealthy, late: 1},
		{name: "newer unhealthy", healthAt: 2 * time.Second, event: health(3*time.Second, HealthUnhealthy), want: HealthUnhealthy},
		{name: "same result again", healthAt: 2 * time.Second, event: health(2*time.Second, HealthHealthy), want: HealthHealthy},
		{name: "same millisecond as the snapshot's result, other health: no newer", healthAt: 2 * time.Second,
			event: health(2*time.Second, HealthUnhealthy), want: HealthHealthy, late: 1},
		{name: "same millisecond as the last event, other health: cannot be ordered", before: []Update{health(2*time.Second, HealthHealthy)},
			event: health(2*time.Second, HealthUnhealthy), want: HealthUnhealthy, late: 1},
		{name: "snapshot result older than the last event: the event's time counts", before: []Update{health(3*time.Second, HealthHealthy)},
			healthAt: 2 * time.Second, event: health(3*time.Second, HealthUnhealthy), want: HealthUnhealthy, late: 1},
		{name: "older than the snapshot, newer than the last event", before: []Update{health(time.Second, HealthHealthy)},
			healthAt: 3 * time.Second, event: health(2*time.Second, HealthUnhealthy), want: HealthHealthy, late: 1},
		{name: "snapshot older than the last event", before: []Update{health(3*time.Second, HealthHealthy)},
			healthAt: time.Second, event: health(2*time.Second, HealthUnhealthy), want: HealthHealthy, late: 1},
		{name: "snapshot without a time: age unknown", event: health(time.Second, HealthUnhealthy), want: HealthUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSourceModel([]App{webApp("/web", true, 31000)})
			for _, u := range tt.before {
				m.update(u, t0)
			}
			snap := webApp("/web", true, 31000)
			snap.Tasks[0].Health = HealthHealthy
			if tt.healthAt != 0 {
				snap.Tasks[0].HealthAt = t0.Add(tt.healthAt)
			}
			m.replace([]App{snap}, t0.Add(time.Minute), time.Minute, time.Time{})
			m.late = 0
			m.update(tt.event, t0.Add(time.Minute))
			if got := m.apps["/web"].Tasks[0].Health; got != tt.want || m.late != tt.late {
				t.Errorf("health %v, late %d; want %v, %d", got, m.late, tt.want, tt.late)
			}
		})
	}
}

// TestHealthEventTimePerTask: a health event moves on the time of the
// tasks it names only. A replayed event of one task must not set back
// another's, after which that task's own replayed older event would pass
// for new (found by the chaos test: a replayed "unhealthy" drained a
// healthy backend, with no resync).
func TestHealthEventTimePerTask(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	health := func(port uint16, d time.Duration, h Health) Update {
		return Update{Kind: UpdateHealth, AppID: "/web", TaskID: webTask("/web", port, TaskRunning, h).ID, Health: h,
			Task: Task{Updated: t0.Add(d)}}
	}
	m := newSourceModel([]App{webApp("/web", true, 31000, 31001)})
	for _, u := range []Update{
		health(31000, time.Second, HealthHealthy),
		health(31001, 4*time.Second, HealthUnhealthy),
		health(31001, 5*time.Second, HealthHealthy),
		health(31000, time.Second, HealthHealthy),     // duplicated
		health(31001, 4*time.Second, HealthUnhealthy), // replayed
	} {
		m.update(u, t0)
	}
	if got := m.apps["/web"].Tasks[1].Health; got != HealthHealthy || m.late != 1 {
		t.Errorf("second task: health %v, late %d after its replayed older event; want healthy, 1", got, m.late)
	}
}

// TestHealthTimeIsNoChange: HealthAt moves on at every health check, so a
// resync where only it moved changes no app (nothing rebuilt or stored),
// and the model's apps carry none of it; the time is still remembered.
func TestHealthTimeIsNoChange(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	snap := func(d time.Duration) App {
		a := webApp("/web", true, 31000)
		a.Tasks[0].Health = HealthHealthy
		a.Tasks[0].HealthAt = t0.Add(d)
		return a
	}
	m := newSourceModel(nil)
	m.replace([]App{snap(time.Second)}, t0, time.Minute, time.Time{})
	m.persist("marathon")
	clear(m.changed)
	second := snap(2 * time.Second)
	m.replace([]App{second}, t0.Add(time.Minute), time.Minute, time.Time{})
	if len(m.changed) != 0 || len(m.dirty) != 0 {
		t.Errorf("a resync that only moved HealthAt marked changed %v, dirty %v", m.changed, m.dirty)
	}
	if at := m.apps["/web"].Tasks[0].HealthAt; !at.IsZero() {
		t.Errorf("model task HealthAt = %v, want zero (it is neither built nor stored)", at)
	}
	if at := second.Tasks[0].HealthAt; !at.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("the snapshot's own task was changed: HealthAt %v", at)
	}
	u := Update{Kind: UpdateHealth, AppID: "/web", TaskID: second.Tasks[0].ID, Health: HealthUnhealthy,
		Task: Task{Updated: t0.Add(1500 * time.Millisecond)}}
	m.update(u, t0.Add(time.Minute))
	if got := m.apps["/web"].Tasks[0].Health; got != HealthHealthy {
		t.Errorf("health after an event older than the last snapshot's result = %v, want healthy", got)
	}
}

// TestSameButUpdatedComparesEveryField fails when a field is added to Task
// and sameButUpdated, a hand-written comparison, is not taught it.
func TestSameButUpdatedComparesEveryField(t *testing.T) {
	ignored := map[string]bool{"Updated": true} // what sameButUpdated is for
	base := webTask("/web", 31000, TaskRunning, HealthHealthy)
	base.IPs = []netip.Addr{netip.MustParseAddr("10.1.0.1")}
	base.Updated = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	base.HealthAt = base.Updated
	typ := reflect.TypeFor[Task]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		other := base
		switch p := reflect.ValueOf(&other).Elem().Field(i).Addr().Interface().(type) {
		case *string:
			*p += "x"
		case *netip.Addr:
			*p = p.Next()
		case *[]netip.Addr:
			*p = []netip.Addr{netip.MustParseAddr("10.1.0.2")}
		case *[]uint16:
			*p = []uint16{1}
		case *TaskState:
			*p = TaskKilling
		case *Health:
			*p = HealthUnhealthy
		case *time.Time:
			*p = p.Add(time.Millisecond)
		case *int:
			*p++
		case **DiscoveryInfo:
			*p = &DiscoveryInfo{Name: "x"}
		default:
			t.Fatalf("Task.%s: a field of type %T; teach this test to change it, and sameButUpdated to compare it", name, p)
		}
		if got := sameButUpdated(base, other); got != ignored[name] {
			t.Errorf("sameButUpdated with Task.%s changed = %v, want %v", name, got, ignored[name])
		}
	}
}

// TestSnapshotKeepsNewerUpdates: a snapshot asked for before an update
// may have been read before the update happened; the apps the update
// changed keep the model's version (or absence), the others follow the
// snapshot.
func TestSnapshotKeepsNewerUpdates(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	m := newSourceModel([]App{webApp("/web", false, 31000), webApp("/gone", false, 31001), webApp("/other", false, 31002)})
	started := t0 // the snapshot is asked for
	flipped := webTask("/web", 31000, TaskKilling, HealthNone)
	m.update(Update{Kind: UpdateTask, AppID: "/web", Task: flipped}, t0.Add(time.Second))
	m.update(Update{Kind: UpdateAppRemoved, AppID: "/gone"}, t0.Add(time.Second))
	m.update(Update{Kind: UpdateApp, App: App{ID: "/new", Framework: "marathon"}}, t0.Add(time.Second))
	// The snapshot was read before all three, and /other changed since
	// the model had it.
	other := webApp("/other", false, 31003)
	m.replace([]App{webApp("/web", false, 31000), webApp("/gone", false, 31001), other}, t0.Add(2*time.Second), time.Minute, started)
	if got := m.apps["/web"].Tasks[0].State; got != TaskKilling {
		t.Errorf("/web's task is %v after the older snapshot, want the update's killing", got)
	}
	if _, ok := m.apps["/gone"]; ok {
		t.Error("/gone came back with the older snapshot")
	}
	if _, ok := m.apps["/new"]; !ok {
		t.Error("/new, created after the snapshot was asked for, was dropped by it")
	}
	if !reflect.DeepEqual(m.apps["/other"], other) {
		t.Errorf("/other = %+v, want the snapshot's", m.apps["/other"])
	}
	// The next snapshot, asked for after the updates, is the truth again.
	m.replace([]App{webApp("/web", false, 31000)}, t0.Add(time.Minute), time.Minute, t0.Add(30*time.Second))
	if got := m.apps["/web"].Tasks[0].State; got != TaskRunning || len(m.apps) != 1 {
		t.Errorf("after a later snapshot: /web's task %v, %d apps; want running, 1", got, len(m.apps))
	}
}

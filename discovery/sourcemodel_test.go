package discovery

import (
	"testing"
	"time"
)

// TestUpdateTaskOutOfOrder replays old and duplicated task updates, as
// Marathon's event bus may deliver them; found by the chaos test
// (cmd/vipbridge/chaos_test.go, "events out of order and duplicated").
func TestUpdateTaskOutOfOrder(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration, st TaskState) Update {
		task := webTask("/web", 31000, st, HealthNone)
		task.Updated = t0.Add(d)
		return Update{Kind: UpdateTask, AppID: "/web", Task: task}
	}
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
	m.replace([]App{webApp("/web", false)}, t0.Add(tombstoneTTL), time.Minute)
	if len(m.gone) != 1 {
		t.Errorf("tombstone dropped before its TTL")
	}
	m.replace([]App{webApp("/web", false)}, t0.Add(tombstoneTTL+time.Second), time.Minute)
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
	at := func(d time.Duration, st TaskState) Update {
		task := webTask("/web", 31000, st, HealthNone)
		task.Updated = t0.Add(d)
		return Update{Kind: UpdateTask, AppID: "/web", Task: task}
	}
	tests := []struct {
		name   string
		replay Update
		want   int // tasks of /web afterwards
	}{
		{name: "old running replayed", replay: at(0, TaskRunning), want: 0},
		{name: "killing we never saw", replay: at(5*time.Second, TaskKilling), want: 0},
		{name: "staging replayed", replay: at(-time.Second, TaskStarting), want: 0},
		{name: "newer running: back from unreachable", replay: at(10*time.Second, TaskRunning), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSourceModel([]App{webApp("/web", false)})
			m.update(at(time.Second, TaskRunning), t0)
			if n := len(m.apps["/web"].Tasks); n != 1 {
				t.Fatalf("tasks after running = %d, want 1", n)
			}
			m.replace([]App{webApp("/web", false)}, t0.Add(time.Minute), time.Minute) // the snapshot: task gone
			m.update(tt.replay, t0.Add(time.Minute))
			if n := len(m.apps["/web"].Tasks); n != tt.want {
				t.Errorf("tasks after replaying %v = %d, want %d", tt.replay.Task.State, n, tt.want)
			}
		})
	}
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
	m.replace([]App{synced}, t0.Add(time.Minute), time.Minute)
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

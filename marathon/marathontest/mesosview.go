package marathontest

// What an operator stream subscriber is told: the master's agents,
// frameworks and tasks in the v1 JSON shape (apache/mesos
// include/mesos/v1/master/master.proto), the SUBSCRIBED that carries them,
// and the events that take one view to the next, as the master sends them.

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mesosView is what a subscriber has been told: the agents, frameworks
// and tasks of the master in v1 shape. Of each task it keeps what a change
// is told by (state, health) and the TASK_UPDATED its end would send, not
// its rendering: a view of 100,000 tasks is cheap to keep and to compare.
type mesosView struct {
	recovering bool
	agents     []obj          // v1 GetAgents.Agent, in agent order
	recovered  []obj          // v1 AgentInfo of agents not re-registered
	frameworks map[string]obj // v1 FrameworkInfo by ID
	tasks      map[taskRef]viewTask
	order      []taskRef // in state order
}

// taskRef names a Mesos task: task IDs are unique per framework.
type taskRef struct{ framework, task string }

// viewTask is what a view keeps of a task.
type viewTask struct {
	state  string
	health *bool // the latest status' health
	killed obj   // the TASK_UPDATED to TASK_KILLED that its end sends
}

// mesosView renders the cluster as the operator API shows it, and the
// events that take a subscriber told prev to it, in the order Mesos sends
// them. With prev nil (a new subscription) every task is rendered, in
// state order, for SUBSCRIBED; otherwise only the new and changed tasks
// are, so that a change costs a walk of the tasks, not their rendering.
func (s *Server) mesosView(prev *mesosView) (v *mesosView, rendered, evs []obj) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	v = &mesosView{recovering: s.isRecovering(), frameworks: map[string]obj{}, tasks: map[taskRef]viewTask{}}
	for _, ag := range c.agents {
		info := obj{"id": obj{"value": ag.ID}, "hostname": ag.Hostname, "port": 5051}
		if v.recovering {
			v.recovered = append(v.recovered, info)
			continue
		}
		v.agents = append(v.agents, obj{"agent_info": info, "pid": "slave(1)@" + ag.IP.String() + ":5051", "active": true, "version": "1.9.0"})
	}
	if v.recovering {
		return v, nil, v.eventsFrom(prev, nil)
	}
	v.frameworks[c.frameworkID] = v1Framework(c.frameworkID, c.framework)
	for _, f := range c.others {
		id := c.otherFrameworkID(f)
		v.frameworks[id] = v1Framework(id, f.Name)
	}
	var taskEvents []obj
	c.walkMesosTasks(s.now(), func(ref taskRef, state string, healthy *bool, render func() obj) {
		v.order = append(v.order, ref)
		var old viewTask
		had := false
		if prev != nil {
			old, had = prev.tasks[ref]
		}
		if had && old.state == state && sameHealth(old.health, healthy) {
			v.tasks[ref] = old
			return
		}
		t := v1Task(render())
		v.tasks[ref] = viewTask{state: state, health: clonedBool(healthy), killed: killedEvent(t)}
		switch {
		case prev == nil:
			rendered = append(rendered, t)
		case !had:
			added := maps.Clone(t)
			added["state"], added["statuses"] = "TASK_STAGING", []any{}
			taskEvents = append(taskEvents, obj{"type": "TASK_ADDED", "task_added": obj{"task": added}}, taskUpdated(t, ""))
		case old.state != state:
			taskEvents = append(taskEvents, taskUpdated(t, ""))
		default:
			taskEvents = append(taskEvents, taskUpdated(t, "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"))
		}
	})
	return v, rendered, v.eventsFrom(prev, taskEvents)
}

// walkMesosTasks calls f for each task the master knows, in state order
// (Marathon's, then the other frameworks'), with its state, its latest
// status' health and how to render it as /master/state does.
func (c *cluster) walkMesosTasks(now time.Time, f func(ref taskRef, state string, healthy *bool, render func() obj)) {
	for _, a := range c.sortedApps() {
		for _, t := range a.tasks {
			f(taskRef{c.frameworkID, t.id}, t.state, t.healthy, func() obj { return c.mesosTask(a, t) })
		}
	}
	for _, fw := range c.others {
		id := c.otherFrameworkID(fw)
		for _, ft := range fw.Tasks {
			state := ft.State
			if state == "" {
				state = "TASK_RUNNING"
			}
			f(taskRef{id, ft.ID}, state, ft.Healthy, func() obj { return c.otherTask(id, ft, now) })
		}
	}
}

func v1Framework(id, name string) obj {
	return obj{"id": obj{"value": id}, "name": name, "hostname": "127.0.0.1", "user": "root"}
}

func clonedBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// subscribed is the SUBSCRIBED event of the view, whose tasks are rendered.
func (v *mesosView) subscribed(interval time.Duration, tasks []obj) obj {
	agents := obj{"agents": orEmpty(v.agents)}
	if len(v.recovered) > 0 {
		agents["recovered_agents"] = v.recovered
	}
	var frameworks []obj
	for _, id := range slices.Sorted(maps.Keys(v.frameworks)) {
		frameworks = append(frameworks, obj{"framework_info": v.frameworks[id], "active": true, "connected": true, "recovered": false})
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

// eventsFrom lists the events that take a subscriber from prev to v, in
// the order Mesos sends them: agents, frameworks, the tasks' events (new
// tasks as TASK_ADDED in TASK_STAGING without statuses then TASK_UPDATED
// to their state, changed tasks), ended tasks (TASK_UPDATED to
// TASK_KILLED), removed frameworks. None for a new subscription (prev nil).
func (v *mesosView) eventsFrom(prev *mesosView, taskEvents []obj) []obj {
	if prev == nil {
		return nil
	}
	var evs []obj
	known := map[any]bool{}
	for _, a := range prev.agents {
		known[a["agent_info"].(obj)["id"].(obj)["value"]] = true
	}
	for _, a := range v.agents {
		if !known[a["agent_info"].(obj)["id"].(obj)["value"]] {
			evs = append(evs, obj{"type": "AGENT_ADDED", "agent_added": obj{"agent": a}})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(v.frameworks)) {
		if _, ok := prev.frameworks[id]; !ok {
			evs = append(evs, obj{"type": "FRAMEWORK_ADDED", "framework_added": obj{"framework": obj{"framework_info": v.frameworks[id], "active": true, "connected": true}}})
		}
	}
	evs = append(evs, taskEvents...)
	for _, k := range prev.order {
		if _, ok := v.tasks[k]; !ok {
			evs = append(evs, prev.tasks[k].killed)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(prev.frameworks)) {
		if _, ok := v.frameworks[id]; !ok {
			evs = append(evs, obj{"type": "FRAMEWORK_REMOVED", "framework_removed": obj{"framework_info": prev.frameworks[id]}})
		}
	}
	return evs
}

func sameHealth(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// killedEvent is the TASK_UPDATED that ends v1 task t: TASK_KILLED, its
// latest status restated without health.
func killedEvent(t obj) obj {
	gone := maps.Clone(t)
	gone["state"] = "TASK_KILLED"
	last := obj{}
	if st := t["statuses"].([]any); len(st) > 0 {
		last = maps.Clone(st[len(st)-1].(obj))
	}
	last["state"] = "TASK_KILLED"
	delete(last, "healthy")
	gone["statuses"] = []any{last}
	return taskUpdated(gone, "REASON_TASK_KILLED_DURING_LAUNCH")
}

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

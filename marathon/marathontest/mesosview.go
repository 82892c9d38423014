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

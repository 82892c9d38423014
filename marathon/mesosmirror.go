package marathon

// The operator stream's mirror of the leading master: the tasks, agents
// and frameworks of the last SUBSCRIBED snapshot with every event since
// applied, and the tasks kept through a master failover. It is what the
// Mesos source hands discovery while the stream runs; it decodes nothing
// and logs nothing.

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// taskKey identifies a Mesos task: task IDs are unique per framework
// only (Spark numbers its tasks; dcos/dcos-net commit 831fcda).
type taskKey struct{ framework, task string }

// mesosMirror is the stream's copy of the master's state. Not safe for
// concurrent use: MesosStream guards it. A task stored in it is never
// changed in place (an update stores a changed copy), so a clone shares
// tasks safely.
type mesosMirror struct {
	leader netip.AddrPort
	// marathonID is the framework whose tasks the mirror does not keep:
	// the followed Marathon's, which the Marathon source serves ("" keeps
	// every task).
	marathonID string
	tasks      map[taskKey]*mesosTask
	frameworks map[string]mesosFrameworkInfoJSON // by ID
	agents     map[string]mesosAgentJSON         // by ID
	// held are tasks a failover snapshot lacked while their agent had not
	// re-registered: served as they were until the agent re-registers
	// and then for agentTasksWait, or until the failover grace ends.
	held      map[taskKey]*mesosTask
	heldUntil map[string]time.Time // per agent ID
	// byAgent indexes the tasks, live and held, by agent ID: an agent
	// event touches its tasks only (a failed-over master's agents
	// re-register one by one). Clones have none.
	byAgent map[string]map[taskKey]struct{}
	// heldAgents are the agents of held tasks as the previous master knew
	// them: kept, with their addresses, until their tasks are given up.
	heldAgents map[string]mesosAgentJSON
}

// Waiting for tasks after a master failover, as dcos-net waits before
// publishing a failed-over master's state (dcos_net_mesos_listener.erl
// maybe_next_phase*/2: mesos_agents_readiness_timeout 10 min for the
// recovered agents, then mesos_tasks_readiness_timeout 10 s; dcos/dcos#6268
// "avoid flushing of DNS records"). Ten minutes is also Mesos's
// --agent_reregister_timeout default: an agent that has not re-registered
// by then is gone, and its tasks with it.
const (
	defaultFailoverGrace = 10 * time.Minute
	agentTasksWait       = 10 * time.Second
)

func newMesosMirror() *mesosMirror {
	return &mesosMirror{tasks: map[taskKey]*mesosTask{}, frameworks: map[string]mesosFrameworkInfoJSON{},
		agents: map[string]mesosAgentJSON{}, held: map[taskKey]*mesosTask{}, heldUntil: map[string]time.Time{},
		heldAgents: map[string]mesosAgentJSON{}, byAgent: map[string]map[taskKey]struct{}{}}
}

// clone copies the mirror's maps, sharing the tasks.
func (m *mesosMirror) clone() *mesosMirror {
	c := *m
	c.tasks, c.frameworks, c.agents = maps.Clone(m.tasks), maps.Clone(m.frameworks), maps.Clone(m.agents)
	c.held, c.heldUntil, c.heldAgents = maps.Clone(m.held), maps.Clone(m.heldUntil), maps.Clone(m.heldAgents)
	c.byAgent = nil
	return &c
}

// keep stores task k, live or held, indexing it by agent.
func (m *mesosMirror) keep(k taskKey, t *mesosTask, held bool) {
	m.drop(k)
	if held {
		m.held[k] = t
	} else {
		m.tasks[k] = t
	}
	m.index(k, t.agentID)
}

func (m *mesosMirror) index(k taskKey, agent string) {
	set := m.byAgent[agent]
	if set == nil {
		set = map[taskKey]struct{}{}
		m.byAgent[agent] = set
	}
	set[k] = struct{}{}
}

// drop forgets task k, live or held.
func (m *mesosMirror) drop(k taskKey) {
	t, ok := m.tasks[k]
	if !ok {
		t, ok = m.held[k]
	}
	if !ok {
		return
	}
	delete(m.tasks, k)
	delete(m.held, k)
	if set := m.byAgent[t.agentID]; set != nil {
		delete(set, k)
		if len(set) == 0 {
			delete(m.byAgent, t.agentID)
		}
	}
}

// subscribed replaces the mirror with a SUBSCRIBED snapshot. Tasks the
// mirror had that the snapshot lacks, on agents the new master has not
// seen re-register, are held until the agent had its chance: after a
// failover the first snapshot may miss every task (recovered-agents.json).
// The mirror takes sub's tasks over.
func (m *mesosMirror) subscribed(sub *mesosSubscribedEvent, leader netip.AddrPort, now time.Time, grace time.Duration) {
	prev := *m
	*m = *newMesosMirror()
	m.leader = leader
	m.marathonID = sub.Skipped
	for _, f := range sub.Frameworks {
		m.frameworks[f.FrameworkInfo.ID.Value] = f.FrameworkInfo
	}
	for _, a := range sub.Agents {
		m.agents[a.AgentInfo.ID.Value] = a.agent()
	}
	m.tasks = sub.Tasks
	for k, t := range m.tasks {
		m.index(k, t.agentID)
	}
	for _, tasks := range []map[taskKey]*mesosTask{prev.tasks, prev.held} {
		for k, t := range tasks {
			if _, ok := m.tasks[k]; ok || m.marathonID != "" && k.framework == m.marathonID {
				continue
			}
			agent := t.agentID
			if _, registered := m.agents[agent]; registered {
				continue // its agent reported: the task is gone
			}
			m.keep(k, t, true)
			if _, ok := m.heldUntil[agent]; !ok {
				until, held := prev.heldUntil[agent]
				if !held {
					until = now.Add(grace)
				}
				m.heldUntil[agent] = until
			}
			if a, ok := prev.agents[agent]; ok {
				m.heldAgents[agent] = a
			} else if a, ok := prev.heldAgents[agent]; ok {
				m.heldAgents[agent] = a
			}
			// A failed-over master learns frameworks as their agents
			// re-register: the task keeps its framework's name.
			if _, ok := m.frameworks[k.framework]; !ok {
				if f, ok := prev.frameworks[k.framework]; ok {
					m.frameworks[k.framework] = f
				}
			}
		}
	}
}

// taskAdded records a task (new, or reported by a re-registering agent);
// a terminal one, or one of framework marathonID, is forgotten. It returns
// the task's key.
func (m *mesosMirror) taskAdded(t *mesosTaskJSON) taskKey {
	k := taskKey{t.frameworkID(), t.taskID()}
	m.drop(k)
	if !isTerminal(t.State) && (m.marathonID == "" || k.framework != m.marathonID) {
		m.keep(k, t.compact(nil), false)
	}
	return k
}

// taskUpdated merges a TASK_UPDATED into the task it names and reports
// whether the mirror knew the task. The task keeps everything from
// TASK_ADDED or the snapshot (name, discovery, labels, resources); the
// state is the event's (more recent than the status': DCOS_OSS-3539);
// the status joins the task's statuses, keeping the last known network
// infos and health when it lacks them (dcos-net handle_task_updated/2).
// A terminal task is forgotten.
// The followed Marathon's tasks are not kept: an update of one is known.
func (m *mesosMirror) taskUpdated(u *mesosTaskUpdatedJSON) (taskKey, bool) {
	k := taskKey{u.FrameworkID.Value, u.taskID()}
	if m.marathonID != "" && k.framework == m.marathonID {
		return k, true
	}
	old, ok := m.tasks[k]
	if !ok {
		old, ok = m.held[k]
	}
	if !ok {
		return k, false
	}
	m.drop(k)
	state := u.State
	if state == "" && u.Status != nil {
		state = u.Status.State
	}
	if !isTerminal(state) {
		m.keep(k, old.updated(state, u.Status), false)
	}
	return k, true
}

// agentAdded records a (re-)registered agent; its held tasks get
// agentTasksWait to be reported again.
func (m *mesosMirror) agentAdded(a mesosV1AgentJSON, now time.Time) {
	id := a.AgentInfo.ID.Value
	m.agents[id] = a.agent()
	if until, ok := m.heldUntil[id]; ok && now.Add(agentTasksWait).Before(until) {
		m.heldUntil[id] = now.Add(agentTasksWait)
	}
}

func (m *mesosMirror) agentRemoved(id string) { delete(m.agents, id) }

func (m *mesosMirror) frameworkAdded(f mesosFrameworkInfoJSON) { m.frameworks[f.ID.Value] = f }

// frameworkRemoved forgets a framework and its tasks, held ones too:
// Mesos removes them with it.
func (m *mesosMirror) frameworkRemoved(id string) {
	delete(m.frameworks, id)
	m.dropFramework(id)
}

// dropFramework forgets the tasks, live and held, of framework id.
func (m *mesosMirror) dropFramework(id string) {
	for _, tasks := range []map[taskKey]*mesosTask{m.tasks, m.held} {
		for k := range tasks {
			if k.framework == id {
				m.drop(k)
			}
		}
	}
}

// agentTasks lists the tasks (held ones too) on agent id.
func (m *mesosMirror) agentTasks(id string) []taskKey {
	return slices.Collect(maps.Keys(m.byAgent[id]))
}

// frameworkTasks lists the tasks (held ones too) of framework id, and the
// App ID each has now.
func (m *mesosMirror) frameworkTasks(id string) ([]taskKey, map[taskKey]string) {
	var keys []taskKey
	ids := map[taskKey]string{}
	name := m.frameworkName(id)
	for _, tasks := range []map[taskKey]*mesosTask{m.tasks, m.held} {
		for k := range tasks {
			if k.framework == id {
				keys = append(keys, k)
				ids[k] = name + "/" + k.task
			}
		}
	}
	return keys, ids
}

// follow makes framework id the followed Marathon's: its tasks, which the
// Marathon source serves, are dropped and no longer kept.
func (m *mesosMirror) follow(id string) {
	m.marathonID = id
	if id != "" {
		m.dropFramework(id)
	}
}

// expire drops held tasks whose wait ended and reports whether any was
// dropped, and when the next wait ends (zero for none).
func (m *mesosMirror) expire(now time.Time) (dropped bool, next time.Time) {
	for agent, until := range m.heldUntil {
		if now.Before(until) {
			if next.IsZero() || until.Before(next) {
				next = until
			}
			continue
		}
		delete(m.heldUntil, agent)
		delete(m.heldAgents, agent)
		for k := range m.byAgent[agent] {
			if _, held := m.held[k]; held {
				m.drop(k)
				dropped = true
			}
		}
	}
	return dropped, next
}

// state is the mirror as discovery sees it: the tasks (held ones too) of
// every framework but marathonID's, one App each, and the cluster; agents
// maps agent host names to their pid's address.
func (m *mesosMirror) state(marathonID string) (discovery.State, map[string]netip.Addr) {
	d := m.decoder(marathonID)
	for k, t := range m.tasks {
		d.addTask(k.framework, m.frameworkName(k.framework), t)
	}
	for k, t := range m.held { // a key is never in both
		d.addTask(k.framework, m.frameworkName(k.framework), t)
	}
	return discovery.State{Apps: d.apps, Cluster: d.cluster}, d.agents
}

// decoder is a mesosDecoder holding the mirror's agents and frameworks,
// in ID order. The agents of held tasks are listed too, as the previous
// master knew them: they are kept as their tasks are (mesos-dns names no
// task of an unknown agent).
func (m *mesosMirror) decoder(marathonID string) *mesosDecoder {
	d := newMesosDecoder(marathonID)
	d.cluster.Leader = m.leader
	for _, id := range slices.Sorted(maps.Keys(m.agents)) {
		d.addAgent(m.agents[id])
	}
	for _, id := range slices.Sorted(maps.Keys(m.heldAgents)) {
		if _, registered := m.agents[id]; !registered {
			d.addAgent(m.heldAgents[id])
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.frameworks)) {
		f := m.frameworks[id]
		d.addFramework(id, f.Name, "", f.Hostname)
	}
	return d
}

func (m *mesosMirror) frameworkName(id string) string {
	return frameworkName(m.frameworks[id].Name, id)
}

// app is the App of task k as discovery sees it, and its ID; ok is false
// when the task is Marathon's (marathonID) or not known (ended), in which
// case id is the App's ID it would have had.
func (m *mesosMirror) app(k taskKey, marathonID string) (app discovery.App, id string, ok bool) {
	name := m.frameworkName(k.framework)
	id = name + "/" + k.task
	if marathonID != "" && k.framework == marathonID {
		return discovery.App{}, id, false
	}
	if t, live := m.tasks[k]; live {
		app, ok = t.toApp(name, m.agents)
		return app, id, ok
	}
	t, held := m.held[k]
	if !held {
		return discovery.App{}, id, false
	}
	agents := m.agents
	if a, ok := m.heldAgents[t.agentID]; ok {
		agents = map[string]mesosAgentJSON{t.agentID: a}
	}
	app, ok = t.toApp(name, agents)
	return app, id, ok
}

// isTerminal reports whether a Mesos task state ends the task.
func isTerminal(state string) bool {
	return FrameworkTaskState(state) == discovery.TaskTerminal
}

package marathon

// What vipbridge keeps of a Mesos task: the fields its App is made of and
// nothing else. A decoded v1 task holds its resources, every status with
// its labels and container status, its executor…: ~10 KB of heap each, a
// gigabyte at 100,000 tasks. The operator stream's mirror keeps this
// compact form (a few hundred bytes), merges TASK_UPDATED into it and
// builds the task's App from it; the /master/state poll goes the same way.

import (
	"net/netip"

	"github.com/vipbridge/vipbridge/discovery"
)

// mesosTask is a Mesos task as the mirror keeps it. It is never changed in
// place once stored (mirror clones share tasks): updated returns a copy.
type mesosTask struct {
	id, name, agentID string
	// state is the task's state (TASK_UPDATED's, which is newer than its
	// status': DCOS_OSS-3539); "" falls back to the latest status'.
	state string
	// healthCheck is whether the task defines a health check.
	healthCheck bool
	// latest is the newest status, running the newest TASK_RUNNING one
	// (the same one when the newest is running); nil for none.
	latest, running *mesosTaskStatus
	ports           [][2]int // the task's port resources
	discovery       *mesosDiscoveryJSON
	// legacy are the task's VIP_PORT<n> labels, the only task labels read.
	legacy []discovery.Label
}

// mesosTaskStatus is what toApp reads of a task status.
type mesosTaskStatus struct {
	state     string
	timestamp float64
	health    discovery.Health
	ips       []netip.Addr
	// dockerIP and mesosIP are the executor's addresses from the status
	// labels (Docker.NetworkSettings.IPAddress, MesosContainerizer.…).
	dockerIP, mesosIP netip.Addr
}

// interner shares the strings many tasks repeat (framework and agent IDs,
// states) while a snapshot is decoded. The zero value is not usable.
type interner map[string]string

func (in interner) get(s string) string {
	if in == nil {
		return s
	}
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// compact is the part of t the mirror keeps; in may be nil.
func (t *mesosTaskJSON) compact(in interner) *mesosTask {
	mt := &mesosTask{
		id: t.taskID(), name: t.Name, agentID: in.get(t.agentID()), state: in.get(t.State),
		healthCheck: bool(t.HealthCheck), ports: t.Resources.Ports, discovery: t.Discovery,
	}
	latest, running := t.latestStatus(""), t.latestStatus("TASK_RUNNING")
	if latest != nil {
		mt.latest = compactStatus(latest, in)
	}
	switch {
	case running == latest:
		mt.running = mt.latest
	case running != nil:
		mt.running = compactStatus(running, in)
	}
	for _, l := range t.Labels {
		if _, ok := legacyPortIndex(l.Key); ok {
			mt.legacy = append(mt.legacy, l)
		}
	}
	return mt
}

func compactStatus(s *mesosStatusJSON, in interner) *mesosTaskStatus {
	return &mesosTaskStatus{
		state: in.get(s.State), timestamp: s.Timestamp, health: boolHealth(s.Healthy), ips: statusIPs(s),
		dockerIP: labelIP(s.Labels, "Docker.NetworkSettings.IPAddress"),
		mesosIP:  labelIP(s.Labels, "MesosContainerizer.NetworkSettings.IPAddress"),
	}
}

// updated is the task after a TASK_UPDATED to state with status s (nil:
// none). The task keeps everything from TASK_ADDED or the snapshot (name,
// discovery, labels, resources); the status becomes the latest, keeping
// the last known addresses when it has no container status and the last
// known health when it has none and the state did not change (dcos-net
// handle_task_updated/2), and never older than the latest known whatever
// the agents' clocks say.
func (mt *mesosTask) updated(state string, s *mesosStatusJSON) *mesosTask {
	c := *mt
	c.state = state
	if s == nil {
		return &c
	}
	st := compactStatus(s, nil)
	if prev := mt.latest; prev != nil {
		if s.ContainerStatus == nil {
			st.ips = prev.ips
		}
		if s.Healthy == nil && s.State == prev.state {
			st.health = prev.health
		}
		st.timestamp = max(st.timestamp, prev.timestamp)
	}
	c.latest = st
	if st.state == "TASK_RUNNING" {
		c.running = st
	}
	return &c
}

// toApp is the task's App, named "<framework>/<task id>": its agent from
// agents (by agent ID), health from the latest status, addresses from the
// latest TASK_RUNNING status as mesos-dns takes them, else the latest.
func (mt *mesosTask) toApp(framework string, agents map[string]mesosAgentJSON) (discovery.App, bool) {
	if mt.id == "" {
		return discovery.App{}, false
	}
	agent := agents[mt.agentID]
	state := mt.state
	if state == "" && mt.latest != nil {
		state = mt.latest.state
	}
	task := discovery.Task{
		ID:        mt.id,
		Host:      agent.Hostname,
		AgentIP:   agentAddr(agent),
		State:     FrameworkTaskState(state),
		Name:      mt.name,
		AgentID:   mt.agentID,
		Discovery: mt.discovery.toDiscoveryInfo(),
	}
	hasHealthCheck := mt.healthCheck
	if mt.latest != nil {
		task.Health = mt.latest.health
		hasHealthCheck = hasHealthCheck || mt.latest.health != discovery.HealthNone
	}
	if r := mt.running; r != nil {
		task.IPs, task.DockerIP, task.MesosIP = r.ips, r.dockerIP, r.mesosIP
	} else if mt.latest != nil {
		task.IPs = mt.latest.ips
	}
	task.HostPorts = expandPorts(mt.ports)
	task.ResourcePorts = len(task.HostPorts)
	app := discovery.App{
		ID:           framework + "/" + mt.id,
		Framework:    framework,
		HealthChecks: hasHealthCheck,
		FromMesos:    true,
	}
	app.Ports = mt.discovery.ports(&task)
	app.Ports = append(app.Ports, legacyTaskPorts(mt.legacy, len(task.HostPorts))...)
	app.Tasks = []discovery.Task{task}
	return app, true
}

// terminal reports whether the task has ended.
func (mt *mesosTask) terminal() bool { return isTerminal(mt.state) }

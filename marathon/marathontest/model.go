package marathontest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// App is the ground truth about one Marathon app, as returned by
// Server.Apps.
type App struct {
	ID           string
	Network      string
	HealthChecks bool
	Ports        []PortSpec
	Tasks        []Task
}

// Task is the ground truth about one task.
type Task struct {
	ID string
	// InstanceID is Marathon's instance id (the task id without the
	// "._app.<n>" suffix in the ≥1.5 shape; equal to ID in the ≤1.4 shape).
	InstanceID string
	AppID      string
	AgentID    string
	Host       string
	AgentIP    netip.Addr
	// IPs are the task's own addresses: the agent IP for host networking,
	// a 127.1.x.x address otherwise.
	IPs []netip.Addr
	// HostPorts are the allocated host ports, in port order (only ports
	// that have host ports).
	HostPorts []uint16
	// State is the Mesos task state, e.g. "TASK_RUNNING".
	State string
	// Healthy is the last health check result; nil when there is none.
	Healthy *bool
}

// app is the simulator's state of one Marathon app.
type app struct {
	spec        AppSpec
	version     time.Time
	lastScaling time.Time
	lastConfig  time.Time
	tasks       []*task // launch order
}

// task is the simulator's state of one Marathon task.
type task struct {
	id, instanceID string
	appID          string
	agent          int
	ips            []netip.Addr
	hostPorts      []uint16
	state          string
	healthy        *bool
	// blind hides healthy from the REST API: Marathon's new leader has
	// no health result until the task's checks run again (faults.go).
	blind        bool
	firstSuccess time.Time
	lastSuccess  time.Time
	lastFailure  time.Time
	failures     int
	stagedAt     time.Time
	startedAt    time.Time
	version      time.Time
	statuses     []status // Mesos status history, oldest first
}

type status struct {
	state string
	at    time.Time
}

// cluster is all mutable state; Server guards it with its mutex.
type cluster struct {
	framework   string
	frameworkID string
	agents      []Agent
	apps        map[string]*app
	pods        map[string]*pod // pods.go; nil until the first
	sorted      []*app          // apps by id, nil when apps changed since (sortedApps)
	others      []Framework
	hostPorts   []map[uint16]bool // per agent: ports in use
	taskIPs     map[netip.Addr]bool
	nextService uint16
	nextAgent   int
	seq         uint64 // task id counter
	legacy      bool
}

const (
	firstHostPort    = 31000
	firstServicePort = 10000
)

// containerIPRange is the range task IPs are allocated from; it stays on
// loopback so that demo and e2e backends are reachable.
const containerIPRange = "127.1.0.0/16"

func newCluster(sc *Scenario, legacy bool) *cluster {
	c := &cluster{
		framework:   sc.Framework,
		frameworkID: "5f1e7f4c-0000-4c63-8f4a-0d6c3a7f0000-0000",
		apps:        make(map[string]*app),
		others:      sc.Frameworks,
		taskIPs:     make(map[netip.Addr]bool),
		nextService: firstServicePort,
		legacy:      legacy,
	}
	if c.framework == "" {
		c.framework = "marathon"
	}
	for i, a := range sc.Agents {
		if a.ID == "" {
			a.ID = fmt.Sprintf("5f1e7f4c-0000-4c63-8f4a-0d6c3a7f0000-S%d", i)
		}
		if a.Hostname == "" {
			a.Hostname = a.IP.String()
		}
		c.agents = append(c.agents, a)
		c.hostPorts = append(c.hostPorts, make(map[uint16]bool))
	}
	for _, f := range sc.Frameworks {
		for _, t := range f.Tasks {
			for _, ip := range t.IPs {
				c.taskIPs[ip] = true
			}
		}
	}
	return c
}

// allocHostPort returns the lowest free host port ≥ 31000 on agent i.
func (c *cluster) allocHostPort(i int) (uint16, error) {
	for p := uint32(firstHostPort); p <= 65535; p++ {
		if !c.hostPorts[i][uint16(p)] {
			c.hostPorts[i][uint16(p)] = true
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("agent %s: no free host port", c.agents[i].ID)
}

// allocTaskIP returns the lowest free address in 127.1.0.0/16, skipping
// the network address.
func (c *cluster) allocTaskIP() (netip.Addr, error) {
	containerIPs := netip.MustParsePrefix(containerIPRange)
	for ip := containerIPs.Addr().Next(); containerIPs.Contains(ip); ip = ip.Next() {
		if !c.taskIPs[ip] {
			c.taskIPs[ip] = true
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free task IP in %s", containerIPs)
}

// release frees a task's host ports and IPs.
func (c *cluster) release(t *task) {
	for _, p := range t.hostPorts {
		delete(c.hostPorts[t.agent], p)
	}
	for _, ip := range t.ips {
		delete(c.taskIPs, ip)
	}
}

// addApp registers an app without tasks; service ports are allocated.
func (c *cluster) addApp(spec AppSpec, now time.Time) (*app, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if _, ok := c.apps[spec.ID]; ok {
		return nil, fmt.Errorf("app %s: already exists", spec.ID)
	}
	if spec.Instances > 0 && len(c.agents) == 0 {
		return nil, fmt.Errorf("app %s: no agents", spec.ID)
	}
	spec.Network = spec.network()
	spec.Ports = slices.Clone(spec.Ports)
	for i := range spec.Ports {
		p := &spec.Ports[i]
		p.Protocol = p.protocol()
		if p.ServicePort == 0 {
			p.ServicePort = c.nextService
			c.nextService++
		}
	}
	a := &app{spec: spec, version: now, lastScaling: now, lastConfig: now}
	c.apps[spec.ID] = a
	c.sorted = nil
	return a, nil
}

// newTask creates a staging task of a on the next agent, allocating host
// ports and IPs.
func (c *cluster) newTask(a *app, now time.Time) (*task, error) {
	agent := c.nextAgent % len(c.agents)
	c.nextAgent++
	c.seq++
	uuid := fmt.Sprintf("%08x-%04x-11e7-a48f-0ea4f4b1778c", c.seq, c.seq>>32&0xffff)
	base := strings.ReplaceAll(strings.TrimPrefix(a.spec.ID, "/"), "/", "_")
	t := &task{appID: a.spec.ID, agent: agent, state: "TASK_STAGING", stagedAt: now, version: a.version}
	if c.legacy {
		t.id = base + "." + uuid
		t.instanceID = t.id
	} else {
		t.instanceID = base + ".instance-" + uuid
		t.id = t.instanceID + "._app.1"
	}
	for _, p := range a.spec.Ports {
		if !p.hasHostPort(a.spec.Network) {
			continue
		}
		hp := uint16(0)
		if p.HostPort != nil {
			hp = *p.HostPort
		}
		if hp == 0 {
			var err error
			if hp, err = c.allocHostPort(agent); err != nil {
				c.release(t)
				return nil, err
			}
		} else {
			c.hostPorts[agent][hp] = true
		}
		t.hostPorts = append(t.hostPorts, hp)
	}
	if a.spec.Network == NetworkHost {
		t.ips = []netip.Addr{c.agents[agent].IP}
	} else {
		ip, err := c.allocTaskIP()
		if err != nil {
			c.release(t)
			return nil, err
		}
		t.ips = []netip.Addr{ip}
	}
	t.statuses = []status{{state: t.state, at: now}}
	a.tasks = append(a.tasks, t)
	return t, nil
}

// setState records a Mesos status change.
func (t *task) setState(state string, now time.Time) {
	t.state = state
	t.statuses = append(t.statuses, status{state: state, at: now})
	if state == "TASK_RUNNING" && t.startedAt.IsZero() {
		t.startedAt = now
	}
}

// setHealth records a health check result of now and returns its time,
// the time of its events: Marathon's timestamps are milliseconds, and a
// task's health check runs at most once a second (intervalSeconds), so
// two results of a task never share a millisecond; a result that would
// is moved to the millisecond after the last one.
func (t *task) setHealth(healthy bool, now time.Time) time.Time {
	now = now.Truncate(time.Millisecond)
	last := t.lastSuccess
	if t.lastFailure.After(last) {
		last = t.lastFailure
	}
	if !last.IsZero() && !now.After(last) {
		now = last.Add(time.Millisecond)
	}
	t.healthy = &healthy
	t.blind = false
	if healthy {
		if t.firstSuccess.IsZero() {
			t.firstSuccess = now
		}
		t.lastSuccess = now
		t.failures = 0
	} else {
		t.lastFailure = now
		t.failures++
	}
	return now
}

// findTask returns the task with the given task or instance id.
func (c *cluster) findTask(id string) (*app, *task) {
	for _, a := range c.apps {
		for _, t := range a.tasks {
			if t.id == id || t.instanceID == id {
				return a, t
			}
		}
	}
	return nil, nil
}

// removeTask drops t from a and frees its resources.
func (c *cluster) removeTask(a *app, t *task) {
	a.tasks = slices.DeleteFunc(a.tasks, func(x *task) bool { return x == t })
	c.release(t)
}

// sortedApps returns the apps ordered by id, for stable output; callers
// must not change the slice. It is sorted again only after apps changed
// (10,000 apps take milliseconds, which the propagation benchmark's load
// generator, in the daemon's process, would spend per burst).
func (c *cluster) sortedApps() []*app {
	if c.sorted == nil {
		c.sorted = make([]*app, 0, len(c.apps))
		for _, a := range c.apps {
			c.sorted = append(c.sorted, a)
		}
		slices.SortFunc(c.sorted, func(x, y *app) int { return strings.Compare(x.spec.ID, y.spec.ID) })
	}
	return c.sorted
}

// truth converts the state of a into the exported ground truth.
func (c *cluster) truth(a *app) App {
	out := App{ID: a.spec.ID, Network: a.spec.Network, HealthChecks: a.spec.HealthChecks, Ports: slices.Clone(a.spec.Ports)}
	for _, t := range a.tasks {
		ag := c.agents[t.agent]
		tt := Task{
			ID: t.id, InstanceID: t.instanceID, AppID: t.appID, AgentID: ag.ID, Host: ag.Hostname,
			AgentIP: ag.IP, IPs: slices.Clone(t.ips), HostPorts: slices.Clone(t.hostPorts), State: t.state,
		}
		if t.healthy != nil {
			h := *t.healthy
			tt.Healthy = &h
		}
		out.Tasks = append(out.Tasks, tt)
	}
	return out
}

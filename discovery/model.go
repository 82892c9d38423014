package discovery

// The model's types: what producers (package marathon) hand discovery:
// State, App, Port, Label, Task and the incremental Update.

import (
	"net/netip"
	"time"
)

// State is everything one source knows at one moment: the input of Build.
type State struct {
	// Apps holds every app (Marathon) or task group (other Mesos
	// frameworks) with its tasks. Order does not matter.
	Apps []App
	// Cluster is what the leading Mesos master says of itself, its agents
	// and its frameworks; nil from a source that does not know (Marathon).
	Cluster *Cluster
	// Seq is the position in the source's ordered update stream that
	// the state includes (the Mesos operator stream numbers its updates):
	// a queued update with a Seq not above it is already in the state and
	// is ignored. Zero for a source whose updates are not ordered.
	Seq uint64
}

// App is a Marathon app, or for tasks that come from Mesos state, one task of
// another framework (each with its own DiscoveryInfo ports).
type App struct {
	// ID is unique within a source: "/group/app" for Marathon,
	// "<framework>/<task id>" for Mesos tasks.
	ID string `json:"id"`
	// Framework is the Mesos framework name as written upstream
	// ("marathon", "hello-world"); Build normalises it.
	Framework string `json:"framework"`
	// Version is the app version (Marathon's "version"), informational.
	Version string `json:"version,omitempty"`
	// Ports are the app's port declarations in upstream order.
	Ports []Port `json:"ports,omitempty"`
	// HealthChecks is true when the app defines health checks: a running
	// task without a health result then gets weight 0.
	HealthChecks bool `json:"healthChecks,omitempty"`
	// Tasks are the app's tasks, in any state.
	Tasks []Task `json:"tasks,omitempty"`
	// FromMesos is true for an app the Mesos source made of one task: its
	// tasks carry the Name, Discovery and ResourcePorts Mesos reports. A
	// Marathon app's tasks get theirs from the app, as Marathon gives them
	// to Mesos (MarathonTaskName, MarathonDiscovery).
	FromMesos bool `json:"fromMesos,omitempty"`
}

// PortKind says how a port's backends are addressed (DESIGN.md "Backends").
type PortKind uint8

const (
	// PortHost is host networking (portDefinitions, or a Mesos discovery
	// port with network-scope host or no scope): backend = agent IP : the
	// task's host port at HostPortIndex.
	PortHost PortKind = iota
	// PortMapped is bridge or container networking with a host port: also
	// agent IP : the task's host port at HostPortIndex.
	PortMapped
	// PortContainer is container networking without a host port: one backend
	// per task IP : ContainerPort.
	PortContainer
)

// Port is one port declaration with its labels.
type Port struct {
	Kind PortKind `json:"kind"`
	// HostPortIndex indexes Task.HostPorts for PortHost and PortMapped.
	HostPortIndex int `json:"hostPortIndex"`
	// ContainerPort is the port inside the container, for PortContainer.
	ContainerPort uint16 `json:"containerPort,omitempty"`
	// Protocols lists the port's protocols ("tcp,udp" gives both).
	Protocols []Protocol `json:"protocols"`
	// Name is the port's name, informational.
	Name string `json:"name,omitempty"`
	// Labels are the port's labels in upstream order; VIP labels are those
	// whose key starts with "VIP" or "vip". Legacy task labels
	// VIP_PORT<n>=tcp://addr:port are attached by the decoder to port n with
	// their key and value unchanged.
	Labels []Label `json:"labels,omitempty"`
}

// Label is one key/value label.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TaskState is the part of a Mesos task state that matters for backends.
type TaskState uint8

const (
	// TaskStarting covers staging, starting, unreachable and unknown: not a
	// backend yet (or any more), but not gone either.
	TaskStarting TaskState = iota
	// TaskRunning is TASK_RUNNING.
	TaskRunning
	// TaskKilling is TASK_KILLING: a backend at weight 0.
	TaskKilling
	// TaskTerminal covers finished, failed, killed, lost, error, dropped,
	// gone: the task is removed.
	TaskTerminal
)

// Health is a task's health as far as weights go.
type Health uint8

const (
	// HealthNone means no result is known: healthy when the app has no
	// health checks, unhealthy (weight 0) when it has.
	HealthNone Health = iota
	// HealthHealthy means every health check passes.
	HealthHealthy
	// HealthUnhealthy means a health check fails.
	HealthUnhealthy
)

// Task is one task (Marathon instance / Mesos task).
type Task struct {
	ID string `json:"id"`
	// Host is the agent's host name as upstream reports it.
	Host string `json:"host,omitempty"`
	// AgentIP is the agent's address (resolved by the producer); invalid
	// when unknown, in which case host-port backends are skipped.
	AgentIP netip.Addr `json:"agentIP,omitzero"`
	// IPs are the task's own addresses (container networking).
	IPs []netip.Addr `json:"ips,omitempty"`
	// HostPorts are the allocated host ports in upstream order.
	HostPorts []uint16  `json:"hostPorts,omitempty"`
	State     TaskState `json:"state"`
	Health    Health    `json:"health"`
	// Updated is when this task last changed, for ordering updates.
	Updated time.Time `json:"updated,omitzero"`
	// HealthAt is when Health was last reported, by the source's clock
	// (Marathon: the latest lastSuccess or lastFailure of the task's health
	// check results, the clock of the events' timestamps); zero when
	// unknown. A health event older than it is late. It moves on at every
	// health check, so a snapshot's HealthAt goes to the model's memory of
	// health alone: apps in the model, compared at every resync, built and
	// stored, have it zero.
	HealthAt time.Time `json:"-"`
	// Name is the Mesos task name (FromMesos apps only).
	Name string `json:"name,omitempty"`
	// AgentID is the Mesos agent ("slave") ID the task runs on.
	AgentID string `json:"agentID,omitempty"`
	// Discovery is the task's Mesos DiscoveryInfo (FromMesos apps only; nil
	// when the task has none).
	Discovery *DiscoveryInfo `json:"discovery,omitempty"`
	// ResourcePorts is how many of HostPorts, from the first, are the
	// task's port resources (FromMesos apps only: the rest are DiscoveryInfo
	// host ports the resources do not list). A Marathon task's HostPorts
	// are all resources.
	ResourcePorts int `json:"resourcePorts,omitempty"`
	// DockerIP and MesosIP are the addresses of the latest running status'
	// labels Docker.NetworkSettings.IPAddress and
	// MesosContainerizer.NetworkSettings.IPAddress: mesos-dns's IP sources
	// "docker" and "mesos" (invalid if absent).
	DockerIP netip.Addr `json:"dockerIP,omitzero"`
	MesosIP  netip.Addr `json:"mesosIP,omitzero"`
}

// DiscoveryInfo is a Mesos task's DiscoveryInfo: the name and ports it
// publishes for service discovery.
type DiscoveryInfo struct {
	// Name replaces the task name in mesos-dns's names (empty: none).
	Name  string          `json:"name,omitempty"`
	Ports []DiscoveryPort `json:"ports,omitempty"`
}

// DiscoveryPort is one DiscoveryInfo port as Mesos reports it.
type DiscoveryPort struct {
	Number uint16 `json:"number"`
	Name   string `json:"name,omitempty"`
	// Protocol is as written ("tcp", "TCP", "udp", "" for both, any word).
	Protocol string `json:"protocol,omitempty"`
}

// Cluster is the Mesos master's view of the cluster: what mesos-dns names
// besides tasks (leader, masters, frameworks, agents).
type Cluster struct {
	// Leader is the leading master's address, from the state's "leader"
	// ("master@10.0.0.1:5050"); invalid when unknown.
	Leader netip.AddrPort `json:"leader,omitzero"`
	// Masters are the configured masters' addresses, in configuration
	// order (mesos-dns's "masters"), without duplicates.
	Masters []netip.Addr `json:"masters,omitempty"`
	// Frameworks are the active frameworks.
	Frameworks []Framework `json:"frameworks,omitempty"`
	// Agents are the registered agents.
	Agents []Agent `json:"agents,omitempty"`
}

// Framework is one Mesos framework.
type Framework struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Addr is the address of the framework's pid ("scheduler(1)@ip:port");
	// without a pid, its hostname's address with port 0 (no SRV record);
	// invalid when neither is known.
	Addr netip.AddrPort `json:"addr,omitzero"`
}

// Agent is one Mesos agent.
type Agent struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"`
	// Addr is the address of the agent's pid ("slave(1)@ip:5051").
	Addr netip.AddrPort `json:"addr,omitzero"`
}

// UpdateKind says what an Update changes.
type UpdateKind uint8

const (
	// UpdateTask upserts Update.Task into app Update.AppID; a terminal
	// task is removed.
	UpdateTask UpdateKind = iota + 1
	// UpdateHealth sets the health of task Update.TaskID; Update.Task.Updated,
	// if set, is the event's time (an older health event than the last one
	// applied is ignored).
	UpdateHealth
	// UpdateApp replaces the definition (ports, health checks) of
	// Update.App, keeping its tasks.
	UpdateApp
	// UpdateAppRemoved removes app Update.AppID and its tasks.
	UpdateAppRemoved
	// UpdateResync asks for a full resync of the source (after a
	// reconnect, a deployment, an oversized event, an unknown app).
	UpdateResync
	// UpdateAppReplace replaces app Update.App whole, its tasks included,
	// or adds it: for a source that knows each app whole, as the Mesos
	// operator stream knows each task (one App per task).
	UpdateAppReplace
	// UpdateCluster replaces the source's Cluster with Update.Cluster: for
	// a source that follows agents and frameworks as they change.
	UpdateCluster
)

// ResyncConnect is the Reason of the UpdateResync sent after every
// (re)connect of the event stream. The stream has no replay, so nothing is
// known of the gap: every source is resynced, not only Marathon.
const ResyncConnect = "connect"

// Update is one incremental change decoded from an event.
type Update struct {
	Kind UpdateKind
	// Source names the source the update changes; "" is "marathon".
	Source string
	AppID  string
	TaskID string
	Task   Task
	Health Health
	App    App
	// Cluster is the source's whole Cluster, for UpdateCluster.
	Cluster *Cluster
	// Reason says why, for UpdateResync; for logs and metrics.
	Reason string
	// Seq numbers the updates of a source that orders them (see
	// State.Seq); zero for none.
	Seq uint64
	// Received is when the event carrying this update arrived, for the
	// event→DNS-visible latency metric; zero if unknown.
	Received time.Time
}

package marathon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
)

// mesosStateJSON is the part of Mesos state that discovery needs, in any of
// three shapes: the master's /master/state (frameworks[].tasks[],
// slaves[]), an agent's /state (frameworks[].executors[].tasks[], the agent
// itself at the top level), and the v1 operator API GET_STATE response
// (get_state.get_tasks, get_frameworks, get_agents). Layouts:
// mesosphere/mesos-dns records/state/state.go, apache/mesos
// docs/operator-http-api.md. Completed tasks and frameworks are not read:
// terminal tasks are never backends.
type mesosStateJSON struct {
	ID         string               `json:"id"`
	Leader     string               `json:"leader"`
	PID        string               `json:"pid"`
	Hostname   string               `json:"hostname"`
	Slaves     []mesosAgentJSON     `json:"slaves"`
	Frameworks []mesosFrameworkJSON `json:"frameworks"`
	GetState   *mesosGetStateJSON   `json:"get_state"`
}

type mesosAgentJSON struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      string `json:"pid"`
}

type mesosFrameworkJSON struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	PID       string          `json:"pid"`
	Hostname  string          `json:"hostname"`
	Tasks     []mesosTaskJSON `json:"tasks"`
	Executors []struct {
		Tasks []mesosTaskJSON `json:"tasks"`
	} `json:"executors"`
}

// mesosGetStateJSON is the v1 operator API GET_STATE body, also the
// snapshot of SUBSCRIBED (apache/mesos include/mesos/v1/master/master.proto
// Response.GetState).
type mesosGetStateJSON struct {
	GetTasks struct {
		Tasks         []mesosTaskJSON `json:"tasks"`
		LaunchedTasks []mesosTaskJSON `json:"launched_tasks"`
	} `json:"get_tasks"`
	GetFrameworks struct {
		Frameworks []mesosV1FrameworkJSON `json:"frameworks"`
	} `json:"get_frameworks"`
	GetAgents struct {
		Agents []mesosV1AgentJSON `json:"agents"`
		// RecoveredAgents are agents a failed-over master knows from its
		// registry that have not re-registered yet; non-empty only right
		// after a failover.
		RecoveredAgents []mesosAgentInfoJSON `json:"recovered_agents"`
	} `json:"get_agents"`
}

// mesosV1FrameworkJSON is a v1 GetFrameworks.Framework.
type mesosV1FrameworkJSON struct {
	FrameworkInfo mesosFrameworkInfoJSON `json:"framework_info"`
}

// mesosFrameworkInfoJSON is a v1 FrameworkInfo.
type mesosFrameworkInfoJSON struct {
	ID       valueJSON `json:"id"`
	Name     string    `json:"name"`
	Hostname string    `json:"hostname"`
}

// mesosV1AgentJSON is a v1 GetAgents.Agent.
type mesosV1AgentJSON struct {
	AgentInfo mesosAgentInfoJSON `json:"agent_info"`
	PID       string             `json:"pid"`
}

// mesosAgentInfoJSON is a v1 AgentInfo.
type mesosAgentInfoJSON struct {
	ID       valueJSON `json:"id"`
	Hostname string    `json:"hostname"`
}

// agent is the agent in the /master/state form the decoders share.
func (a mesosV1AgentJSON) agent() mesosAgentJSON {
	return mesosAgentJSON{ID: a.AgentInfo.ID.Value, Hostname: a.AgentInfo.Hostname, PID: a.PID}
}

// valueJSON is a v1 protobuf ID such as {"value": "…-S0"}.
type valueJSON struct {
	Value string `json:"value"`
}

// mesosTaskJSON is a task in /state (string IDs) or v1 (ID objects) form.
type mesosTaskJSON struct {
	ID          string              `json:"id"`
	TaskID      valueJSON           `json:"task_id"`
	Name        string              `json:"name"`
	FrameworkID frameworkIDJSON     `json:"framework_id"`
	SlaveID     string              `json:"slave_id"`
	AgentID     valueJSON           `json:"agent_id"`
	State       string              `json:"state"`
	Statuses    []mesosStatusJSON   `json:"statuses"`
	Resources   mesosResourcesJSON  `json:"resources"`
	Discovery   *mesosDiscoveryJSON `json:"discovery"`
	Labels      mesosLabelsJSON     `json:"labels"`
	HealthCheck presentJSON         `json:"health_check"`
}

type mesosStatusJSON struct {
	TaskID    valueJSON `json:"task_id"`
	AgentID   valueJSON `json:"agent_id"`
	State     string    `json:"state"`
	Timestamp float64   `json:"timestamp"`
	Healthy   *bool     `json:"healthy"`
	// Labels carry the executor's addresses
	// (Docker.NetworkSettings.IPAddress, MesosContainerizer.…).
	Labels          mesosLabelsJSON `json:"labels"`
	ContainerStatus *struct {
		NetworkInfos []struct {
			IPAddress   string `json:"ip_address"`
			IPAddresses []struct {
				IPAddress string `json:"ip_address"`
			} `json:"ip_addresses"`
		} `json:"network_infos"`
	} `json:"container_status"`
}

type mesosDiscoveryJSON struct {
	Name  string `json:"name"`
	Ports struct {
		Ports []struct {
			Number   int             `json:"number"`
			Name     string          `json:"name"`
			Protocol string          `json:"protocol"`
			Labels   mesosLabelsJSON `json:"labels"`
		} `json:"ports"`
	} `json:"ports"`
}

// presentJSON records whether a field is present and not null, without
// keeping its value (a task's health_check).
type presentJSON bool

// UnmarshalJSON implements json.Unmarshaler.
func (p *presentJSON) UnmarshalJSON(b []byte) error {
	*p = presentJSON(!bytes.Equal(bytes.TrimSpace(b), []byte("null")))
	return nil
}

// mesosLabelsJSON is a Mesos Labels message: [{"key","value"}] as task
// labels in /state, {"labels": [...]} everywhere else.
type mesosLabelsJSON []discovery.Label

// UnmarshalJSON implements json.Unmarshaler for both label shapes.
func (l *mesosLabelsJSON) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var list []discovery.Label
	switch {
	case bytes.HasPrefix(b, []byte("[")):
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
	case bytes.HasPrefix(b, []byte("{")):
		var wrapped struct {
			Labels []discovery.Label `json:"labels"`
		}
		if err := json.Unmarshal(b, &wrapped); err != nil {
			return err
		}
		list = wrapped.Labels
	case bytes.Equal(b, []byte("null")):
	default:
		return fmt.Errorf("labels: unexpected %.16q", b)
	}
	*l = list
	return nil
}

// mesosResourcesJSON holds a task's port ranges: resources.ports as the
// string "[31000-31001, 31005-31005]" in /state, or a RANGES resource named
// "ports" in a v1 resource list.
type mesosResourcesJSON struct {
	Ports [][2]int
}

// UnmarshalJSON implements json.Unmarshaler for both resource shapes.
func (r *mesosResourcesJSON) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(b, []byte("{")):
		var res struct {
			Ports *string `json:"ports"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		if res.Ports != nil {
			r.Ports = parsePortRanges(*res.Ports)
		}
	case bytes.HasPrefix(b, []byte("[")):
		var list []struct {
			Name   string `json:"name"`
			Ranges *struct {
				Range []struct {
					Begin int `json:"begin"`
					End   int `json:"end"`
				} `json:"range"`
			} `json:"ranges"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		for _, res := range list {
			if res.Name != "ports" || res.Ranges == nil {
				continue
			}
			for _, rg := range res.Ranges.Range {
				r.Ports = append(r.Ports, [2]int{rg.Begin, rg.End})
			}
		}
	}
	return nil
}

// parsePortRanges parses "[31000-31001, 31005-31005]"; malformed ranges
// are skipped.
func parsePortRanges(s string) [][2]int {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	var out [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			hi = lo
		}
		b, err1 := strconv.Atoi(strings.TrimSpace(lo))
		e, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, [2]int{b, e})
	}
	return out
}

// maxTaskPorts bounds the expansion of a task's port ranges.
const maxTaskPorts = 1 << 16

// expandPorts lists every port of the ranges in order (dcos-net
// dcos_net_mesos_listener.erl expand_ports/1); ranges outside 0-65535 or
// reversed are skipped, and the list stops at maxTaskPorts entries.
func expandPorts(ranges [][2]int) []uint16 {
	var out []uint16
	for _, r := range ranges {
		if r[0] < 0 || r[1] > 65535 || r[0] > r[1] {
			continue
		}
		for p := r[0]; p <= r[1]; p++ {
			if len(out) >= maxTaskPorts {
				return out
			}
			out = append(out, uint16(p))
		}
	}
	return out
}

// DecodeMesosState decodes Mesos state: the master's /master/state, an
// agent's /state, or a v1 operator API GET_STATE response. Every task of a
// framework other than the one whose ID is marathonID (the followed
// Marathon's; "" includes all) becomes one App with ID "<framework name>/<task id>" and FromMesos set,
// whose ports come from the task's DiscoveryInfo (a port labelled
// network-scope=container is a container port of the task IPs, any other an
// agent host port) and from legacy task labels VIP_PORT<n>=tcp://addr:port,
// n indexing the task's port resources. The task keeps what mesos-dns names
// it by: its name, agent ID, raw DiscoveryInfo and how many of its host
// ports are resources. Health comes from the latest status; task IPs from
// the latest TASK_RUNNING status, as mesos-dns takes them, else from the
// latest status.
//
// The State's Cluster holds the leader, every active framework (Marathon's
// too) and every agent; its Masters are left to the caller, who knows the
// configured masters.
//
// agents maps agent host names to the address in their pid
// ("slave(1)@10.0.0.1:5051"), for resolving Marathon's task hosts. A task
// whose agent address is unknown has an invalid AgentIP and its Host set;
// the caller may resolve it.
func DecodeMesosState(r io.Reader, marathonID string) (st discovery.State, agents map[string]netip.Addr, err error) {
	var raw mesosStateJSON
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return discovery.State{}, nil, fmt.Errorf("decode mesos state: %w", err)
	}
	d := newMesosDecoder(marathonID)
	d.cluster.Leader = pidAddr(raw.Leader)
	for _, a := range raw.Slaves {
		d.addAgent(a)
	}
	if strings.HasPrefix(raw.PID, "slave(") {
		d.addAgent(mesosAgentJSON{ID: raw.ID, Hostname: raw.Hostname, PID: raw.PID})
	}
	for i := range raw.Frameworks {
		fw := &raw.Frameworks[i]
		d.addFramework(fw.ID, fw.Name, fw.PID, fw.Hostname)
		name := frameworkName(fw.Name, fw.ID)
		for j := range fw.Tasks {
			d.addTask(fw.ID, name, fw.Tasks[j].compact(nil))
		}
		for _, ex := range fw.Executors {
			for j := range ex.Tasks {
				d.addTask(fw.ID, name, ex.Tasks[j].compact(nil))
			}
		}
	}
	if raw.GetState != nil {
		d.addGetState(raw.GetState)
	}
	return discovery.State{Apps: d.apps, Cluster: d.cluster}, d.agents, nil
}

// mesosDecoder collects what DecodeMesosState decodes, and what the
// operator stream's mirror hands discovery (mesosmirror.go).
type mesosDecoder struct {
	marathonID string
	byID       map[string]mesosAgentJSON
	agents     map[string]netip.Addr
	apps       []discovery.App
	cluster    *discovery.Cluster
}

func newMesosDecoder(marathonID string) *mesosDecoder {
	return &mesosDecoder{
		marathonID: marathonID,
		byID:       map[string]mesosAgentJSON{},
		agents:     map[string]netip.Addr{},
		cluster:    &discovery.Cluster{},
	}
}

// addTask adds the task of framework id (named framework) as an App unless
// the framework is unknown or the followed Marathon's. Marathon is known by
// its framework ID: Mesos does not make names unique.
func (d *mesosDecoder) addTask(id, framework string, t *mesosTask) {
	if framework == "" || d.marathonID != "" && id == d.marathonID {
		return
	}
	if app, ok := t.toApp(framework, d.byID); ok {
		d.apps = append(d.apps, app)
	}
}

// addGetState adds the agents, frameworks and tasks of a v1 GET_STATE.
func (d *mesosDecoder) addGetState(gs *mesosGetStateJSON) {
	frameworks := map[string]string{}
	for _, f := range gs.GetFrameworks.Frameworks {
		fi := f.FrameworkInfo
		frameworks[fi.ID.Value] = frameworkName(fi.Name, fi.ID.Value)
		d.addFramework(fi.ID.Value, fi.Name, "", fi.Hostname)
	}
	for _, a := range gs.GetAgents.Agents {
		d.addAgent(a.agent())
	}
	for _, list := range [][]mesosTaskJSON{gs.GetTasks.Tasks, gs.GetTasks.LaunchedTasks} {
		for j := range list {
			fid := list[j].frameworkID()
			d.addTask(fid, frameworkName(frameworks[fid], fid), list[j].compact(nil))
		}
	}
}

// frameworkIDJSON is a task's framework_id: a string in /state, {"value":
// …} in v1.
type frameworkIDJSON string

// UnmarshalJSON implements json.Unmarshaler for both shapes.
func (f *frameworkIDJSON) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var id string
	var err error
	switch {
	case bytes.HasPrefix(b, []byte("{")):
		var v valueJSON
		err, id = json.Unmarshal(b, &v), v.Value
	case !bytes.Equal(b, []byte("null")):
		err = json.Unmarshal(b, &id)
	}
	*f = frameworkIDJSON(id)
	return err
}

// frameworkName is the framework's name, or its ID when it has none; tasks
// of a framework with neither are skipped.
func frameworkName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// taskID is the task's ID in either shape.
func (t *mesosTaskJSON) taskID() string {
	if t.ID != "" {
		return t.ID
	}
	return t.TaskID.Value
}

func (t *mesosTaskJSON) agentID() string {
	if t.SlaveID != "" {
		return t.SlaveID
	}
	return t.AgentID.Value
}

func (t *mesosTaskJSON) frameworkID() string { return string(t.FrameworkID) }

// latestStatus is the status in the given state ("" for any) with the
// greatest timestamp (the last one listed among equals), or nil.
func (t *mesosTaskJSON) latestStatus(state string) *mesosStatusJSON {
	var latest *mesosStatusJSON
	for i := range t.Statuses {
		s := &t.Statuses[i]
		if state != "" && s.State != state {
			continue
		}
		if latest == nil || s.Timestamp >= latest.Timestamp {
			latest = s
		}
	}
	return latest
}

// labelIP is the address in the value of the label key, or the invalid
// Addr.
func labelIP(labels mesosLabelsJSON, key string) netip.Addr {
	ip, _ := parseIP(labelValue(labels, key))
	return ip
}

// toDiscoveryInfo is the DiscoveryInfo as Mesos reports it, every port
// kept with its number, name and protocol as written (a number outside
// 0-65535 becomes 0); nil for none.
func (di *mesosDiscoveryJSON) toDiscoveryInfo() *discovery.DiscoveryInfo {
	if di == nil {
		return nil
	}
	out := &discovery.DiscoveryInfo{Name: di.Name}
	for _, p := range di.Ports.Ports {
		out.Ports = append(out.Ports, discovery.DiscoveryPort{Number: portNumber(p.Number), Name: p.Name, Protocol: p.Protocol})
	}
	return out
}

// statusIPs lists the addresses of a status' network infos, including the
// legacy single ip_address, without duplicates.
func statusIPs(s *mesosStatusJSON) []netip.Addr {
	if s.ContainerStatus == nil {
		return nil
	}
	var out []netip.Addr
	add := func(v string) {
		ip, ok := parseIP(v)
		if !ok {
			return
		}
		for _, have := range out {
			if have == ip {
				return
			}
		}
		out = append(out, ip)
	}
	for _, ni := range s.ContainerStatus.NetworkInfos {
		for _, a := range ni.IPAddresses {
			add(a.IPAddress)
		}
		add(ni.IPAddress)
	}
	return out
}

// ports converts the DiscoveryInfo ports (dcos-net
// dcos_net_mesos_listener.erl): number 0 and protocols other than tcp/udp
// (any case) are dropped; network-scope=container makes number a container
// port, anything else a host port, which is added to task.HostPorts when
// the port resources do not list it.
func (di *mesosDiscoveryJSON) ports(task *discovery.Task) []discovery.Port {
	if di == nil {
		return nil
	}
	var ports []discovery.Port
	for _, dp := range di.Ports.Ports {
		number := portNumber(dp.Number)
		proto, err := discovery.ParseProtocol(dp.Protocol)
		if number == 0 || err != nil {
			continue
		}
		p := discovery.Port{Protocols: []discovery.Protocol{proto}, Name: dp.Name, Labels: []discovery.Label(dp.Labels)}
		if labelValue(dp.Labels, "network-scope") == "container" {
			p.Kind = discovery.PortContainer
			p.ContainerPort = number
		} else {
			p.Kind = discovery.PortHost
			p.HostPortIndex = hostPortIndex(task, number)
		}
		ports = append(ports, p)
	}
	return ports
}

func labelValue(labels []discovery.Label, key string) string {
	for _, l := range labels {
		if l.Key == key {
			return l.Value
		}
	}
	return ""
}

// hostPortIndex returns the index of port in task.HostPorts, appending it
// when missing.
func hostPortIndex(task *discovery.Task, port uint16) int {
	for i, p := range task.HostPorts {
		if p == port {
			return i
		}
	}
	task.HostPorts = append(task.HostPorts, port)
	return len(task.HostPorts) - 1
}

// legacyTaskPorts converts minuteman-era task labels VIP_PORT<n> (key in
// any case) into host ports at index n of the task's expanded port
// resources (dcos-net handle_task_vip_label/2). A label whose n is beyond
// the task's port resources (numResourcePorts) has no port and is dropped,
// as upstream.
func legacyTaskPorts(labels []discovery.Label, numResourcePorts int) []discovery.Port {
	var ports []discovery.Port
	for _, l := range labels {
		n, ok := legacyPortIndex(l.Key)
		if !ok || n >= numResourcePorts {
			continue
		}
		ports = append(ports, legacyPort(n, l))
	}
	return ports
}

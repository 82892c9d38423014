package marathontest

import (
	"crypto/sha1"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// masterState renders GET /master/state in the pre-v1 JSON layout
// (dcos/dcos-net apps/dcos_l4lb/testdata/*.json, mesosphere/mesos-dns
// records/state/state.go): slaves with pid "slave(1)@IP:5051", Marathon's
// framework with its tasks as Marathon would launch them, and the other
// frameworks' tasks.
func (c *cluster) masterState(leaderPID, hostname, marathonURL string, now time.Time) obj {
	slaves := make([]any, 0, len(c.agents))
	for _, ag := range c.agents {
		slaves = append(slaves, obj{
			"id":         ag.ID,
			"pid":        "slave(1)@" + ag.IP.String() + ":5051",
			"hostname":   ag.Hostname,
			"active":     true,
			"attributes": obj{},
			"resources":  obj{"cpus": 4.0, "mem": 14018.0, "disk": 35577.0, "gpus": 0.0, "ports": "[1025-2180, 2182-3887, 3889-5049, 5052-8079, 8082-8180, 8182-32000]"},
			"version":    "1.4.0",
		})
	}
	frameworks := []any{c.marathonFramework(marathonURL, now)}
	for _, f := range c.others {
		frameworks = append(frameworks, c.otherFramework(f, now))
	}
	return obj{
		"version":                 "1.4.0",
		"git_sha":                 "marathontest",
		"id":                      c.frameworkID[:len(c.frameworkID)-5],
		"pid":                     leaderPID,
		"leader":                  leaderPID,
		"hostname":                hostname,
		"activated_slaves":        float64(len(c.agents)),
		"deactivated_slaves":      0.0,
		"start_time":              1.4746525e9,
		"elected_time":            1.4746525e9,
		"slaves":                  slaves,
		"frameworks":              frameworks,
		"completed_frameworks":    []any{},
		"orphan_tasks":            []any{},
		"unregistered_frameworks": []any{},
	}
}

func (c *cluster) marathonFramework(marathonURL string, now time.Time) obj {
	var tasks []any
	for _, a := range c.sortedApps() {
		for _, t := range a.tasks {
			tasks = append(tasks, c.mesosTask(a, t))
		}
	}
	return frameworkJSON(c.frameworkID, c.framework, marathonURL, tasks)
}

func frameworkJSON(id, name, webui string, tasks []any) obj {
	if tasks == nil {
		tasks = []any{}
	}
	return obj{
		"id":              id,
		"name":            name,
		"pid":             "scheduler-" + schedulerUUID(id) + "@127.0.0.1:41314",
		"hostname":        "127.0.0.1",
		"webui_url":       webui,
		"active":          true,
		"user":            "root",
		"role":            "*",
		"checkpoint":      true,
		"tasks":           tasks,
		"completed_tasks": []any{},
		"executors":       []any{},
		"offers":          []any{},
	}
}

// schedulerUUID is the UUID in a scheduler's libprocess pid
// ("scheduler-29634d79-07d1-4f42-b9fe-1aa9586526b4@10.0.5.163:43078" in
// dcos/mesos_state test/mesos_state_SUITE_data/state2.json): random
// upstream, derived from the framework id here so that output is stable.
func schedulerUUID(frameworkID string) string {
	h := sha1.Sum([]byte(frameworkID))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// mesosTask renders a Marathon task as Mesos reports it, with the
// DiscoveryInfo Marathon fills in (mesosphere/marathon
// src/main/scala/mesosphere/mesos/PortDiscovery.scala): host networking
// gives the host port and no scope; a mapping with a host port gives the
// host port and network-scope=host; a mapping without one gives the
// container port, network-scope=container and network-name. One
// discovery port per protocol.
func (c *cluster) mesosTask(a *app, t *task) obj {
	var dports []any
	hostIdx := 0
	for _, p := range a.spec.Ports {
		number := p.ContainerPort
		var scope []any
		switch {
		case a.spec.Network == NetworkHost:
			number = t.hostPorts[hostIdx]
			hostIdx++
		case p.hasHostPort(a.spec.Network):
			number = t.hostPorts[hostIdx]
			hostIdx++
			scope = []any{obj{"key": "network-scope", "value": "host"}}
		default:
			scope = []any{
				obj{"key": "network-scope", "value": "container"},
				obj{"key": "network-name", "value": a.spec.networkName()},
			}
		}
		for _, proto := range strings.Split(p.Protocol, ",") {
			dp := obj{"number": number, "protocol": proto, "labels": obj{"labels": append(labelList(p.Labels), scope...)}}
			if p.Name != "" {
				dp["name"] = p.Name
			}
			dports = append(dports, dp)
		}
	}
	name := reversedName(a.spec.ID)
	o := c.taskBase(t.id, name, c.frameworkID, t.agent, t.state, t.ips, t.hostPorts, t.statuses, t.healthy)
	o["discovery"] = discoveryJSON(name, dports)
	return o
}

// otherFramework renders a non-Marathon framework and its tasks.
func (c *cluster) otherFramework(f Framework, now time.Time) obj {
	id := c.otherFrameworkID(f)
	tasks := make([]any, 0, len(f.Tasks))
	for _, ft := range f.Tasks {
		tasks = append(tasks, c.otherTask(id, ft, now))
	}
	return frameworkJSON(id, f.Name, "", tasks)
}

// otherFrameworkID is f's ID, derived from its name when it has none.
func (c *cluster) otherFrameworkID(f Framework) string {
	if f.ID != "" {
		return f.ID
	}
	return c.frameworkID[:len(c.frameworkID)-4] + fmt.Sprintf("%04x", len(f.Name))
}

// otherTask renders task ft of the non-Marathon framework id.
func (c *cluster) otherTask(id string, ft FrameworkTask, now time.Time) obj {
	state := ft.State
	if state == "" {
		state = "TASK_RUNNING"
	}
	ips := ft.IPs
	if len(ips) == 0 {
		ips = []netip.Addr{c.agents[ft.Agent].IP}
	}
	var hostPorts []uint16
	var dports []any
	for _, p := range ft.Ports {
		labels := labelList(p.Labels)
		switch p.Scope {
		case "host":
			hostPorts = append(hostPorts, p.Number)
			labels = append(labels, obj{"key": "network-scope", "value": "host"})
		case "container":
			labels = append(labels, obj{"key": "network-scope", "value": "container"})
			if p.NetworkName != "" {
				labels = append(labels, obj{"key": "network-name", "value": p.NetworkName})
			}
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		dp := obj{"number": p.Number, "protocol": proto, "labels": obj{"labels": labels}}
		if p.Name != "" {
			dp["name"] = p.Name
		}
		dports = append(dports, dp)
	}
	name := ft.Name
	if name == "" {
		name = ft.ID
	}
	statuses := []status{{state: state, at: now}}
	o := c.taskBase(ft.ID, name, id, ft.Agent, state, ips, hostPorts, statuses, ft.Healthy)
	o["discovery"] = discoveryJSON(name, dports)
	if len(ft.Labels) > 0 {
		o["labels"] = labelList(ft.Labels)
	}
	return o
}

// taskBase renders the fields every Mesos task has.
func (c *cluster) taskBase(id, name, frameworkID string, agent int, state string, ips []netip.Addr, hostPorts []uint16, history []status, healthy *bool) obj {
	addrs := make([]any, 0, len(ips))
	for _, ip := range ips {
		proto := "IPv4"
		if ip.Is6() {
			proto = "IPv6"
		}
		addrs = append(addrs, obj{"protocol": proto, "ip_address": ip.String()})
	}
	statuses := make([]any, 0, len(history))
	for i, st := range history {
		s := obj{
			"state":            st.state,
			"timestamp":        float64(st.at.UnixMicro()) / 1e6,
			"container_status": obj{"network_infos": []any{obj{"ip_addresses": addrs}}},
		}
		if i == len(history)-1 && healthy != nil {
			s["healthy"] = *healthy
		}
		statuses = append(statuses, s)
	}
	resources := obj{"cpus": 0.1, "mem": 32.0, "disk": 0.0, "gpus": 0.0}
	if len(hostPorts) > 0 {
		resources["ports"] = portRanges(hostPorts)
	}
	return obj{
		"id":           id,
		"name":         name,
		"framework_id": frameworkID,
		"executor_id":  "",
		"slave_id":     c.agents[agent].ID,
		"state":        state,
		"resources":    resources,
		"statuses":     statuses,
	}
}

func discoveryJSON(name string, ports []any) obj {
	if ports == nil {
		ports = []any{}
	}
	return obj{"visibility": "FRAMEWORK", "name": name, "ports": obj{"ports": ports}}
}

// labelList renders labels as Mesos does: [{"key":..,"value":..}], sorted
// by key for stable output.
func labelList(labels map[string]string) []any {
	out := make([]any, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, obj{"key": k, "value": labels[k]})
	}
	return out
}

// portRanges formats ports as a Mesos ranges string, "[31000-31001, 31005-31005]".
func portRanges(ports []uint16) string {
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var parts []string
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		parts = append(parts, fmt.Sprintf("%d-%d", sorted[i], sorted[j]))
		i = j + 1
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// reversedName is Marathon's Mesos task name: the app path reversed and
// joined by dots, "/shop/web" → "web.shop" (PathId.toHostname).
func reversedName(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	slices.Reverse(parts)
	return strings.Join(parts, ".")
}

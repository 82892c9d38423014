package marathontest

import (
	"encoding/json"
	"time"
)

// The map-based rendering the simulator used before render.go, kept as the
// reference that TestRenderMatchesMaps compares the hand-appended JSON
// against: encoding/json writes map keys sorted, which is the order
// render.go follows.

// refAppJSON renders a in the shape of GET /v2/apps: Marathon ≥1.5
// (networks, container.portMappings) or, with legacy, ≤1.4
// (container.docker.network, container.docker.portMappings, ipAddress,
// ports). Field names follow the RAML types in mesosphere/marathon
// docs/docs/rest-api/public/api/v2/types/app.raml and appContainer.raml.
func (c *cluster) refAppJSON(a *app, withTasks bool) obj {
	s := a.spec
	o := obj{
		"id":                    s.ID,
		"cmd":                   "sleep 1000000",
		"args":                  nil,
		"user":                  nil,
		"env":                   obj{},
		"instances":             s.Instances,
		"cpus":                  0.1,
		"mem":                   32.0,
		"disk":                  0.0,
		"gpus":                  0,
		"executor":              "",
		"constraints":           []any{},
		"uris":                  []any{},
		"fetch":                 []any{},
		"storeUrls":             []any{},
		"backoffSeconds":        1,
		"backoffFactor":         1.15,
		"maxLaunchDelaySeconds": 3600,
		"dependencies":          []any{},
		"upgradeStrategy":       obj{"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
		"labels":                refLabelsJSON(s.Labels),
		"version":               marathonTime(a.version),
		"versionInfo": obj{
			"lastScalingAt":      marathonTime(a.lastScaling),
			"lastConfigChangeAt": marathonTime(a.lastConfig),
		},
		"requirePorts":  false,
		"healthChecks":  refHealthChecksJSON(s),
		"deployments":   []any{},
		"killSelection": "YOUNGEST_FIRST",
		"unreachableStrategy": obj{
			"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600,
		},
	}
	if c.legacy {
		c.refLegacyNetworking(a, o)
	} else {
		c.refNetworking(a, o)
	}
	refCounts(a, o)
	if withTasks {
		tasks := make([]any, 0, len(a.tasks))
		for _, t := range a.tasks {
			tasks = append(tasks, c.refTaskJSON(a, t))
		}
		o["tasks"] = tasks
	}
	return o
}

// refNetworking fills the ≥1.5 fields: networks, portDefinitions,
// container.portMappings.
func (c *cluster) refNetworking(a *app, o obj) {
	s := a.spec
	switch s.Network {
	case NetworkHost:
		o["networks"] = []any{obj{"mode": "host"}}
		o["portDefinitions"] = refPortDefinitionsJSON(s.Ports)
		o["container"] = nil
	case NetworkBridge, NetworkContainer:
		network := obj{"mode": "container/bridge"}
		if s.Network == NetworkContainer {
			network = obj{"mode": "container", "name": s.networkName()}
		}
		o["networks"] = []any{network}
		o["portDefinitions"] = []any{}
		mappings := make([]any, 0, len(s.Ports))
		for _, p := range s.Ports {
			m := obj{
				"containerPort": p.ContainerPort,
				"servicePort":   p.ServicePort,
				"protocol":      p.Protocol,
				"labels":        refLabelsJSON(p.Labels),
			}
			if p.Name != "" {
				m["name"] = p.Name
			}
			if p.hasHostPort(s.Network) {
				m["hostPort"] = hostPortSpec(p)
			}
			mappings = append(mappings, m)
		}
		o["container"] = obj{
			"type":         "DOCKER",
			"volumes":      []any{},
			"docker":       refDockerJSON(),
			"portMappings": mappings,
		}
	}
}

// refLegacyNetworking fills the ≤1.4 fields: container.docker.network
// HOST/BRIDGE/USER, container.docker.portMappings, ipAddress with
// discovery ports, and the old ports list.
func (c *cluster) refLegacyNetworking(a *app, o obj) {
	s := a.spec
	servicePorts := make([]any, 0, len(s.Ports))
	for _, p := range s.Ports {
		servicePorts = append(servicePorts, p.ServicePort)
	}
	o["ports"] = servicePorts
	switch s.Network {
	case NetworkHost:
		o["portDefinitions"] = refPortDefinitionsJSON(s.Ports)
		o["container"] = nil
		o["ipAddress"] = nil
	case NetworkBridge:
		o["portDefinitions"] = []any{}
		mappings := make([]any, 0, len(s.Ports))
		for _, p := range s.Ports {
			m := obj{
				"containerPort": p.ContainerPort,
				"hostPort":      hostPortSpec(p),
				"servicePort":   p.ServicePort,
				"protocol":      p.Protocol,
				"labels":        refLabelsJSON(p.Labels),
			}
			if p.Name != "" {
				m["name"] = p.Name
			}
			mappings = append(mappings, m)
		}
		docker := refDockerJSON()
		docker["network"] = "BRIDGE"
		docker["portMappings"] = mappings
		o["container"] = obj{"type": "DOCKER", "volumes": []any{}, "docker": docker}
		o["ipAddress"] = nil
	case NetworkContainer:
		o["portDefinitions"] = []any{}
		ports := make([]any, 0, len(s.Ports))
		for _, p := range s.Ports {
			dp := obj{"number": p.ContainerPort, "protocol": p.Protocol, "labels": refLabelsJSON(p.Labels)}
			if p.Name != "" {
				dp["name"] = p.Name
			}
			ports = append(ports, dp)
		}
		o["container"] = obj{"type": "MESOS", "volumes": []any{}}
		o["ipAddress"] = obj{
			"networkName": s.networkName(),
			"groups":      []any{},
			"labels":      obj{},
			"discovery":   obj{"ports": ports},
		}
	}
}

func refPortDefinitionsJSON(ports []PortSpec) []any {
	out := make([]any, 0, len(ports))
	for _, p := range ports {
		d := obj{"port": p.ServicePort, "protocol": p.Protocol, "labels": refLabelsJSON(p.Labels)}
		if p.Name != "" {
			d["name"] = p.Name
		}
		out = append(out, d)
	}
	return out
}

func refDockerJSON() obj {
	return obj{
		"image":          "nginx:alpine",
		"forcePullImage": false,
		"privileged":     false,
		"parameters":     []any{},
	}
}

func refLabelsJSON(labels map[string]string) obj {
	o := make(obj, len(labels))
	for k, v := range labels {
		o[k] = v
	}
	return o
}

func refHealthChecksJSON(s AppSpec) []any {
	if !s.HealthChecks {
		return []any{}
	}
	return []any{obj{
		"protocol":               "MESOS_HTTP",
		"path":                   "/",
		"portIndex":              0,
		"gracePeriodSeconds":     300,
		"intervalSeconds":        60,
		"timeoutSeconds":         20,
		"maxConsecutiveFailures": 3,
		"delaySeconds":           15,
	}}
}

// refCounts fills tasksStaged/Running/Healthy/Unhealthy.
func refCounts(a *app, o obj) {
	var staged, running, healthy, unhealthy int
	for _, t := range a.tasks {
		switch t.state {
		case "TASK_STAGING", "TASK_STARTING":
			staged++
		case "TASK_RUNNING":
			running++
		}
		if t.healthy != nil && !t.blind {
			if *t.healthy {
				healthy++
			} else {
				unhealthy++
			}
		}
	}
	o["tasksStaged"], o["tasksRunning"], o["tasksHealthy"], o["tasksUnhealthy"] = staged, running, healthy, unhealthy
}

// refTaskJSON renders t as in /v2/apps?embed=apps.tasks and /v2/tasks
// (task.raml: id, appId, host, slaveId, state, ports, servicePorts,
// ipAddresses, stagedAt, startedAt, version, healthCheckResults).
func (c *cluster) refTaskJSON(a *app, t *task) obj {
	ag := c.agents[t.agent]
	ips := make([]any, 0, len(t.ips))
	for _, ip := range t.ips {
		proto := "IPv4"
		if ip.Is6() {
			proto = "IPv6"
		}
		ips = append(ips, obj{"ipAddress": ip.String(), "protocol": proto})
	}
	servicePorts := make([]any, 0, len(a.spec.Ports))
	for _, p := range a.spec.Ports {
		servicePorts = append(servicePorts, p.ServicePort)
	}
	o := obj{
		"id":           t.id,
		"appId":        t.appID,
		"host":         ag.Hostname,
		"slaveId":      ag.ID,
		"state":        t.state,
		"ports":        refHostPortsJSON(t.hostPorts),
		"servicePorts": servicePorts,
		"ipAddresses":  ips,
		"stagedAt":     marathonTime(t.stagedAt),
		"version":      marathonTime(t.version),
	}
	if !c.legacy {
		o["localVolumes"] = []any{}
		o["role"] = "*"
	}
	if !t.startedAt.IsZero() {
		o["startedAt"] = marathonTime(t.startedAt)
	}
	if t.healthy != nil && !t.blind {
		o["healthCheckResults"] = []any{c.refHealthResultJSON(t)}
	}
	return o
}

func refHostPortsJSON(ports []uint16) []any {
	out := make([]any, 0, len(ports))
	for _, p := range ports {
		out = append(out, p)
	}
	return out
}

// refHealthResultJSON renders one health check result (healthCheck.raml
// Health; ≤1.4 names the task with taskId instead of instanceId).
func (c *cluster) refHealthResultJSON(t *task) obj {
	o := obj{
		"alive":               *t.healthy,
		"consecutiveFailures": t.failures,
		"firstSuccess":        refOptTime(t.firstSuccess),
		"lastSuccess":         refOptTime(t.lastSuccess),
		"lastFailure":         refOptTime(t.lastFailure),
	}
	if !*t.healthy {
		o["lastFailureCause"] = "500 Internal Server Error"
	}
	if c.legacy {
		o["taskId"] = t.id
	} else {
		o["instanceId"] = t.instanceID
	}
	return o
}

func refOptTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return marathonTime(t)
}

// refNewEvent marshals fields with eventType and timestamp added, the two
// fields every Marathon event has (mesosphere/marathon
// src/main/scala/mesosphere/marathon/api/v2/json/Formats.scala).
func refNewEvent(eventType string, now time.Time, fields obj) event {
	fields["eventType"] = eventType
	fields["timestamp"] = marathonTime(now)
	data, err := json.Marshal(fields)
	if err != nil {
		// Only values built in this package reach here; they always
		// marshal. Keep the stream well-formed anyway.
		data = []byte(`{"eventType":"` + eventType + `"}`)
	}
	return event{Type: eventType, Data: data}
}

// refStatusUpdateEvent is status_update_event for t's current state
// (docs/docs/event-bus.md "Status Update"; ipAddresses as written by
// InstanceChangedEventsGenerator).
func (c *cluster) refStatusUpdateEvent(t *task, now time.Time) event {
	ag := c.agents[t.agent]
	ips := make([]any, 0, len(t.ips))
	for _, ip := range t.ips {
		proto := "IPv4"
		if ip.Is6() {
			proto = "IPv6"
		}
		ips = append(ips, obj{"ipAddress": ip.String(), "protocol": proto})
	}
	fields := obj{
		"slaveId":    ag.ID,
		"taskId":     t.id,
		"taskStatus": t.state,
		"message":    "",
		"appId":      t.appID,
		"host":       ag.Hostname,
		"ports":      refHostPortsJSON(t.hostPorts),
		"version":    marathonTime(t.version),
	}
	if !c.legacy {
		fields["ipAddresses"] = ips
	}
	return refNewEvent("status_update_event", now, fields)
}

// refInstanceChangedEvent is instance_changed_event (Marathon ≥1.4) for t's
// current state; nil in the legacy shape.
func (c *cluster) refInstanceChangedEvent(t *task, now time.Time) []event {
	if c.legacy {
		return nil
	}
	return []event{refNewEvent("instance_changed_event", now, obj{
		"instanceId":     t.instanceID,
		"condition":      condition(t.state),
		"runSpecId":      t.appID,
		"agentId":        c.agents[t.agent].ID,
		"host":           c.agents[t.agent].Hostname,
		"runSpecVersion": marathonTime(t.version),
	})}
}

// refHealthEvents are the events of a health change: Marathon-side
// health_status_changed_event (its instanceId equals the task id in the
// legacy shape) and, except in the legacy shape,
// instance_health_changed_event.
func (c *cluster) refHealthEvents(t *task, now time.Time) []event {
	out := []event{refNewEvent("health_status_changed_event", now, obj{
		"appId":      t.appID,
		"instanceId": t.instanceID,
		"version":    marathonTime(t.version),
		"alive":      *t.healthy,
	})}
	if c.legacy {
		return out
	}
	return append(out, refNewEvent("instance_health_changed_event", now, obj{
		"instanceId":     t.instanceID,
		"runSpecId":      t.appID,
		"runSpecVersion": marathonTime(t.version),
		"healthy":        *t.healthy,
	}))
}

// refApiPostEvent is api_post_event for a create or update of a through the
// REST API, carrying the full app definition.
func (c *cluster) refApiPostEvent(a *app, uri string, now time.Time) event {
	return refNewEvent("api_post_event", now, obj{
		"clientIp":      "127.0.0.1",
		"uri":           uri,
		"appDefinition": c.refAppJSON(a, false),
	})
}

// refDeploymentSuccess is deployment_success for a deployment of appID,
// with the plan in the shape of docs/docs/event-bus.md deployment_info.
func (c *cluster) refDeploymentSuccess(appID string, now time.Time) event {
	c.seq++
	id := deploymentID(c.seq)
	return refNewEvent("deployment_success", now, obj{
		"id": id,
		"plan": obj{
			"id":      id,
			"steps":   []any{obj{"action": "ScaleApplication", "app": appID}},
			"version": marathonTime(now),
		},
	})
}

// refAppTerminatedEvent is app_terminated_event.
func refAppTerminatedEvent(appID string, now time.Time) event {
	return refNewEvent("app_terminated_event", now, obj{"appId": appID})
}

// refStreamEvent is event_stream_attached or event_stream_detached.
func refStreamEvent(eventType, remote string, now time.Time) event {
	return refNewEvent(eventType, now, obj{"remoteAddress": remote})
}

package marathontest

import (
	"time"
)

// obj is a JSON object; encoding/json writes its keys sorted, so output is
// stable.
type obj = map[string]any

// marathonTime formats t as Marathon does ("2017-07-19T17:34:41.967Z").
func marathonTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// appJSON renders a in the shape of GET /v2/apps: Marathon ≥1.5
// (networks, container.portMappings) or, with legacy, ≤1.4
// (container.docker.network, container.docker.portMappings, ipAddress,
// ports). Field names follow the RAML types in mesosphere/marathon
// docs/docs/rest-api/public/api/v2/types/app.raml and appContainer.raml.
func (c *cluster) appJSON(a *app, withTasks bool) obj {
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
		"labels":                labelsJSON(s.Labels),
		"version":               marathonTime(a.version),
		"versionInfo": obj{
			"lastScalingAt":      marathonTime(a.lastScaling),
			"lastConfigChangeAt": marathonTime(a.lastConfig),
		},
		"requirePorts":  false,
		"healthChecks":  healthChecksJSON(s),
		"deployments":   []any{},
		"killSelection": "YOUNGEST_FIRST",
		"unreachableStrategy": obj{
			"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600,
		},
	}
	if c.legacy {
		c.legacyNetworking(a, o)
	} else {
		c.networking(a, o)
	}
	counts(a, o)
	if withTasks {
		tasks := make([]any, 0, len(a.tasks))
		for _, t := range a.tasks {
			tasks = append(tasks, c.taskJSON(a, t))
		}
		o["tasks"] = tasks
	}
	return o
}

// networking fills the ≥1.5 fields: networks, portDefinitions,
// container.portMappings.
func (c *cluster) networking(a *app, o obj) {
	s := a.spec
	switch s.Network {
	case NetworkHost:
		o["networks"] = []any{obj{"mode": "host"}}
		o["portDefinitions"] = portDefinitionsJSON(s.Ports)
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
				"labels":        labelsJSON(p.Labels),
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
			"docker":       dockerJSON(),
			"portMappings": mappings,
		}
	}
}

// legacyNetworking fills the ≤1.4 fields: container.docker.network
// HOST/BRIDGE/USER, container.docker.portMappings, ipAddress with
// discovery ports, and the old ports list.
func (c *cluster) legacyNetworking(a *app, o obj) {
	s := a.spec
	servicePorts := make([]any, 0, len(s.Ports))
	for _, p := range s.Ports {
		servicePorts = append(servicePorts, p.ServicePort)
	}
	o["ports"] = servicePorts
	switch s.Network {
	case NetworkHost:
		o["portDefinitions"] = portDefinitionsJSON(s.Ports)
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
				"labels":        labelsJSON(p.Labels),
			}
			if p.Name != "" {
				m["name"] = p.Name
			}
			mappings = append(mappings, m)
		}
		docker := dockerJSON()
		docker["network"] = "BRIDGE"
		docker["portMappings"] = mappings
		o["container"] = obj{"type": "DOCKER", "volumes": []any{}, "docker": docker}
		o["ipAddress"] = nil
	case NetworkContainer:
		o["portDefinitions"] = []any{}
		ports := make([]any, 0, len(s.Ports))
		for _, p := range s.Ports {
			dp := obj{"number": p.ContainerPort, "protocol": p.Protocol, "labels": labelsJSON(p.Labels)}
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

func portDefinitionsJSON(ports []PortSpec) []any {
	out := make([]any, 0, len(ports))
	for _, p := range ports {
		d := obj{"port": p.ServicePort, "protocol": p.Protocol, "labels": labelsJSON(p.Labels)}
		if p.Name != "" {
			d["name"] = p.Name
		}
		out = append(out, d)
	}
	return out
}

// hostPortSpec is the hostPort as declared (0 = dynamic).
func hostPortSpec(p PortSpec) uint16 {
	if p.HostPort == nil {
		return 0
	}
	return *p.HostPort
}

func dockerJSON() obj {
	return obj{
		"image":          "nginx:alpine",
		"forcePullImage": false,
		"privileged":     false,
		"parameters":     []any{},
	}
}

func labelsJSON(labels map[string]string) obj {
	o := make(obj, len(labels))
	for k, v := range labels {
		o[k] = v
	}
	return o
}

func healthChecksJSON(s AppSpec) []any {
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

// counts fills tasksStaged/Running/Healthy/Unhealthy.
func counts(a *app, o obj) {
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

// taskJSON renders t as in /v2/apps?embed=apps.tasks and /v2/tasks
// (task.raml: id, appId, host, slaveId, state, ports, servicePorts,
// ipAddresses, stagedAt, startedAt, version, healthCheckResults).
func (c *cluster) taskJSON(a *app, t *task) obj {
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
		"ports":        hostPortsJSON(t.hostPorts),
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
		o["healthCheckResults"] = []any{c.healthResultJSON(t)}
	}
	return o
}

func hostPortsJSON(ports []uint16) []any {
	out := make([]any, 0, len(ports))
	for _, p := range ports {
		out = append(out, p)
	}
	return out
}

// healthResultJSON renders one health check result (healthCheck.raml
// Health; ≤1.4 names the task with taskId instead of instanceId).
func (c *cluster) healthResultJSON(t *task) obj {
	o := obj{
		"alive":               *t.healthy,
		"consecutiveFailures": t.failures,
		"firstSuccess":        optTime(t.firstSuccess),
		"lastSuccess":         optTime(t.lastSuccess),
		"lastFailure":         optTime(t.lastFailure),
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

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return marathonTime(t)
}

// infoJSON renders GET /v2/info (examples/info.json).
func (c *cluster) infoJSON(elected bool, leader, self, mesosURL string) obj {
	version := "1.5.0"
	if c.legacy {
		version = "1.4.12"
	}
	return obj{
		"name":        "marathon",
		"version":     version,
		"buildref":    "marathontest",
		"elected":     elected,
		"leader":      leader,
		"frameworkId": c.frameworkID,
		"marathon_config": obj{
			"framework_name":       c.framework,
			"hostname":             "127.0.0.1",
			"master":               mesosURL,
			"mesos_leader_ui_url":  mesosURL + "/",
			"webui_url":            self,
			"local_port_min":       firstServicePort,
			"local_port_max":       20000,
			"default_network_name": "dcos",
			"mesos_bridge_name":    "mesos-bridge",
			"ha":                   true,
			"checkpoint":           true,
			"features":             []any{},
			"mesos_role":           "*",
			"mesos_user":           "root",
		},
		"zookeeper_config": obj{"zk": "zk://127.0.0.1:2181/marathon"},
		"http_config":      obj{"http_port": 8080, "https_port": 8443},
	}
}

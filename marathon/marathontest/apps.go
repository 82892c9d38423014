package marathontest

import (
	"time"
)

// obj is a JSON object for the small answers (/v2/info, /v2/leader,
// errors) and the Mesos state; encoding/json writes its keys sorted, so
// output is stable.
type obj = map[string]any

// marathonTime formats t as Marathon does ("2017-07-19T17:34:41.967Z").
func marathonTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// appendApp appends a in the shape of GET /v2/apps: Marathon ≥1.5
// (networks, container.portMappings) or, with legacy, ≤1.4
// (container.docker.network, container.docker.portMappings, ipAddress,
// ports). Field names follow the RAML types in mesosphere/marathon
// docs/docs/rest-api/public/api/v2/types/app.raml and appContainer.raml.
// Keys are in sorted order (render.go).
func (c *cluster) appendApp(b []byte, a *app, withTasks bool) []byte {
	s := a.spec
	b = append(b, `{"args":null,"backoffFactor":1.15,"backoffSeconds":1,"cmd":"sleep 1000000","constraints":[],"container":`...)
	b = c.appendContainer(b, s)
	b = append(b, `,"cpus":0.1,"dependencies":[],"deployments":[],"disk":0,"env":{},"executor":"","fetch":[],"gpus":0,"healthChecks":`...)
	if s.HealthChecks {
		b = append(b, `[{"delaySeconds":15,"gracePeriodSeconds":300,"intervalSeconds":60,"maxConsecutiveFailures":3,"path":"/","portIndex":0,"protocol":"MESOS_HTTP","timeoutSeconds":20}]`...)
	} else {
		b = append(b, "[]"...)
	}
	b = append(b, `,"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"instances":`...)
	b = appendInt(b, s.Instances)
	if c.legacy {
		b = append(b, `,"ipAddress":`...)
		b = appendLegacyIPAddress(b, s)
	}
	b = append(b, `,"killSelection":"YOUNGEST_FIRST","labels":`...)
	b = appendLabels(b, s.Labels)
	b = append(b, `,"maxLaunchDelaySeconds":3600,"mem":32`...)
	if !c.legacy {
		b = append(b, `,"networks":`...)
		b = appendNetworks(b, s)
	}
	b = append(b, `,"portDefinitions":`...)
	if s.Network == NetworkHost {
		b = appendPortDefinitions(b, s.Ports)
	} else {
		b = append(b, "[]"...)
	}
	if c.legacy {
		b = append(b, `,"ports":`...)
		b = appendServicePorts(b, s.Ports)
	}
	b = append(b, `,"requirePorts":false,"storeUrls":[]`...)
	if withTasks {
		b = append(b, `,"tasks":[`...)
		for i, t := range a.tasks {
			if i > 0 {
				b = append(b, ',')
			}
			b = c.appendTask(b, a, t)
		}
		b = append(b, ']')
	}
	staged, running, healthy, unhealthy := counts(a)
	b = append(b, `,"tasksHealthy":`...)
	b = appendInt(b, healthy)
	b = append(b, `,"tasksRunning":`...)
	b = appendInt(b, running)
	b = append(b, `,"tasksStaged":`...)
	b = appendInt(b, staged)
	b = append(b, `,"tasksUnhealthy":`...)
	b = appendInt(b, unhealthy)
	b = append(b, `,"unreachableStrategy":{"expungeAfterSeconds":600,"inactiveAfterSeconds":300},"upgradeStrategy":{"maximumOverCapacity":1,"minimumHealthCapacity":1},"uris":[],"user":null,"version":`...)
	b = appendTime(b, a.version)
	b = append(b, `,"versionInfo":{"lastConfigChangeAt":`...)
	b = appendTime(b, a.lastConfig)
	b = append(b, `,"lastScalingAt":`...)
	b = appendTime(b, a.lastScaling)
	return append(b, "}}"...)
}

// appendContainer appends the app's container: null for host networking;
// for ≥1.5 a DOCKER container with portMappings; for ≤1.4 a DOCKER
// container with docker.network BRIDGE and docker.portMappings (bridge) or
// a MESOS container (container networking, whose ports are in ipAddress).
func (c *cluster) appendContainer(b []byte, s AppSpec) []byte {
	switch {
	case s.Network == NetworkHost:
		return append(b, "null"...)
	case !c.legacy:
		b = append(b, `{"docker":{"forcePullImage":false,"image":"nginx:alpine","parameters":[],"privileged":false},"portMappings":`...)
		b = appendPortMappings(b, s)
		return append(b, `,"type":"DOCKER","volumes":[]}`...)
	case s.Network == NetworkBridge:
		b = append(b, `{"docker":{"forcePullImage":false,"image":"nginx:alpine","network":"BRIDGE","parameters":[],"portMappings":`...)
		b = appendPortMappings(b, s)
		return append(b, `,"privileged":false},"type":"DOCKER","volumes":[]}`...)
	default:
		return append(b, `{"type":"MESOS","volumes":[]}`...)
	}
}

// appendPortMappings appends container(.docker).portMappings; hostPort is
// there when the port has one (always under bridge networking), 0 for a
// dynamic one.
func appendPortMappings(b []byte, s AppSpec) []byte {
	b = append(b, '[')
	for i, p := range s.Ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"containerPort":`...)
		b = appendUint16(b, p.ContainerPort)
		if p.hasHostPort(s.Network) {
			b = append(b, `,"hostPort":`...)
			b = appendUint16(b, hostPortSpec(p))
		}
		b = append(b, `,"labels":`...)
		b = appendLabels(b, p.Labels)
		if p.Name != "" {
			b = append(b, `,"name":`...)
			b = appendString(b, p.Name)
		}
		b = append(b, `,"protocol":`...)
		b = appendString(b, p.Protocol)
		b = append(b, `,"servicePort":`...)
		b = appendUint16(b, p.ServicePort)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendNetworks appends the ≥1.5 networks list.
func appendNetworks(b []byte, s AppSpec) []byte {
	switch s.Network {
	case NetworkHost:
		return append(b, `[{"mode":"host"}]`...)
	case NetworkBridge:
		return append(b, `[{"mode":"container/bridge"}]`...)
	default:
		b = append(b, `[{"mode":"container","name":`...)
		b = appendString(b, s.networkName())
		return append(b, "}]"...)
	}
}

// appendLegacyIPAddress appends the ≤1.4 ipAddress: null except under
// container networking, where it carries the network name and the
// discovery ports.
func appendLegacyIPAddress(b []byte, s AppSpec) []byte {
	if s.Network != NetworkContainer {
		return append(b, "null"...)
	}
	b = append(b, `{"discovery":{"ports":`...)
	b = appendPorts(b, s.Ports, `,"number":`, func(p PortSpec) uint16 { return p.ContainerPort })
	b = append(b, `},"groups":[],"labels":{},"networkName":`...)
	b = appendString(b, s.networkName())
	return append(b, '}')
}

// appendPortDefinitions appends portDefinitions (host networking).
func appendPortDefinitions(b []byte, ports []PortSpec) []byte {
	return appendPorts(b, ports, `,"port":`, func(p PortSpec) uint16 { return p.ServicePort })
}

// appendPorts appends ports as a JSON array of {labels, name, <number>,
// protocol} objects, keys in order; numberKey is `,"<key>":` and number
// picks the port's number.
func appendPorts(b []byte, ports []PortSpec, numberKey string, number func(PortSpec) uint16) []byte {
	b = append(b, '[')
	for i, p := range ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"labels":`...)
		b = appendLabels(b, p.Labels)
		if p.Name != "" {
			b = append(b, `,"name":`...)
			b = appendString(b, p.Name)
		}
		b = append(b, numberKey...)
		b = appendUint16(b, number(p))
		b = append(b, `,"protocol":`...)
		b = appendString(b, p.Protocol)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendServicePorts appends the service ports as a list of numbers.
func appendServicePorts(b []byte, ports []PortSpec) []byte {
	b = append(b, '[')
	for i, p := range ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint16(b, p.ServicePort)
	}
	return append(b, ']')
}

// hostPortSpec is the hostPort as declared (0 = dynamic).
func hostPortSpec(p PortSpec) uint16 {
	if p.HostPort == nil {
		return 0
	}
	return *p.HostPort
}

// counts are tasksStaged/Running/Healthy/Unhealthy.
func counts(a *app) (staged, running, healthy, unhealthy int) {
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
	return staged, running, healthy, unhealthy
}

// appendTask appends t as in /v2/apps?embed=apps.tasks and /v2/tasks
// (task.raml: id, appId, host, slaveId, state, ports, servicePorts,
// ipAddresses, stagedAt, startedAt, version, healthCheckResults), keys
// sorted.
func (c *cluster) appendTask(b []byte, a *app, t *task) []byte {
	ag := &c.agents[t.agent]
	b = append(b, `{"appId":`...)
	b = appendString(b, t.appID)
	if t.healthy != nil && !t.blind {
		b = append(b, `,"healthCheckResults":[`...)
		b = c.appendHealthResult(b, t)
		b = append(b, ']')
	}
	b = append(b, `,"host":`...)
	b = appendString(b, ag.Hostname)
	b = append(b, `,"id":`...)
	b = appendString(b, t.id)
	b = append(b, `,"ipAddresses":`...)
	b = appendIPAddresses(b, t.ips)
	if !c.legacy {
		b = append(b, `,"localVolumes":[]`...)
	}
	b = append(b, `,"ports":`...)
	b = appendUint16s(b, t.hostPorts)
	if !c.legacy {
		b = append(b, `,"role":"*"`...)
	}
	b = append(b, `,"servicePorts":`...)
	b = appendServicePorts(b, a.spec.Ports)
	b = append(b, `,"slaveId":`...)
	b = appendString(b, ag.ID)
	b = append(b, `,"stagedAt":`...)
	b = appendTime(b, t.stagedAt)
	if !t.startedAt.IsZero() {
		b = append(b, `,"startedAt":`...)
		b = appendTime(b, t.startedAt)
	}
	b = append(b, `,"state":`...)
	b = appendString(b, t.state)
	b = append(b, `,"version":`...)
	b = appendTime(b, t.version)
	return append(b, '}')
}

// appendHealthResult appends one health check result (healthCheck.raml
// Health; ≤1.4 names the task with taskId instead of instanceId).
func (c *cluster) appendHealthResult(b []byte, t *task) []byte {
	b = append(b, `{"alive":`...)
	b = appendBool(b, *t.healthy)
	b = append(b, `,"consecutiveFailures":`...)
	b = appendInt(b, t.failures)
	b = append(b, `,"firstSuccess":`...)
	b = appendOptTime(b, t.firstSuccess)
	if !c.legacy {
		b = append(b, `,"instanceId":`...)
		b = appendString(b, t.instanceID)
	}
	b = append(b, `,"lastFailure":`...)
	b = appendOptTime(b, t.lastFailure)
	if !*t.healthy {
		b = append(b, `,"lastFailureCause":"500 Internal Server Error"`...)
	}
	b = append(b, `,"lastSuccess":`...)
	b = appendOptTime(b, t.lastSuccess)
	if c.legacy {
		b = append(b, `,"taskId":`...)
		b = appendString(b, t.id)
	}
	return append(b, '}')
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

package marathon

// Marathon pods: GET /v2/pods/::status and GET /v2/pods/{id}::status
// decoded into discovery Apps, one App per pod and one Task per instance.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// podStatusJSON is a PodStatus (types/podStatus.raml): the pod's current
// definition (spec) and its instances. VIP labels are read from the spec's
// endpoints, backends from the instances.
type podStatusJSON struct {
	ID        string            `json:"id"`
	Spec      *podSpecJSON      `json:"spec"`
	Instances []podInstanceJSON `json:"instances"`
}

// podSpecJSON is the part of a Pod (types/pod.raml) discovery uses.
type podSpecJSON struct {
	ID         string             `json:"id"`
	Version    string             `json:"version"`
	Containers []podContainerJSON `json:"containers"`
	Networks   []networkJSON      `json:"networks"`
}

// podContainerJSON is a PodContainer (types/podContainer.raml): its name,
// endpoints and whether it has a health check.
type podContainerJSON struct {
	Name        string            `json:"name"`
	Endpoints   []podEndpointJSON `json:"endpoints"`
	HealthCheck json.RawMessage   `json:"healthCheck"`
}

// podEndpointJSON is an Endpoint (types/network.raml). HostPort is a
// pointer because its absence matters on a container network.
type podEndpointJSON struct {
	Name          string            `json:"name"`
	ContainerPort int               `json:"containerPort"`
	HostPort      *int              `json:"hostPort"`
	Protocol      podProtocols      `json:"protocol"`
	Labels        map[string]string `json:"labels"`
}

// podProtocols is an endpoint's protocol array. A string is taken as a
// one-element array (the DC/OS UI's podEFGH mock writes one); anything
// else gives none.
type podProtocols []string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (p *podProtocols) UnmarshalJSON(b []byte) error {
	*p = nil
	var list []string
	if json.Unmarshal(b, &list) == nil {
		*p = list
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*p = []string{one}
	}
	return nil
}

// podInstanceJSON is a PodInstanceStatus.
type podInstanceJSON struct {
	ID            string                   `json:"id"`
	Status        string                   `json:"status"`
	AgentHostname string                   `json:"agentHostname"`
	AgentID       string                   `json:"agentId"`
	Networks      []podNetworkStatusJSON   `json:"networks"`
	Containers    []podContainerStatusJSON `json:"containers"`
	LastUpdated   string                   `json:"lastUpdated"`
	LastChanged   string                   `json:"lastChanged"`
}

// podNetworkStatusJSON is a NetworkStatus: the instance's addresses on one
// network.
type podNetworkStatusJSON struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// podContainerStatusJSON is a ContainerStatus: the container's Mesos task
// state, health conditions and allocated host ports.
type podContainerStatusJSON struct {
	Name        string                  `json:"name"`
	Status      string                  `json:"status"`
	Conditions  []podConditionJSON      `json:"conditions"`
	Endpoints   []podEndpointStatusJSON `json:"endpoints"`
	LastUpdated string                  `json:"lastUpdated"`
	LastChanged string                  `json:"lastChanged"`
}

// podConditionJSON is a StatusCondition; the one named "healthy" carries
// the container's health as "true" or "false".
type podConditionJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// podEndpointStatusJSON is a ContainerEndpointStatus. It is present only
// while the container's task is active; allocatedHostPort only for an
// endpoint whose spec has a hostPort.
type podEndpointStatusJSON struct {
	Name              string `json:"name"`
	AllocatedHostPort int    `json:"allocatedHostPort"`
	Healthy           *bool  `json:"healthy"`
}

// DecodePods decodes the body of GET /v2/pods/::status (a PodStatus
// array) into one App per pod. resolve maps agent host names to
// addresses; it may be nil. A pod without an id fails the whole body, as
// an app without one does.
func DecodePods(r io.Reader, resolve func(host string) netip.Addr) ([]discovery.App, error) {
	var pods []podStatusJSON
	if err := json.NewDecoder(r).Decode(&pods); err != nil {
		return nil, fmt.Errorf("decode marathon pods: %w", err)
	}
	apps := make([]discovery.App, 0, len(pods))
	for i := range pods {
		app, err := pods[i].toApp(resolve)
		if err != nil {
			return nil, fmt.Errorf("decode marathon pods: pod %d: %w", i, err)
		}
		apps = append(apps, app)
	}
	return apps, nil
}

// DecodePod decodes one PodStatus, the body of GET /v2/pods/{id}::status.
func DecodePod(data []byte, resolve func(host string) netip.Addr) (discovery.App, error) {
	var p podStatusJSON
	if err := json.Unmarshal(data, &p); err != nil {
		return discovery.App{}, fmt.Errorf("decode marathon pod: %w", err)
	}
	app, err := p.toApp(resolve)
	if err != nil {
		return discovery.App{}, fmt.Errorf("decode marathon pod: %w", err)
	}
	return app, nil
}

var errNoPodID = errors.New("pod without id")

// toApp converts a PodStatus: the pod id is the App's ID, its endpoints
// are the Ports, its instances the Tasks.
func (p *podStatusJSON) toApp(resolve func(string) netip.Addr) (discovery.App, error) {
	spec := p.Spec
	if spec == nil {
		spec = &podSpecJSON{}
	}
	id := p.ID
	if id == "" {
		id = spec.ID
	}
	if id == "" {
		return discovery.App{}, errNoPodID
	}
	app := discovery.App{ID: id, Framework: DefaultFramework, Version: spec.Version, Ports: spec.ports()}
	for _, c := range spec.Containers {
		app.HealthChecks = app.HealthChecks || len(c.HealthCheck) > 0 && string(c.HealthCheck) != "null"
	}
	hostEndpoints := spec.hostEndpoints()
	for i := range p.Instances {
		if t, ok := p.Instances[i].toTask(hostEndpoints, resolve); ok {
			app.Tasks = append(app.Tasks, t)
		}
	}
	return app, nil
}

// podMode is the pod's networking mode, from networks[0] as for apps
// (Marathon rejects mixing host with container networks; the first one
// decides for a pod that mixes them anyway). No networks is host-like:
// Marathon gives every endpoint a host port (PodNormalization).
func (s *podSpecJSON) podMode() netMode {
	return (&appJSON{Networks: s.Networks}).mode()
}

// hasHostPort reports whether endpoint e has a host port: always outside
// container mode (Marathon defaults hostPort to 0, dynamic), and where
// given in container mode.
func (s *podSpecJSON) hasHostPort(e *podEndpointJSON, mode netMode) bool {
	return mode != modeContainer || e.HostPort != nil
}

// ports returns one Port per endpoint, in container then endpoint order.
// The instance's allocated host ports are those of the endpoints that have
// one, in that order: HostPortIndex counts only them, and is assigned
// before ports with an unusable protocol or container port are dropped.
func (s *podSpecJSON) ports() []discovery.Port {
	mode := s.podMode()
	kind := discovery.PortMapped
	if mode == modeHost {
		kind = discovery.PortHost
	}
	var ports []discovery.Port
	hostIndex := 0
	for ci := range s.Containers {
		for ei := range s.Containers[ci].Endpoints {
			e := &s.Containers[ci].Endpoints[ei]
			var p discovery.Port
			if s.hasHostPort(e, mode) {
				p = newPort(kind, hostIndex, 0, "", e.Name, e.Labels)
				hostIndex++
			} else {
				p = newPort(discovery.PortContainer, 0, e.ContainerPort, "", e.Name, e.Labels)
			}
			p.Protocols = endpointProtocols(e.Protocol)
			if len(p.Protocols) == 0 || p.Kind == discovery.PortContainer && p.ContainerPort == 0 {
				continue
			}
			ports = append(ports, p)
		}
	}
	return ports
}

// endpointProtocols returns the tcp and udp of an endpoint's protocols;
// none means tcp. Other protocols ("http") make DiscoveryInfo ports that
// dcos-net ignores, so they declare no VIP.
func endpointProtocols(names podProtocols) []discovery.Protocol {
	if len(names) == 0 {
		return []discovery.Protocol{discovery.TCP}
	}
	var out []discovery.Protocol
	for _, n := range names {
		p, err := discovery.ParseProtocol(n)
		if err == nil && !containsProtocol(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func containsProtocol(ps []discovery.Protocol, p discovery.Protocol) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// endpointRef names an endpoint that has a host port: its container and
// its own name.
type endpointRef struct{ container, endpoint string }

// hostEndpoints lists the endpoints with a host port in HostPortIndex
// order.
func (s *podSpecJSON) hostEndpoints() []endpointRef {
	mode := s.podMode()
	var out []endpointRef
	for _, c := range s.Containers {
		for ei := range c.Endpoints {
			if s.hasHostPort(&c.Endpoints[ei], mode) {
				out = append(out, endpointRef{c.Name, c.Endpoints[ei].Name})
			}
		}
	}
	return out
}

// toTask converts one instance. Its host ports are the allocatedHostPort
// of each endpoint in hostEndpoints, 0 (none: no backend) where the
// container's task is not active; its IPs are every network address.
func (in *podInstanceJSON) toTask(hostEndpoints []endpointRef, resolve func(string) netip.Addr) (discovery.Task, bool) {
	if in.ID == "" {
		return discovery.Task{}, false
	}
	t := discovery.Task{
		ID:      in.ID,
		Host:    in.AgentHostname,
		AgentIP: hostAddr(resolve, in.AgentHostname),
		AgentID: in.AgentID,
		State:   in.state(),
		Health:  in.health(),
		Updated: in.updated(),
	}
	if len(hostEndpoints) > 0 {
		t.HostPorts = make([]uint16, len(hostEndpoints))
		for i, ref := range hostEndpoints {
			t.HostPorts[i] = in.allocatedHostPort(ref)
		}
	}
	for _, n := range in.Networks {
		for _, s := range n.Addresses {
			if a, ok := parseIP(s); ok && !containsAddr(t.IPs, a) {
				t.IPs = append(t.IPs, a)
			}
		}
	}
	return t, true
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// allocatedHostPort returns the host port allocated to ref, or 0.
func (in *podInstanceJSON) allocatedHostPort(ref endpointRef) uint16 {
	for _, c := range in.Containers {
		if c.Name != ref.container {
			continue
		}
		for _, e := range c.Endpoints {
			if e.Name == ref.endpoint {
				return portNumber(e.AllocatedHostPort)
			}
		}
	}
	return 0
}

// state folds the instance status and its containers' Mesos states: a
// TERMINAL instance is terminal; one with a container being killed is
// killing (its backends drain); one with a running container is running;
// any other is starting. Container states are Mesos names; the TASK_
// prefix is added where missing (the podEFGH mock writes "RUNNING").
func (in *podInstanceJSON) state() discovery.TaskState {
	if strings.EqualFold(in.Status, "TERMINAL") {
		return discovery.TaskTerminal
	}
	running, killing, terminal := 0, 0, 0
	for _, c := range in.Containers {
		s := strings.ToUpper(c.Status)
		if !strings.HasPrefix(s, "TASK_") {
			s = "TASK_" + s
		}
		switch FrameworkTaskState(s) {
		case discovery.TaskRunning:
			running++
		case discovery.TaskKilling:
			killing++
		case discovery.TaskTerminal:
			terminal++
		}
	}
	switch {
	case killing > 0:
		return discovery.TaskKilling
	case running > 0:
		return discovery.TaskRunning
	case len(in.Containers) > 0 && terminal == len(in.Containers):
		return discovery.TaskTerminal
	}
	return discovery.TaskStarting
}

// health folds the containers' "healthy" conditions and endpoint health:
// any false is unhealthy, all known true is healthy, none known is
// HealthNone.
func (in *podInstanceJSON) health() discovery.Health {
	h := discovery.HealthNone
	for _, c := range in.Containers {
		for _, cond := range c.Conditions {
			if !strings.EqualFold(cond.Name, "healthy") {
				continue
			}
			switch strings.ToLower(cond.Value) {
			case "true":
				h = max(h, discovery.HealthHealthy)
			case "false":
				return discovery.HealthUnhealthy
			}
		}
		for _, e := range c.Endpoints {
			if e.Healthy == nil {
				continue
			}
			if !*e.Healthy {
				return discovery.HealthUnhealthy
			}
			h = max(h, discovery.HealthHealthy)
		}
	}
	return h
}

// updated is the latest lastUpdated or lastChanged of the instance and
// its containers: when the instance last changed, by Marathon's clock.
func (in *podInstanceJSON) updated() time.Time {
	var t time.Time
	stamps := []string{in.LastUpdated, in.LastChanged}
	for _, c := range in.Containers {
		stamps = append(stamps, c.LastUpdated, c.LastChanged)
	}
	for _, s := range stamps {
		t = later(t, parseTime(s))
	}
	return t
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

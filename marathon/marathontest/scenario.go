package marathontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vipbridge/vipbridge/fixtures"
)

// Scenario describes the cluster a Server starts with. Scenario files are
// JSON under fixtures/scenarios/ (see LoadScenario).
type Scenario struct {
	// Framework is Marathon's Mesos framework name; "" means "marathon".
	Framework string `json:"framework,omitempty"`
	// Agents are the Mesos agents tasks run on; tasks are placed round
	// robin. At least one is required when there are apps.
	Agents []Agent `json:"agents"`
	// Apps are the Marathon apps deployed at start.
	Apps []AppSpec `json:"apps,omitempty"`
	// Pods are the Marathon pods deployed at start (pods.go).
	Pods []PodSpec `json:"pods,omitempty"`
	// Frameworks are other Mesos frameworks whose tasks appear only in the
	// master state.
	Frameworks []Framework `json:"frameworks,omitempty"`
}

// Agent is one Mesos agent.
type Agent struct {
	// ID is the agent (slave) id; "" means "<scenario id>-S<n>".
	ID string `json:"id,omitempty"`
	// Hostname is what Marathon reports as a task's host; "" means the IP
	// as text (as on many real clusters), so it needs no resolver.
	Hostname string `json:"hostname,omitempty"`
	// IP is the agent's address, reported in the master state as
	// slaves[].pid "slave(1)@IP:5051". Use loopback addresses so that
	// backends are reachable in tests and the demo.
	IP netip.Addr `json:"ip"`
}

// Networking modes of an AppSpec (Marathon ≥1.5 networks[].mode).
const (
	NetworkHost      = "host"      // mode "host": portDefinitions, agent IP : host port
	NetworkBridge    = "bridge"    // mode "container/bridge": portMappings with host ports
	NetworkContainer = "container" // mode "container": portMappings, task IP : container port
)

// AppSpec is a Marathon app as a scenario or AddApp declares it.
type AppSpec struct {
	// ID is the app path, e.g. "/shop/web".
	ID string `json:"id"`
	// Instances is the number of tasks.
	Instances int `json:"instances"`
	// Network is NetworkHost (default), NetworkBridge or NetworkContainer.
	Network string `json:"network,omitempty"`
	// NetworkName names the container network; "" means "dcos". Only for
	// NetworkContainer.
	NetworkName string `json:"networkName,omitempty"`
	// Ports are portDefinitions (host) or container.portMappings (bridge,
	// container), in order.
	Ports []PortSpec `json:"ports,omitempty"`
	// Labels are the app's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// HealthChecks gives the app one HTTP health check on port index 0.
	// New tasks report healthy once running; SetHealth changes that.
	HealthChecks bool `json:"healthChecks,omitempty"`
}

// PortSpec is one port of an AppSpec.
type PortSpec struct {
	// Name is the port name.
	Name string `json:"name,omitempty"`
	// Protocol is "tcp" (default), "udp" or "tcp,udp".
	Protocol string `json:"protocol,omitempty"`
	// ContainerPort is the port inside the container (bridge, container).
	ContainerPort uint16 `json:"containerPort,omitempty"`
	// HostPort is the host port of a port mapping: 0 = allocated per task
	// (the default for bridge), absent = none (the default for container
	// networking). Host networking always allocates one host port per port.
	HostPort *uint16 `json:"hostPort,omitempty"`
	// ServicePort is Marathon's service port (portDefinitions[].port for
	// host networking); 0 means allocated from 10000 upward.
	ServicePort uint16 `json:"servicePort,omitempty"`
	// Labels are the port's labels, e.g. {"VIP_0": "/shop/web:80"}.
	Labels map[string]string `json:"labels,omitempty"`
}

// Framework is another Mesos framework (not Marathon) with tasks carrying
// DiscoveryInfo.
type Framework struct {
	// ID is the framework id; "" means derived from the name.
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name"`
	Tasks []FrameworkTask `json:"tasks"`
}

// FrameworkTask is one task of another framework.
type FrameworkTask struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Agent is the index into Scenario.Agents.
	Agent int `json:"agent"`
	// State is the Mesos task state; "" means TASK_RUNNING.
	State string `json:"state,omitempty"`
	// Healthy is the latest status' health; absent means no health check.
	Healthy *bool `json:"healthy,omitempty"`
	// IPs are the task's container IPs; empty means the agent IP.
	IPs []netip.Addr `json:"ips,omitempty"`
	// Ports are the DiscoveryInfo ports.
	Ports []DiscoveryPort `json:"ports,omitempty"`
	// Labels are task labels (legacy VIP_PORT<n>=tcp://addr:port).
	Labels map[string]string `json:"labels,omitempty"`
}

// DiscoveryPort is one Mesos DiscoveryInfo port.
type DiscoveryPort struct {
	Number   uint16 `json:"number"`
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Scope is the network-scope label: "host", "container" or "" (none).
	// Host-scope numbers also appear in the task's port resources.
	Scope string `json:"scope,omitempty"`
	// NetworkName is the network-name label for container scope.
	NetworkName string            `json:"networkName,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// LoadScenario loads fixtures/scenarios/<name>.json from fixtures.FS
// (".json" may be given or left off).
func LoadScenario(name string) (*Scenario, error) {
	name = strings.TrimSuffix(name, ".json")
	data, err := fixtures.FS.ReadFile("scenarios/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("load scenario %s: %w", name, err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("load scenario %s: %w", name, err)
	}
	return sc, nil
}

// ParseScenario decodes and checks a scenario. Unknown fields are errors so
// that typos in scenario files do not pass silently.
func ParseScenario(data []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	if err := sc.check(); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	return &sc, nil
}

func (sc *Scenario) check() error {
	for i, a := range sc.Agents {
		if !a.IP.IsValid() {
			return fmt.Errorf("agent %d: missing ip", i)
		}
	}
	if len(sc.Apps) > 0 && len(sc.Agents) == 0 {
		return errors.New("apps need at least one agent")
	}
	seen := make(map[string]bool)
	for _, a := range sc.Apps {
		if err := a.check(); err != nil {
			return err
		}
		if seen[a.ID] {
			return fmt.Errorf("app %s: duplicate id", a.ID)
		}
		seen[a.ID] = true
	}
	for _, p := range sc.Pods {
		if err := p.check(); err != nil {
			return err
		}
		if seen[p.ID] {
			return fmt.Errorf("pod %s: duplicate id", p.ID)
		}
		seen[p.ID] = true
	}
	if len(sc.Pods) > 0 && len(sc.Agents) == 0 {
		return errors.New("pods need at least one agent")
	}
	for _, f := range sc.Frameworks {
		if f.Name == "" {
			return errors.New("framework without name")
		}
		for _, t := range f.Tasks {
			if t.ID == "" {
				return fmt.Errorf("framework %s: task without id", f.Name)
			}
			if t.Agent < 0 || t.Agent >= len(sc.Agents) {
				return fmt.Errorf("framework %s task %s: agent %d out of range", f.Name, t.ID, t.Agent)
			}
		}
	}
	return nil
}

func (a *AppSpec) check() error {
	if !strings.HasPrefix(a.ID, "/") || strings.HasSuffix(a.ID, "/") || strings.Contains(a.ID, "//") {
		return fmt.Errorf("app %q: id must be an absolute path like /group/app", a.ID)
	}
	if a.Instances < 0 {
		return fmt.Errorf("app %s: negative instances", a.ID)
	}
	switch a.Network {
	case "", NetworkHost, NetworkBridge, NetworkContainer:
	default:
		return fmt.Errorf("app %s: unknown network %q (want host, bridge or container)", a.ID, a.Network)
	}
	for i, p := range a.Ports {
		for _, proto := range strings.Split(p.protocol(), ",") {
			if proto != "tcp" && proto != "udp" {
				return fmt.Errorf("app %s port %d: unknown protocol %q", a.ID, i, p.Protocol)
			}
		}
		if a.network() != NetworkHost && p.ContainerPort == 0 {
			return fmt.Errorf("app %s port %d: containerPort required for %s networking", a.ID, i, a.network())
		}
	}
	return nil
}

func (a *AppSpec) network() string {
	if a.Network == "" {
		return NetworkHost
	}
	return a.Network
}

func (a *AppSpec) networkName() string {
	if a.NetworkName == "" {
		return "dcos"
	}
	return a.NetworkName
}

func (p *PortSpec) protocol() string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

// hasHostPort reports whether tasks get a host port for this port under
// the given networking mode.
func (p *PortSpec) hasHostPort(network string) bool {
	switch network {
	case NetworkHost, NetworkBridge:
		return true
	}
	return p.HostPort != nil
}

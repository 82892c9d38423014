package marathontest

// Marathon pods in the simulator: the scenario's PodSpec, the pods' state,
// GET /v2/pods, /v2/pods/::status and /v2/pods/{id}::status in the shape of
// types/pod.raml and types/podStatus.raml, the pod events of the event
// stream (Events.scala: pod_*_event carry no definition; each container's
// task has its own status_update_event) and the control methods that add,
// scale, kill and health-flip pods.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// PodSpec is a Marathon pod as a scenario or AddPod declares it.
type PodSpec struct {
	// ID is the pod path, e.g. "/shop/cache".
	ID string `json:"id"`
	// Instances is the number of instances.
	Instances int `json:"instances"`
	// Network is NetworkHost (default), NetworkBridge or NetworkContainer.
	Network string `json:"network,omitempty"`
	// NetworkName names the container network; "" means "dcos".
	NetworkName string `json:"networkName,omitempty"`
	// Containers are the pod's containers; at least one.
	Containers []ContainerSpec `json:"containers"`
	// HealthChecks gives the first container an HTTP health check; new
	// instances report healthy once running; SetPodHealth changes that.
	HealthChecks bool `json:"healthChecks,omitempty"`
}

// ContainerSpec is one container of a pod.
type ContainerSpec struct {
	Name      string         `json:"name"`
	Endpoints []EndpointSpec `json:"endpoints,omitempty"`
}

// EndpointSpec is one endpoint of a pod container (types/network.raml
// Endpoint).
type EndpointSpec struct {
	Name string `json:"name"`
	// Protocol is "tcp" (default), "udp" or "tcp,udp".
	Protocol string `json:"protocol,omitempty"`
	// ContainerPort is the port inside the container (bridge, container).
	ContainerPort uint16 `json:"containerPort,omitempty"`
	// HostPort: 0 = allocated per instance, absent = none. Outside
	// container networking every endpoint gets one (Marathon's default 0).
	HostPort *uint16 `json:"hostPort,omitempty"`
	// Labels are the endpoint's labels, e.g. {"VIP_0": "/cache:6379"}.
	Labels map[string]string `json:"labels,omitempty"`
}

func (p *PodSpec) check() error {
	if !strings.HasPrefix(p.ID, "/") || strings.HasSuffix(p.ID, "/") || strings.Contains(p.ID, "//") {
		return fmt.Errorf("pod %q: id must be an absolute path", p.ID)
	}
	if p.Instances < 0 {
		return fmt.Errorf("pod %s: negative instances", p.ID)
	}
	if len(p.Containers) == 0 {
		return fmt.Errorf("pod %s: no containers", p.ID)
	}
	switch p.Network {
	case "", NetworkHost, NetworkBridge, NetworkContainer:
	default:
		return fmt.Errorf("pod %s: unknown network %q", p.ID, p.Network)
	}
	for _, c := range p.Containers {
		if c.Name == "" {
			return fmt.Errorf("pod %s: container without name", p.ID)
		}
		for _, e := range c.Endpoints {
			if e.Name == "" {
				return fmt.Errorf("pod %s container %s: endpoint without name", p.ID, c.Name)
			}
			if p.Network == NetworkContainer && e.ContainerPort == 0 {
				return fmt.Errorf("pod %s endpoint %s: container networking needs a containerPort", p.ID, e.Name)
			}
		}
	}
	return nil
}

// hasHostPort reports whether endpoint e has a host port in network mode.
func (e *EndpointSpec) hasHostPort(network string) bool {
	return network != NetworkContainer || e.HostPort != nil
}

// pod is the simulator's state of one pod.
type pod struct {
	spec      PodSpec
	version   time.Time
	instances []*podInstance // launch order
}

// podInstance is one instance: all containers share its state.
type podInstance struct {
	id        string
	agent     int
	ips       []netip.Addr
	hostPorts []uint16 // per endpoint with a host port, in spec order
	state     string   // the containers' Mesos state
	healthy   *bool
	updated   time.Time
}

// PodInstance is the ground truth about one pod instance.
type PodInstance struct {
	ID      string
	AgentIP netip.Addr
	// IPs are the instance's addresses: the agent IP for host
	// networking, a 127.1.x.x address otherwise.
	IPs []netip.Addr
	// HostPorts are the allocated host ports, one per endpoint with a
	// host port, in container then endpoint order.
	HostPorts []uint16
	State     string
	Healthy   *bool
}

func (c *cluster) podMap() map[string]*pod {
	if c.pods == nil {
		c.pods = map[string]*pod{}
	}
	return c.pods
}

// addPod registers a pod without instances.
func (c *cluster) addPod(spec PodSpec, now time.Time) (*pod, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if spec.Network == "" {
		spec.Network = NetworkHost
	}
	if spec.NetworkName == "" {
		spec.NetworkName = "dcos"
	}
	if _, ok := c.podMap()[spec.ID]; ok {
		return nil, fmt.Errorf("pod %s: already exists", spec.ID)
	}
	if _, ok := c.apps[spec.ID]; ok {
		return nil, fmt.Errorf("pod %s: an app has that id", spec.ID)
	}
	if spec.Instances > 0 && len(c.agents) == 0 {
		return nil, fmt.Errorf("pod %s: no agents", spec.ID)
	}
	spec.Containers = slices.Clone(spec.Containers)
	p := &pod{spec: spec, version: now}
	c.podMap()[spec.ID] = p
	return p, nil
}

// newInstance creates a running instance of p on the next agent.
func (c *cluster) newInstance(p *pod, now time.Time) (*podInstance, error) {
	agent := c.nextAgent % len(c.agents)
	c.nextAgent++
	c.seq++
	uuid := fmt.Sprintf("%08x-%04x-11e7-a48f-0ea4f4b1778c", c.seq, c.seq>>32&0xffff)
	in := &podInstance{
		id:    strings.ReplaceAll(strings.TrimPrefix(p.spec.ID, "/"), "/", "_") + ".instance-" + uuid,
		agent: agent, state: "TASK_RUNNING", updated: now,
	}
	for _, ct := range p.spec.Containers {
		for _, e := range ct.Endpoints {
			if !e.hasHostPort(p.spec.Network) {
				continue
			}
			hp := uint16(0)
			if e.HostPort != nil {
				hp = *e.HostPort
			}
			if hp == 0 {
				var err error
				if hp, err = c.allocHostPort(agent); err != nil {
					c.releaseInstance(in)
					return nil, err
				}
			} else {
				c.hostPorts[agent][hp] = true
			}
			in.hostPorts = append(in.hostPorts, hp)
		}
	}
	if p.spec.Network == NetworkHost {
		in.ips = []netip.Addr{c.agents[agent].IP}
	} else {
		ip, err := c.allocTaskIP()
		if err != nil {
			c.releaseInstance(in)
			return nil, err
		}
		in.ips = []netip.Addr{ip}
	}
	if p.spec.HealthChecks {
		healthy := true
		in.healthy = &healthy
	}
	p.instances = append(p.instances, in)
	return in, nil
}

func (c *cluster) releaseInstance(in *podInstance) {
	for _, hp := range in.hostPorts {
		delete(c.hostPorts[in.agent], hp)
	}
	for _, ip := range in.ips {
		delete(c.taskIPs, ip)
	}
}

// sortedPods returns the pods ordered by id.
func (c *cluster) sortedPods() []*pod {
	out := make([]*pod, 0, len(c.pods))
	for _, p := range c.pods {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.ID < out[j].spec.ID })
	return out
}

// findInstance returns the pod and instance with the given instance id.
func (c *cluster) findInstance(id string) (*pod, *podInstance) {
	for _, p := range c.pods {
		for _, in := range p.instances {
			if in.id == id {
				return p, in
			}
		}
	}
	return nil, nil
}

// The JSON shapes below follow types/pod.raml, podContainer.raml,
// network.raml and podStatus.raml; keys are a subset of what Marathon
// writes (PodStatusConversion.scala).

type podJSON struct {
	ID         string          `json:"id"`
	Version    string          `json:"version"`
	Containers []containerJSON `json:"containers"`
	Networks   []networkJSON   `json:"networks"`
	Scaling    struct {
		Kind      string `json:"kind"`
		Instances int    `json:"instances"`
	} `json:"scaling"`
}

type containerJSON struct {
	Name        string         `json:"name"`
	Resources   resourcesJSON  `json:"resources"`
	Endpoints   []endpointJSON `json:"endpoints"`
	HealthCheck *struct {
		HTTP struct {
			Endpoint string `json:"endpoint"`
			Path     string `json:"path"`
		} `json:"http"`
	} `json:"healthCheck,omitempty"`
}

type resourcesJSON struct {
	Cpus float64 `json:"cpus"`
	Mem  float64 `json:"mem"`
}

type endpointJSON struct {
	Name          string            `json:"name"`
	ContainerPort *uint16           `json:"containerPort,omitempty"`
	HostPort      *uint16           `json:"hostPort,omitempty"`
	Protocol      []string          `json:"protocol"`
	Labels        map[string]string `json:"labels,omitempty"`
}

type networkJSON struct {
	Name string `json:"name,omitempty"`
	Mode string `json:"mode"`
}

type podStatusJSON struct {
	ID          string            `json:"id"`
	Spec        podJSON           `json:"spec"`
	Status      string            `json:"status"`
	StatusSince string            `json:"statusSince"`
	Instances   []instanceJSON    `json:"instances"`
	Termination []json.RawMessage `json:"terminationHistory"`
	LastUpdated string            `json:"lastUpdated"`
	LastChanged string            `json:"lastChanged"`
}

type instanceJSON struct {
	ID            string                `json:"id"`
	Status        string                `json:"status"`
	StatusSince   string                `json:"statusSince"`
	AgentHostname string                `json:"agentHostname"`
	AgentID       string                `json:"agentId"`
	Networks      []networkStatusJSON   `json:"networks"`
	Containers    []containerStatusJSON `json:"containers"`
	LastUpdated   string                `json:"lastUpdated"`
	LastChanged   string                `json:"lastChanged"`
}

type networkStatusJSON struct {
	Name      string   `json:"name,omitempty"`
	Addresses []string `json:"addresses"`
}

type containerStatusJSON struct {
	Name        string               `json:"name"`
	Status      string               `json:"status"`
	StatusSince string               `json:"statusSince"`
	ContainerID string               `json:"containerId"`
	Conditions  []conditionJSON      `json:"conditions"`
	Endpoints   []endpointStatusJSON `json:"endpoints"`
	LastUpdated string               `json:"lastUpdated"`
	LastChanged string               `json:"lastChanged"`
}

type conditionJSON struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	Reason      string `json:"reason"`
	LastChanged string `json:"lastChanged"`
	LastUpdated string `json:"lastUpdated"`
}

type endpointStatusJSON struct {
	Name              string `json:"name"`
	AllocatedHostPort uint16 `json:"allocatedHostPort,omitempty"`
}

func protocols(p string) []string {
	if p == "" {
		return []string{"tcp"}
	}
	return strings.Split(p, ",")
}

// specJSON renders p's definition.
func (p *pod) specJSON() podJSON {
	out := podJSON{ID: p.spec.ID, Version: marathonTime(p.version)}
	out.Scaling.Kind, out.Scaling.Instances = "fixed", p.spec.Instances
	switch p.spec.Network {
	case NetworkContainer:
		out.Networks = []networkJSON{{Name: p.spec.NetworkName, Mode: "container"}}
	case NetworkBridge:
		out.Networks = []networkJSON{{Mode: "container/bridge"}}
	default:
		out.Networks = []networkJSON{{Mode: "host"}}
	}
	for i, ct := range p.spec.Containers {
		cj := containerJSON{Name: ct.Name, Resources: resourcesJSON{Cpus: 0.1, Mem: 32}, Endpoints: []endpointJSON{}}
		for _, e := range ct.Endpoints {
			ej := endpointJSON{Name: e.Name, Protocol: protocols(e.Protocol), Labels: e.Labels}
			if p.spec.Network != NetworkHost {
				cp := e.ContainerPort
				ej.ContainerPort = &cp
			}
			if e.hasHostPort(p.spec.Network) {
				hp := uint16(0)
				if e.HostPort != nil {
					hp = *e.HostPort
				}
				ej.HostPort = &hp
			}
			cj.Endpoints = append(cj.Endpoints, ej)
		}
		if i == 0 && p.spec.HealthChecks && len(ct.Endpoints) > 0 {
			cj.HealthCheck = &struct {
				HTTP struct {
					Endpoint string `json:"endpoint"`
					Path     string `json:"path"`
				} `json:"http"`
			}{}
			cj.HealthCheck.HTTP.Endpoint, cj.HealthCheck.HTTP.Path = ct.Endpoints[0].Name, "/health"
		}
		out.Containers = append(out.Containers, cj)
	}
	return out
}

// statusJSON renders p's PodStatus.
func (c *cluster) statusJSON(p *pod) podStatusJSON {
	out := podStatusJSON{ID: p.spec.ID, Spec: p.specJSON(), Status: "STABLE", StatusSince: marathonTime(p.version),
		Instances: []instanceJSON{}, Termination: []json.RawMessage{}, LastUpdated: marathonTime(p.version), LastChanged: marathonTime(p.version)}
	for _, in := range p.instances {
		if out.Status == "STABLE" && (in.healthy != nil && !*in.healthy || in.state != "TASK_RUNNING") {
			out.Status = "DEGRADED"
		}
		out.Instances = append(out.Instances, c.instanceJSON(p, in))
	}
	return out
}

func (c *cluster) instanceJSON(p *pod, in *podInstance) instanceJSON {
	ag := c.agents[in.agent]
	at := marathonTime(in.updated)
	status := "STABLE"
	switch {
	case in.state == "TASK_KILLING":
		status = "TERMINAL" // Killing maps to TERMINAL (PodStatusConversion)
	case in.healthy != nil && !*in.healthy:
		status = "DEGRADED"
	}
	out := instanceJSON{ID: in.id, Status: status, StatusSince: at, AgentHostname: ag.Hostname, AgentID: ag.ID, LastUpdated: at, LastChanged: at}
	net := networkStatusJSON{}
	if p.spec.Network == NetworkContainer {
		net.Name = p.spec.NetworkName
	}
	for _, ip := range in.ips {
		net.Addresses = append(net.Addresses, ip.String())
	}
	out.Networks = []networkStatusJSON{net}
	k := 0
	for _, ct := range p.spec.Containers {
		cs := containerStatusJSON{Name: ct.Name, Status: in.state, StatusSince: at, ContainerID: in.id + "." + ct.Name,
			Conditions: []conditionJSON{}, Endpoints: []endpointStatusJSON{}, LastUpdated: at, LastChanged: at}
		for _, e := range ct.Endpoints {
			es := endpointStatusJSON{Name: e.Name}
			if e.hasHostPort(p.spec.Network) {
				es.AllocatedHostPort = in.hostPorts[k]
				k++
			}
			cs.Endpoints = append(cs.Endpoints, es)
		}
		if in.healthy != nil {
			cs.Conditions = append(cs.Conditions, conditionJSON{Name: "healthy", Value: fmt.Sprint(*in.healthy), Reason: "health-reported-by-mesos", LastChanged: at, LastUpdated: at})
		}
		out.Containers = append(out.Containers, cs)
	}
	return out
}

// routePods adds the pod endpoints to mux.
func (s *Server) routePods(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2/pods", s.handlePods)
	mux.HandleFunc("GET /v2/pods/{rest...}", s.handlePod)
}

// handlePods serves GET /v2/pods: every pod's definition.
func (s *Server) handlePods(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := []podJSON{}
	for _, p := range s.c.sortedPods() {
		out = append(out, p.specJSON())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handlePod serves /v2/pods/::status, /v2/pods/{id}::status and
// /v2/pods/{id}.
func (s *Server) handlePod(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest == "::status" {
		out := []podStatusJSON{}
		for _, p := range s.c.sortedPods() {
			out = append(out, s.c.statusJSON(p))
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	name, status := strings.CutSuffix(rest, "::status")
	id := "/" + strings.Trim(name, "/")
	p, ok := s.c.pods[id]
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, obj{"message": fmt.Sprintf("Pod '%s' does not exist", id)})
	case status:
		writeJSON(w, http.StatusOK, s.c.statusJSON(p))
	default:
		writeJSON(w, http.StatusOK, p.specJSON())
	}
}

// podEvent is pod_created_event, pod_updated_event or pod_deleted_event:
// no definition, only the uri (Events.scala).
func podEvent(eventType, id string, now time.Time) event {
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"clientIp":"127.0.0.1",`...)
	b = appendEventType(b, eventType)
	b = appendTimestamp(b, now)
	b = append(b, `,"uri":`...)
	b = appendString(b, "/v2/pods"+id)
	return newEvent(eventType, append(b, '}'))
}

// instanceEvents are the events of in's current state: one
// status_update_event per container task (appId = the pod id, ports = that
// container's host ports) and the instance_changed_event.
func (c *cluster) instanceEvents(p *pod, in *podInstance, now time.Time) []event {
	var out []event
	k := 0
	for _, ct := range p.spec.Containers {
		t := &task{id: in.id + "." + ct.Name, instanceID: in.id, appID: p.spec.ID, agent: in.agent, ips: in.ips, state: in.state, version: p.version}
		for _, e := range ct.Endpoints {
			if e.hasHostPort(p.spec.Network) {
				t.hostPorts = append(t.hostPorts, in.hostPorts[k])
				k++
			}
		}
		out = append(out, c.statusUpdateEvent(t, now))
	}
	t := &task{id: in.id, instanceID: in.id, appID: p.spec.ID, agent: in.agent, ips: in.ips, state: in.state, version: p.version}
	return append(out, c.instanceChangedEvent(t, now)...)
}

// instanceHealthEvent is instance_health_changed_event for in.
func instanceHealthEvent(p *pod, in *podInstance, now time.Time) event {
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{`...)
	b = appendEventType(b, "instance_health_changed_event")
	b = append(b, `"healthy":`...)
	b = appendBool(b, in.healthy != nil && *in.healthy)
	b = append(b, `,"instanceId":`...)
	b = appendString(b, in.id)
	b = append(b, `,"runSpecId":`...)
	b = appendString(b, p.spec.ID)
	b = append(b, `,"runSpecVersion":`...)
	b = appendTime(b, p.version)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	return newEvent("instance_health_changed_event", append(b, '}'))
}

// launchInstance starts one instance of p and publishes its events. The
// caller holds s.mu (or owns s during Start).
func (s *Server) launchInstance(p *pod, now time.Time) error {
	in, err := s.c.newInstance(p, now)
	if err != nil {
		return err
	}
	s.publish(s.c.instanceEvents(p, in, now)...)
	if in.healthy != nil {
		s.publish(instanceHealthEvent(p, in, now))
	}
	return nil
}

// killInstance ends in: its containers go TASK_KILLED, and it is removed.
func (s *Server) killInstance(p *pod, in *podInstance, now time.Time) {
	in.state, in.updated = "TASK_KILLED", now
	s.publish(s.c.instanceEvents(p, in, now)...)
	p.instances = slices.DeleteFunc(p.instances, func(x *podInstance) bool { return x == in })
	s.c.releaseInstance(in)
}

// AddPod deploys a new pod with spec.Instances running instances, as a
// POST to /v2/pods would: pod_created_event, the instances' events, then
// deployment_success.
func (s *Server) AddPod(spec PodSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p, err := s.c.addPod(spec, now)
	if err != nil {
		return fmt.Errorf("add pod: %w", err)
	}
	s.publish(podEvent("pod_created_event", p.spec.ID, now))
	for range spec.Instances {
		if err := s.launchInstance(p, now); err != nil {
			return fmt.Errorf("add pod %s: %w", spec.ID, err)
		}
	}
	s.publish(s.c.deploymentSuccess(p.spec.ID, now))
	return nil
}

// startPods deploys the scenario's pods during Start.
func (s *Server) startPods(specs []PodSpec, now time.Time) error {
	for _, spec := range specs {
		p, err := s.c.addPod(spec, now)
		if err != nil {
			return err
		}
		for range spec.Instances {
			if err := s.launchInstance(p, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScalePod sets the number of instances of pod id, as a PUT to
// /v2/pods/{id} would: pod_updated_event, new or killed (youngest first)
// instances, then deployment_success.
func (s *Server) ScalePod(id string, n int) error {
	if n < 0 {
		return fmt.Errorf("scale pod %s: negative instances %d", id, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.c.pods[id]
	if !ok {
		return fmt.Errorf("scale pod %s: %w", id, errNotFound)
	}
	now := s.now()
	p.spec.Instances, p.version = n, now
	s.publish(podEvent("pod_updated_event", id, now))
	for len(p.instances) < n {
		if err := s.launchInstance(p, now); err != nil {
			return fmt.Errorf("scale pod %s: %w", id, err)
		}
	}
	for len(p.instances) > n {
		s.killInstance(p, p.instances[len(p.instances)-1], now)
	}
	s.publish(s.c.deploymentSuccess(id, now))
	return nil
}

// RemovePod deletes pod id, as a DELETE of /v2/pods/{id}: pod_deleted_event
// and its instances killed.
func (s *Server) RemovePod(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.c.pods[id]
	if !ok {
		return fmt.Errorf("remove pod %s: %w", id, errNotFound)
	}
	now := s.now()
	delete(s.c.pods, id)
	s.publish(podEvent("pod_deleted_event", id, now))
	for len(p.instances) > 0 {
		s.killInstance(p, p.instances[len(p.instances)-1], now)
	}
	return nil
}

// KillPodInstance kills one instance, with no deployment and no
// replacement: only its containers' status updates and the
// instance_changed_event tell.
func (s *Server) KillPodInstance(instanceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, in := s.c.findInstance(instanceID)
	if in == nil {
		return fmt.Errorf("kill pod instance %s: %w", instanceID, errNotFound)
	}
	s.killInstance(p, in, s.now())
	return nil
}

// SetPodHealth sets an instance's health (its containers' "healthy"
// condition) and publishes instance_health_changed_event.
func (s *Server) SetPodHealth(instanceID string, healthy bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, in := s.c.findInstance(instanceID)
	if in == nil {
		return fmt.Errorf("set pod health %s: %w", instanceID, errNotFound)
	}
	if !p.spec.HealthChecks {
		return fmt.Errorf("set pod health %s: %w", instanceID, errors.New("pod has no health checks"))
	}
	now := s.now()
	in.healthy, in.updated = &healthy, now
	s.publish(instanceHealthEvent(p, in, now))
	return nil
}

// PodInstances returns the ground truth of pod id's instances, oldest
// first.
func (s *Server) PodInstances(id string) ([]PodInstance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.c.pods[id]
	if !ok {
		return nil, fmt.Errorf("pod instances %s: %w", id, errNotFound)
	}
	out := make([]PodInstance, 0, len(p.instances))
	for _, in := range p.instances {
		pi := PodInstance{ID: in.id, AgentIP: s.c.agents[in.agent].IP, IPs: slices.Clone(in.ips), HostPorts: slices.Clone(in.hostPorts), State: in.state}
		if in.healthy != nil {
			h := *in.healthy
			pi.Healthy = &h
		}
		out = append(out, pi)
	}
	return out, nil
}

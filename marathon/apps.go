package marathon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// DefaultFramework is the framework name given to Marathon apps; the caller
// may override it with the name from /v2/info (marathon_config.framework_name).
const DefaultFramework = "marathon"

// appJSON is a Marathon app as GET /v2/apps?embed=apps.tasks, GET
// /v2/apps/{id} and api_post_event write it, in both the ≤1.4 shape
// (container.docker.network, container.docker.portMappings, ipAddress,
// ports) and the ≥1.5 shape (networks, portDefinitions,
// container.portMappings). See docs/docs/rest-api/public/api/v2/types/app.raml
// and docs/docs/upgrade/network-api-migration.md in mesosphere/marathon.
type appJSON struct {
	ID              string               `json:"id"`
	Version         string               `json:"version"`
	Labels          map[string]string    `json:"labels"`
	Ports           []int                `json:"ports"`
	PortDefinitions []portDefinitionJSON `json:"portDefinitions"`
	Networks        []networkJSON        `json:"networks"`
	Container       *containerJSON       `json:"container"`
	IPAddress       *ipAddressJSON       `json:"ipAddress"`
	HealthChecks    []json.RawMessage    `json:"healthChecks"`
	Tasks           []taskJSON           `json:"tasks"`
}

type portDefinitionJSON struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol"`
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
}

type networkJSON struct {
	Mode string `json:"mode"`
	Name string `json:"name"`
}

type containerJSON struct {
	Docker       *dockerJSON       `json:"docker"`
	PortMappings []portMappingJSON `json:"portMappings"`
}

type dockerJSON struct {
	Network      string            `json:"network"`
	PortMappings []portMappingJSON `json:"portMappings"`
}

// portMappingJSON is an entry of container.portMappings (≥1.5) or
// container.docker.portMappings (≤1.4). HostPort is a pointer because its
// absence matters: on a container network a mapping without hostPort has
// no host port at all.
type portMappingJSON struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      *int              `json:"hostPort"`
	Protocol      string            `json:"protocol"`
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels"`
}

// ipAddressJSON is the ≤1.4 IP-per-task declaration.
type ipAddressJSON struct {
	NetworkName string `json:"networkName"`
	Discovery   *struct {
		Ports []struct {
			Number   int               `json:"number"`
			Name     string            `json:"name"`
			Protocol string            `json:"protocol"`
			Labels   map[string]string `json:"labels"`
		} `json:"ports"`
	} `json:"discovery"`
}

// taskJSON is a task of an app (types/task.raml).
type taskJSON struct {
	ID          string `json:"id"`
	Host        string `json:"host"`
	SlaveID     string `json:"slaveId"`
	State       string `json:"state"`
	Ports       []int  `json:"ports"`
	IPAddresses []struct {
		IPAddress string `json:"ipAddress"`
	} `json:"ipAddresses"`
	HealthCheckResults []healthResultJSON `json:"healthCheckResults"`
	StartedAt          string             `json:"startedAt"`
	StagedAt           string             `json:"stagedAt"`
}

// healthResultJSON is one health check result of a task (HealthWrites in
// Formats.scala). lastSuccess and lastFailure are ISO-8601 timestamps by
// Marathon's clock, the clock of the events' timestamps, or null.
type healthResultJSON struct {
	Alive       bool       `json:"alive"`
	LastSuccess resultTime `json:"lastSuccess"`
	LastFailure resultTime `json:"lastFailure"`
}

// resultTime is a health result's lastSuccess or lastFailure: zero for
// null, garbage or a value of another type. It only orders health events,
// so it never fails a snapshot.
type resultTime time.Time

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (r *resultTime) UnmarshalJSON(b []byte) error {
	*r = resultTime{}
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	s := string(b[1 : len(b)-1])
	if strings.IndexByte(s, '\\') >= 0 && json.Unmarshal(b, &s) != nil {
		return nil
	}
	*r = resultTime(parseTime(s))
	return nil
}

// netMode is an app's networking mode, whichever API shape declared it.
type netMode uint8

const (
	modeHost netMode = iota
	modeBridge
	modeContainer
)

// DecodeApps decodes the body of GET /v2/apps?embed=apps.tasks ({"apps":
// [...]}). resolve maps task host names to agent addresses; it may be nil,
// in which case only IP-literal hosts get an AgentIP.
//
// The apps are decoded and converted one at a time, so neither the whole
// body nor every app's JSON form is held in memory at once (at 100,000
// tasks the body is tens of MB). The result is what decoding the body into
// struct{ Apps []appJSON } would give: other keys are skipped, the key
// matches case-insensitively, the last "apps" wins, and a null body or
// "apps" gives no apps.
func DecodeApps(r io.Reader, resolve func(host string) netip.Addr) ([]discovery.App, error) {
	apps, err := decodeApps(json.NewDecoder(r), resolve)
	if err != nil {
		return nil, fmt.Errorf("decode marathon apps: %w", err)
	}
	return apps, nil
}

func decodeApps(dec *json.Decoder, resolve func(string) netip.Addr) ([]discovery.App, error) {
	apps := []discovery.App{}
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return apps, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("body is %v, want an object", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key, _ := tok.(string); !strings.EqualFold(key, "apps") {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		if apps, err = decodeAppList(dec, apps[:0], resolve); err != nil {
			return nil, err
		}
	}
	if tok, err := dec.Token(); err != nil {
		return nil, unexpectedEOF(err)
	} else if tok != json.Delim('}') {
		return nil, fmt.Errorf("body: %v after the apps, want }", tok)
	}
	return apps, nil
}

// decodeAppList decodes the value of "apps" (an array or null), appending
// to apps.
func decodeAppList(dec *json.Decoder, apps []discovery.App, resolve func(string) netip.Addr) ([]discovery.App, error) {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return apps, unexpectedEOF(err)
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("apps is %v, want an array", tok)
	}
	for i := 0; dec.More(); i++ {
		var a appJSON
		if err := dec.Decode(&a); err != nil {
			return nil, err
		}
		app, err := a.toApp(resolve)
		if err != nil {
			return nil, fmt.Errorf("app %d: %w", i, err)
		}
		apps = append(apps, app)
	}
	if _, err := dec.Token(); err != nil {
		return nil, unexpectedEOF(err)
	}
	return apps, nil
}

// unexpectedEOF reports a body that ends inside a value as
// io.ErrUnexpectedEOF, as json.Decoder.Decode does.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DecodeApp decodes one app: a bare app object (an api_post_event
// appDefinition, a request body) or the {"app": {...}} body of GET
// /v2/apps/{id}.
func DecodeApp(data []byte, resolve func(string) netip.Addr) (discovery.App, error) {
	var wrapped struct {
		App *appJSON `json:"app"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		return discovery.App{}, fmt.Errorf("decode marathon app: %w", err)
	}
	a := wrapped.App
	if a == nil || a.ID == "" {
		a = new(appJSON)
		if err := json.Unmarshal(data, a); err != nil {
			return discovery.App{}, fmt.Errorf("decode marathon app: %w", err)
		}
	}
	app, err := a.toApp(resolve)
	if err != nil {
		return discovery.App{}, fmt.Errorf("decode marathon app: %w", err)
	}
	return app, nil
}

var errNoAppID = errors.New("app without id")

func (a *appJSON) toApp(resolve func(string) netip.Addr) (discovery.App, error) {
	if a.ID == "" {
		return discovery.App{}, errNoAppID
	}
	app := discovery.App{
		ID:           a.ID,
		Framework:    DefaultFramework,
		Version:      a.Version,
		Ports:        a.ports(),
		HealthChecks: len(a.HealthChecks) > 0,
	}
	if len(a.Tasks) > 0 {
		// Sized once: appending would leave up to twice the room (a Task
		// is about 150 bytes; 100,000 of them are in every snapshot).
		app.Tasks = make([]discovery.Task, 0, len(a.Tasks))
	}
	for i := range a.Tasks {
		if t, ok := a.Tasks[i].toTask(resolve); ok {
			app.Tasks = append(app.Tasks, t)
		}
	}
	if len(app.Tasks) == 0 {
		app.Tasks = nil // as before: no usable task, no slice
	}
	return app, nil
}

// mode says how the app is networked: networks[0].mode (≥1.5), else
// container.docker.network (≤1.4: HOST, BRIDGE, USER), else ipAddress (≤1.4
// IP per task), else host.
func (a *appJSON) mode() netMode {
	if len(a.Networks) > 0 {
		n := a.Networks[0]
		switch strings.ToLower(n.Mode) {
		case "container/bridge":
			return modeBridge
		case "container":
			return modeContainer
		case "":
			// types/network.raml: mode defaults to container.
			if n.Name != "" {
				return modeContainer
			}
		}
		return modeHost
	}
	if a.Container != nil && a.Container.Docker != nil {
		switch strings.ToUpper(a.Container.Docker.Network) {
		case "BRIDGE":
			return modeBridge
		case "USER":
			return modeContainer
		case "HOST":
			return modeHost
		}
	}
	if a.IPAddress != nil {
		return modeContainer
	}
	return modeHost
}

// ports returns the app's port declarations. Indexes into the task's host
// ports are assigned before ports with an unusable protocol or container
// port are dropped, so the remaining ports still address the right host
// port; legacy app labels VIP_PORT<n> are attached to declared port n.
func (a *appJSON) ports() []discovery.Port {
	var ports []discovery.Port
	mode := a.mode()
	switch {
	case mode == modeHost && len(a.PortDefinitions) > 0:
		for i, d := range a.PortDefinitions {
			ports = append(ports, newPort(discovery.PortHost, i, 0, d.Protocol, d.Name, d.Labels))
		}
	case mode == modeHost:
		for i := range a.Ports {
			ports = append(ports, newPort(discovery.PortHost, i, 0, "tcp", "", nil))
		}
	default:
		ports = a.mappedPorts(mode)
	}
	ports = attachLegacyLabels(ports, a.Labels)
	out := ports[:0]
	for _, p := range ports {
		if len(p.Protocols) == 0 || (p.Kind == discovery.PortContainer && p.ContainerPort == 0) {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mappedPorts handles bridge and container networking. task.ports lists the
// host ports of the mappings that have one, in mapping order (in bridge
// mode a null hostPort means 0, a dynamic host port), so HostPortIndex
// counts only those mappings.
func (a *appJSON) mappedPorts(mode netMode) []discovery.Port {
	var mappings []portMappingJSON
	if a.Container != nil {
		mappings = a.Container.PortMappings
		if len(mappings) == 0 && a.Container.Docker != nil {
			mappings = a.Container.Docker.PortMappings
		}
	}
	var ports []discovery.Port
	hostIndex := 0
	for _, m := range mappings {
		if m.HostPort != nil || mode == modeBridge {
			ports = append(ports, newPort(discovery.PortMapped, hostIndex, 0, m.Protocol, m.Name, m.Labels))
			hostIndex++
			continue
		}
		ports = append(ports, newPort(discovery.PortContainer, 0, m.ContainerPort, m.Protocol, m.Name, m.Labels))
	}
	if len(mappings) == 0 && a.IPAddress != nil && a.IPAddress.Discovery != nil {
		for _, d := range a.IPAddress.Discovery.Ports {
			ports = append(ports, newPort(discovery.PortContainer, 0, d.Number, d.Protocol, d.Name, d.Labels))
		}
	}
	return ports
}

// newPort builds a Port; an unknown protocol leaves Protocols empty and a
// container port outside 1-65535 leaves ContainerPort 0, and the caller
// drops such ports.
func newPort(kind discovery.PortKind, hostIndex, containerPort int, protocol, name string, labels map[string]string) discovery.Port {
	p := discovery.Port{Kind: kind, HostPortIndex: hostIndex, Name: name, Labels: sortedLabels(labels)}
	if kind == discovery.PortContainer {
		p.ContainerPort = portNumber(containerPort)
	}
	if protos, err := discovery.ParseProtocols(protocol); err == nil {
		p.Protocols = protos
	}
	return p
}

// sortedLabels turns a Marathon label object into labels sorted by key:
// Go maps lose the JSON order, and a fixed order keeps output stable.
func sortedLabels(m map[string]string) []discovery.Label {
	if len(m) == 0 {
		return nil
	}
	out := make([]discovery.Label, 0, len(m))
	for k, v := range m {
		out = append(out, discovery.Label{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// attachLegacyLabels attaches minuteman-era app labels VIP_PORT<n> =
// tcp://addr:port (any case of "vip_port"; dcos/minuteman example/app.json)
// to declared port n. A label naming a port the app does not declare gets a
// host port of its own at index n, so the label is still seen (and
// reported if the task has no such port).
func attachLegacyLabels(ports []discovery.Port, labels map[string]string) []discovery.Port {
	for _, l := range sortedLabels(labels) {
		n, ok := legacyPortIndex(l.Key)
		if !ok {
			continue
		}
		if n < len(ports) {
			ports[n].Labels = append(ports[n].Labels, l)
			continue
		}
		ports = append(ports, legacyPort(n, l))
	}
	return ports
}

// legacyPort is the host port at index n that a VIP_PORT<n> label declares.
func legacyPort(n int, l discovery.Label) discovery.Port {
	return discovery.Port{
		Kind:          discovery.PortHost,
		HostPortIndex: n,
		Protocols:     []discovery.Protocol{legacyProtocol(l.Value)},
		Labels:        []discovery.Label{l},
	}
}

// maxLegacyPortIndex bounds VIP_PORT<n>: no task has more ports than this.
const maxLegacyPortIndex = 65535

// legacyPortIndex parses the n of a VIP_PORT<n> key, case-insensitively.
func legacyPortIndex(key string) (int, bool) {
	const prefix = "vip_port"
	if len(key) <= len(prefix) || !strings.EqualFold(key[:len(prefix)], prefix) {
		return 0, false
	}
	digits := key[len(prefix):]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > maxLegacyPortIndex {
		return 0, false
	}
	return n, true
}

// legacyProtocol is the protocol of a legacy "udp://…" or "tcp://…" value.
func legacyProtocol(value string) discovery.Protocol {
	if len(value) >= 6 && strings.EqualFold(value[:6], "udp://") {
		return discovery.UDP
	}
	return discovery.TCP
}

// portNumber converts a JSON port to uint16; out of range gives 0 (unknown).
func portNumber(n int) uint16 {
	if n < 0 || n > 65535 {
		return 0
	}
	return uint16(n)
}

func (t *taskJSON) toTask(resolve func(string) netip.Addr) (discovery.Task, bool) {
	if t.ID == "" {
		return discovery.Task{}, false
	}
	task := discovery.Task{
		ID:      t.ID,
		Host:    t.Host,
		AgentIP: hostAddr(resolve, t.Host),
		State:   FrameworkTaskState(t.State),
		Health:  marathonHealth(len(t.HealthCheckResults), func(i int) bool { return t.HealthCheckResults[i].Alive }),
		Updated: parseTime(t.StartedAt),
		AgentID: t.SlaveID,
	}
	for _, r := range t.HealthCheckResults {
		// The result's time orders it against health events: the latest
		// check of any, success or failure. Garbage gives zero (unknown).
		for _, at := range [...]time.Time{time.Time(r.LastSuccess), time.Time(r.LastFailure)} {
			if at.After(task.HealthAt) {
				task.HealthAt = at
			}
		}
	}
	if t.State == "" && t.StartedAt != "" {
		// Marathon before 0.10 wrote no state: a started task is running.
		task.State = discovery.TaskRunning
	}
	if task.Updated.IsZero() {
		task.Updated = parseTime(t.StagedAt)
	}
	if len(t.Ports) > 0 {
		task.HostPorts = make([]uint16, 0, len(t.Ports))
	}
	for _, p := range t.Ports {
		task.HostPorts = append(task.HostPorts, portNumber(p))
	}
	for _, ip := range t.IPAddresses {
		if a, ok := parseIP(ip.IPAddress); ok {
			task.IPs = append(task.IPs, a)
		}
	}
	return task, true
}

// marathonHealth folds n health check results: none → HealthNone, all
// alive → HealthHealthy, any not alive → HealthUnhealthy.
func marathonHealth(n int, alive func(int) bool) discovery.Health {
	if n == 0 {
		return discovery.HealthNone
	}
	for i := range n {
		if !alive(i) {
			return discovery.HealthUnhealthy
		}
	}
	return discovery.HealthHealthy
}

// parseTime parses Marathon's ISO-8601 timestamps; garbage gives zero.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// taskStates maps Mesos task state names (mesos.proto enum TaskState) to
// what matters for backends; the terminal set is dcos-net's (UPSTREAM §6).
var taskStates = map[string]discovery.TaskState{
	"TASK_STAGING":          discovery.TaskStarting,
	"TASK_STARTING":         discovery.TaskStarting,
	"TASK_RUNNING":          discovery.TaskRunning,
	"TASK_KILLING":          discovery.TaskKilling,
	"TASK_FINISHED":         discovery.TaskTerminal,
	"TASK_FAILED":           discovery.TaskTerminal,
	"TASK_KILLED":           discovery.TaskTerminal,
	"TASK_ERROR":            discovery.TaskTerminal,
	"TASK_LOST":             discovery.TaskTerminal,
	"TASK_DROPPED":          discovery.TaskTerminal,
	"TASK_GONE":             discovery.TaskTerminal,
	"TASK_GONE_BY_OPERATOR": discovery.TaskTerminal,
	"TASK_UNREACHABLE":      discovery.TaskStarting,
	"TASK_UNKNOWN":          discovery.TaskStarting,
}

// FrameworkTaskState maps a Mesos task state name (TASK_RUNNING, …) to a
// discovery.TaskState: running, killing, terminal (finished, failed,
// killed, error, lost, dropped, gone, gone by operator) or, for anything
// else including unreachable and unknown names, starting.
func FrameworkTaskState(mesosState string) discovery.TaskState {
	if s, ok := taskStates[strings.ToUpper(mesosState)]; ok {
		return s
	}
	return discovery.TaskStarting
}

package marathon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
)

// ErrUnknownEvent is returned (wrapped) by DecodeEvent for an event type
// that Marathon does not document; callers count it and move on.
var ErrUnknownEvent = errors.New("unknown event type")

// Event is one decoded Marathon SSE event: its type and the updates it
// carries (none for most types).
type Event struct {
	Type    string
	Updates []discovery.Update
}

// eventDecoder decodes the JSON data of one event type.
type eventDecoder func(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error)

// eventDecoders lists every event type Marathon emits
// (src/main/scala/mesosphere/marathon/core/event/Events.scala, examples in
// docs/docs/event-bus.md). Marathon does not order events (event-bus.md,
// "Event ordering guarantees"), so the stream only refines the model between
// full resyncs; types that say nothing about apps, tasks or health are
// ignored.
var eventDecoders = map[string]eventDecoder{
	"status_update_event":           decodeStatusUpdate,
	"instance_changed_event":        decodeInstanceChanged,
	"instance_health_changed_event": decodeInstanceHealth,
	"health_status_changed_event":   decodeHealthStatus,
	"app_terminated_event":          decodeAppTerminated,
	"api_post_event":                decodeAPIPost,
	"deployment_success":            resyncAfter("deployment"),
	"deployment_failed":             resyncAfter("deployment"),

	"deployment_info":                   ignoreEvent,
	"deployment_step_success":           ignoreEvent,
	"deployment_step_failure":           ignoreEvent,
	"event_stream_attached":             ignoreEvent,
	"event_stream_detached":             ignoreEvent,
	"subscribe_event":                   ignoreEvent,
	"unsubscribe_event":                 ignoreEvent,
	"scheduler_registered_event":        ignoreEvent,
	"scheduler_reregistered_event":      ignoreEvent,
	"scheduler_disconnected_event":      ignoreEvent,
	"framework_message_event":           ignoreEvent,
	"add_health_check_event":            ignoreEvent,
	"remove_health_check_event":         ignoreEvent,
	"failed_health_check_event":         ignoreEvent,
	"unhealthy_task_kill_event":         ignoreEvent,
	"unhealthy_instance_kill_event":     ignoreEvent,
	"unknown_instance_terminated_event": ignoreEvent,
	"pod_created_event":                 ignoreEvent,
	"pod_updated_event":                 ignoreEvent,
	"pod_deleted_event":                 ignoreEvent,
	"group_change_success":              ignoreEvent,
	"group_change_failed":               ignoreEvent,
}

// DecodeEvent decodes the data of one SSE event of type eventType (the
// "event:" field; when empty, the eventType field of data is used) into
// updates. resolve maps agent host names to addresses and may be nil.
//
// Known types without meaning for discovery give no updates and no error;
// an unknown type gives an error wrapping ErrUnknownEvent; malformed data
// gives an error. Task and health updates carry Marathon's IDs as
// written: for Marathon ≥1.5 instance and health events name the instance
// ("app.instance-<uuid>"), whose tasks are "<instance id>._app.<n>".
func DecodeEvent(eventType string, data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	if eventType == "" {
		var head struct {
			EventType string `json:"eventType"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("decode marathon event: %w", err)
		}
		eventType = head.EventType
	}
	decode, ok := eventDecoders[eventType]
	if !ok {
		return nil, fmt.Errorf("decode marathon event %.64q: %w", eventType, ErrUnknownEvent)
	}
	updates, err := decode(data, resolve)
	if err != nil {
		return nil, fmt.Errorf("decode marathon event %s: %w", eventType, err)
	}
	return updates, nil
}

func ignoreEvent(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	if !json.Valid(data) {
		return nil, errors.New("invalid JSON")
	}
	return nil, nil
}

func resyncAfter(reason string) eventDecoder {
	return func(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
		if _, err := ignoreEvent(data, resolve); err != nil {
			return nil, err
		}
		return []discovery.Update{{Kind: discovery.UpdateResync, Reason: reason}}, nil
	}
}

// statusUpdateJSON is a status_update_event: a task's new Mesos state with
// its host ports and IPs.
type statusUpdateJSON struct {
	Timestamp   string       `json:"timestamp"`
	TaskID      string       `json:"taskId"`
	TaskStatus  string       `json:"taskStatus"`
	AppID       string       `json:"appId"`
	Host        string       `json:"host"`
	Ports       []int        `json:"ports"`
	IPAddresses []taskIPJSON `json:"ipAddresses"`
	SlaveID     string       `json:"slaveId"`
}

// taskIPJSON is one element of a task's ipAddresses.
type taskIPJSON struct {
	IPAddress string `json:"ipAddress"`
}

// statusUpdateScan is a status_update_event as scanStatusUpdate reads it:
// fields that are not kept stay bytes of the event, ports and IPs are read
// into what discovery.Task holds.
type statusUpdateScan struct {
	timestamp, taskStatus []byte
	taskID, appID, host   string
	slaveID               string
	hostPorts             []uint16
	ips                   []netip.Addr
}

// statusUpdateFields names the fields of a status_update_event in the
// order scanStatusUpdate reads them.
var statusUpdateFields = [...]string{"timestamp", "taskId", "taskStatus", "appId", "host", "ports", "ipAddresses", "slaveId"}

// scanStatusUpdate is the fast path of decodeStatusUpdate (see
// eventScanner); false means: ask encoding/json.
func scanStatusUpdate(data []byte, e *statusUpdateScan) bool {
	s := eventScanner{b: data}
	return s.object(statusUpdateFields[:], func(i int) bool {
		switch i {
		case 0:
			return s.bytes(&e.timestamp)
		case 1:
			return s.str(&e.taskID)
		case 2:
			return s.bytes(&e.taskStatus)
		case 3:
			return s.str(&e.appID)
		case 4:
			return s.str(&e.host)
		case 5:
			return s.hostPorts(&e.hostPorts)
		case 6:
			return s.taskIPs(&e.ips)
		}
		return s.str(&e.slaveID)
	}) && s.end()
}

// decodeStatusUpdate gives an UpdateTask. The event carries no health, so
// Task.Health is HealthNone (unknown): the consumer keeps what it knew.
func decodeStatusUpdate(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	var e statusUpdateScan
	if !scanStatusUpdate(data, &e) {
		return decodeStatusUpdateJSON(data, resolve)
	}
	if e.taskID == "" || e.appID == "" {
		return nil, errors.New("missing taskId or appId")
	}
	task := discovery.Task{
		ID:        e.taskID,
		Host:      e.host,
		AgentIP:   hostAddr(resolve, e.host),
		State:     frameworkTaskStateBytes(e.taskStatus),
		Updated:   parseTimeBytes(e.timestamp),
		HostPorts: e.hostPorts,
		IPs:       e.ips,
		AgentID:   e.slaveID,
	}
	return []discovery.Update{{Kind: discovery.UpdateTask, AppID: e.appID, TaskID: e.taskID, Task: task}}, nil
}

// decodeStatusUpdateJSON is decodeStatusUpdate by encoding/json.
func decodeStatusUpdateJSON(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	var e statusUpdateJSON
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if e.TaskID == "" || e.AppID == "" {
		return nil, errors.New("missing taskId or appId")
	}
	task := discovery.Task{
		ID:      e.TaskID,
		Host:    e.Host,
		AgentIP: hostAddr(resolve, e.Host),
		State:   FrameworkTaskState(e.TaskStatus),
		Updated: parseTime(e.Timestamp),
		AgentID: e.SlaveID,
	}
	for _, p := range e.Ports {
		task.HostPorts = append(task.HostPorts, portNumber(p))
	}
	for _, ip := range e.IPAddresses {
		if a, ok := parseIP(ip.IPAddress); ok {
			task.IPs = append(task.IPs, a)
		}
	}
	return []discovery.Update{{Kind: discovery.UpdateTask, AppID: e.AppID, TaskID: e.TaskID, Task: task}}, nil
}

// instanceConditions maps the terminal instance conditions of
// instance_changed_event (docs/docs/event-bus.md) to TaskTerminal.
var instanceConditions = map[string]bool{
	"Error": true, "Failed": true, "Finished": true, "Killed": true, "Gone": true, "Dropped": true,
}

// instanceChangedJSON is an instance_changed_event.
type instanceChangedJSON struct {
	Timestamp  string `json:"timestamp"`
	InstanceID string `json:"instanceId"`
	RunSpecID  string `json:"runSpecId"`
	Condition  string `json:"condition"`
	Host       string `json:"host"`
}

var instanceChangedFields = [...]string{"timestamp", "instanceId", "runSpecId", "condition", "host"}

// scanInstanceChanged is the fast path of unmarshalInstanceChanged.
func scanInstanceChanged(data []byte, e *instanceChangedJSON) bool {
	s := eventScanner{b: data}
	dst := [...]*string{&e.Timestamp, &e.InstanceID, &e.RunSpecID, &e.Condition, &e.Host}
	return s.object(instanceChangedFields[:], func(i int) bool { return s.str(dst[i]) }) && s.end()
}

// unmarshalInstanceChanged is json.Unmarshal(data, e) for a zero *e, most
// of the time without encoding/json.
func unmarshalInstanceChanged(data []byte, e *instanceChangedJSON) error {
	if scanInstanceChanged(data, e) {
		return nil
	}
	var f instanceChangedJSON
	err := json.Unmarshal(data, &f)
	*e = f
	return err
}

// decodeInstanceChanged gives an UpdateTask removing the instance when its
// condition is terminal. Other conditions give nothing: the event carries
// no ports or IPs, and the status_update_event of the same change does.
func decodeInstanceChanged(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	var e instanceChangedJSON
	if err := unmarshalInstanceChanged(data, &e); err != nil {
		return nil, err
	}
	if e.InstanceID == "" || e.RunSpecID == "" {
		return nil, errors.New("missing instanceId or runSpecId")
	}
	if !instanceConditions[e.Condition] {
		return nil, nil
	}
	task := discovery.Task{
		ID:      e.InstanceID,
		Host:    e.Host,
		AgentIP: hostAddr(resolve, e.Host),
		State:   discovery.TaskTerminal,
		Updated: parseTime(e.Timestamp),
	}
	return []discovery.Update{{Kind: discovery.UpdateTask, AppID: e.RunSpecID, TaskID: e.InstanceID, Task: task}}, nil
}

// instanceHealthJSON is an instance_health_changed_event.
type instanceHealthJSON struct {
	InstanceID string `json:"instanceId"`
	RunSpecID  string `json:"runSpecId"`
	Healthy    *bool  `json:"healthy"`
	Timestamp  string `json:"timestamp"`
}

var instanceHealthFields = [...]string{"instanceId", "runSpecId", "healthy", "timestamp"}

// scanInstanceHealth is the fast path of unmarshalInstanceHealth; it
// points e.Healthy at healthy.
func scanInstanceHealth(data []byte, e *instanceHealthJSON, healthy *bool) bool {
	s := eventScanner{b: data}
	return s.object(instanceHealthFields[:], func(i int) bool {
		switch i {
		case 0:
			return s.str(&e.InstanceID)
		case 1:
			return s.str(&e.RunSpecID)
		case 2:
			return s.boolPtr(&e.Healthy, healthy)
		}
		return s.str(&e.Timestamp)
	}) && s.end()
}

// unmarshalInstanceHealth is json.Unmarshal(data, e) for a zero *e, most
// of the time without encoding/json; e.Healthy may point at healthy.
func unmarshalInstanceHealth(data []byte, e *instanceHealthJSON, healthy *bool) error {
	if scanInstanceHealth(data, e, healthy) {
		return nil
	}
	var f instanceHealthJSON
	err := json.Unmarshal(data, &f)
	*e = f
	return err
}

// decodeInstanceHealth handles instance_health_changed_event: healthy is
// true, false or null (unknown).
func decodeInstanceHealth(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	var e instanceHealthJSON
	var healthy bool
	if err := unmarshalInstanceHealth(data, &e, &healthy); err != nil {
		return nil, err
	}
	if e.InstanceID == "" {
		return nil, errors.New("missing instanceId")
	}
	return []discovery.Update{{Kind: discovery.UpdateHealth, AppID: e.RunSpecID, TaskID: e.InstanceID, Health: boolHealth(e.Healthy),
		Task: discovery.Task{Updated: parseTime(e.Timestamp)}}}, nil
}

// healthStatusJSON is a health_status_changed_event.
type healthStatusJSON struct {
	AppID      string `json:"appId"`
	InstanceID string `json:"instanceId"`
	TaskID     string `json:"taskId"`
	Alive      *bool  `json:"alive"`
	Timestamp  string `json:"timestamp"`
}

var healthStatusFields = [...]string{"appId", "instanceId", "taskId", "alive", "timestamp"}

// scanHealthStatus is the fast path of unmarshalHealthStatus; it points
// e.Alive at alive.
func scanHealthStatus(data []byte, e *healthStatusJSON, alive *bool) bool {
	s := eventScanner{b: data}
	return s.object(healthStatusFields[:], func(i int) bool {
		switch i {
		case 0:
			return s.str(&e.AppID)
		case 1:
			return s.str(&e.InstanceID)
		case 2:
			return s.str(&e.TaskID)
		case 3:
			return s.boolPtr(&e.Alive, alive)
		}
		return s.str(&e.Timestamp)
	}) && s.end()
}

// unmarshalHealthStatus is json.Unmarshal(data, e) for a zero *e, most of
// the time without encoding/json; e.Alive may point at alive.
func unmarshalHealthStatus(data []byte, e *healthStatusJSON, alive *bool) error {
	if scanHealthStatus(data, e, alive) {
		return nil
	}
	var f healthStatusJSON
	err := json.Unmarshal(data, &f)
	*e = f
	return err
}

// decodeHealthStatus handles health_status_changed_event (Marathon-side
// health checks): instanceId since 1.4, taskId before.
func decodeHealthStatus(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	var e healthStatusJSON
	var alive bool
	if err := unmarshalHealthStatus(data, &e, &alive); err != nil {
		return nil, err
	}
	id := e.InstanceID
	if id == "" {
		id = e.TaskID
	}
	if id == "" {
		return nil, errors.New("missing instanceId and taskId")
	}
	return []discovery.Update{{Kind: discovery.UpdateHealth, AppID: e.AppID, TaskID: id, Health: boolHealth(e.Alive),
		Task: discovery.Task{Updated: parseTime(e.Timestamp)}}}, nil
}

func boolHealth(b *bool) discovery.Health {
	switch {
	case b == nil:
		return discovery.HealthNone
	case *b:
		return discovery.HealthHealthy
	}
	return discovery.HealthUnhealthy
}

func decodeAppTerminated(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	var e struct {
		AppID string `json:"appId"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if e.AppID == "" {
		return nil, errors.New("missing appId")
	}
	return []discovery.Update{{Kind: discovery.UpdateAppRemoved, AppID: e.AppID}}, nil
}

// decodeAPIPost handles api_post_event: an app created or changed through
// the API carries its full definition (UpdateApp); a DELETE of
// /v2/apps/<id> carries none (UpdateAppRemoved). Anything else is ignored.
func decodeAPIPost(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	var e struct {
		URI           string          `json:"uri"`
		AppDefinition json.RawMessage `json:"appDefinition"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if len(e.AppDefinition) > 0 && string(e.AppDefinition) != "null" {
		app, err := DecodeApp(e.AppDefinition, resolve)
		if err != nil {
			return nil, err
		}
		return []discovery.Update{{Kind: discovery.UpdateApp, AppID: app.ID, App: app}}, nil
	}
	if id, ok := appIDFromURI(e.URI); ok {
		return []discovery.Update{{Kind: discovery.UpdateAppRemoved, AppID: id}}, nil
	}
	return nil, nil
}

// appIDFromURI returns "/<id>" for a URI /v2/apps/<id> naming an app itself
// (not its tasks, versions or restart endpoint).
func appIDFromURI(uri string) (string, bool) {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	rest, ok := strings.CutPrefix(uri, "/v2/apps/")
	rest = strings.Trim(rest, "/")
	if !ok || rest == "" {
		return "", false
	}
	for _, seg := range strings.Split(rest, "/") {
		switch seg {
		case "", "tasks", "versions", "restart":
			return "", false
		}
	}
	return "/" + rest, true
}

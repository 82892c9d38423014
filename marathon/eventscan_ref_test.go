package marathon

import (
	"encoding/json"
	"errors"
	"net/netip"

	"github.com/vipbridge/vipbridge/discovery"
)

// The encoding/json decoders of the hot event types as they were before
// eventScanner: the reference of the differential test and fuzz target.
// They decode into the named structs of events.go (before, anonymous
// structs of the same fields and tags) so that the text of type errors,
// which names the Go type, is the same too.

func refDecodeStatusUpdate(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
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

func refDecodeInstanceChanged(data []byte, resolve func(string) netip.Addr) ([]discovery.Update, error) {
	var e instanceChangedJSON
	if err := json.Unmarshal(data, &e); err != nil {
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

func refDecodeInstanceHealth(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	var e instanceHealthJSON
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	if e.InstanceID == "" {
		return nil, errors.New("missing instanceId")
	}
	return []discovery.Update{{Kind: discovery.UpdateHealth, AppID: e.RunSpecID, TaskID: e.InstanceID, Health: boolHealth(e.Healthy),
		Task: discovery.Task{Updated: parseTime(e.Timestamp)}}}, nil
}

func refDecodeHealthStatus(data []byte, _ func(string) netip.Addr) ([]discovery.Update, error) {
	var e healthStatusJSON
	if err := json.Unmarshal(data, &e); err != nil {
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

package marathon

// The Mesos operator API's events (v1 JSON), as the SUBSCRIBE stream
// carries them, one per RecordIO record (apache/mesos
// include/mesos/v1/master/master.proto, Event; shapes by version in
// shared/facts/mesos-operator-api-and-pods.md A.4).

import (
	"bytes"
	"fmt"
)

// Event types of the operator stream.
const (
	mesosSubscribed       = "SUBSCRIBED"
	mesosHeartbeat        = "HEARTBEAT"
	mesosTaskAdded        = "TASK_ADDED"
	mesosTaskUpdated      = "TASK_UPDATED"
	mesosAgentAdded       = "AGENT_ADDED"
	mesosAgentRemoved     = "AGENT_REMOVED"
	mesosFrameworkAdded   = "FRAMEWORK_ADDED"
	mesosFrameworkUpdated = "FRAMEWORK_UPDATED"
	mesosFrameworkRemoved = "FRAMEWORK_REMOVED"
)

// mesosEventJSON is one operator event; the payload named after Type is
// set, the others are nil.
type mesosEventJSON struct {
	Type string `json:"type"`
	// Subscribed is read as a stream (mesoseventread.go): its tasks are
	// decoded one at a time and kept compact.
	Subscribed *mesosSubscribedEvent `json:"-"`
	TaskAdded  *struct {
		Task mesosTaskJSON `json:"task"`
	} `json:"task_added"`
	TaskUpdated      *mesosTaskUpdatedJSON `json:"task_updated"`
	AgentAdded       *mesosAgentAddedJSON  `json:"agent_added"`
	AgentRemoved     *mesosAgentIDJSON     `json:"agent_removed"`
	FrameworkAdded   *mesosFrameworkJSONv1 `json:"framework_added"`
	FrameworkUpdated *mesosFrameworkJSONv1 `json:"framework_updated"`
	FrameworkRemoved *struct {
		FrameworkInfo mesosFrameworkInfoJSON `json:"framework_info"`
	} `json:"framework_removed"`
}

// mesosTaskUpdatedJSON is TASK_UPDATED: the framework, the latest state
// according to the agent and the last acknowledged status, with no task
// data (protobuf_utils.cpp createTaskUpdated). Mesos 1.0 sent task_id and
// agent_id instead of the status.
type mesosTaskUpdatedJSON struct {
	FrameworkID valueJSON        `json:"framework_id"`
	State       string           `json:"state"`
	Status      *mesosStatusJSON `json:"status"`
	TaskID      valueJSON        `json:"task_id"`
	AgentID     valueJSON        `json:"agent_id"`
}

// taskID is the updated task's ID, from the status (≥ 1.1) or the event
// (1.0).
func (u *mesosTaskUpdatedJSON) taskID() string {
	if u.Status != nil && u.Status.TaskID.Value != "" {
		return u.Status.TaskID.Value
	}
	return u.TaskID.Value
}

type mesosAgentAddedJSON struct {
	Agent mesosV1AgentJSON `json:"agent"`
}

type mesosAgentIDJSON struct {
	AgentID valueJSON `json:"agent_id"`
}

type mesosFrameworkJSONv1 struct {
	Framework mesosV1FrameworkJSON `json:"framework"`
}

// decodeMesosEvent decodes one record of the stream, keeping every task
// (readMesosEvent).
func decodeMesosEvent(data []byte) (mesosEventJSON, error) {
	return readMesosEvent(bytes.NewReader(data), "")
}

// check reports a missing payload or ID.
func (ev *mesosEventJSON) check() error {
	missing := func(what string) error { return fmt.Errorf("no %s", what) }
	switch ev.Type {
	case "":
		return missing("type")
	case mesosSubscribed:
		if ev.Subscribed == nil {
			return missing("subscribed")
		}
	case mesosTaskAdded:
		if ev.TaskAdded == nil {
			return missing("task_added")
		}
		if ev.TaskAdded.Task.taskID() == "" {
			return missing("task_id")
		}
	case mesosTaskUpdated:
		if ev.TaskUpdated == nil {
			return missing("task_updated")
		}
		if ev.TaskUpdated.taskID() == "" {
			return missing("task_id")
		}
	case mesosAgentAdded:
		if ev.AgentAdded == nil || ev.AgentAdded.Agent.AgentInfo.ID.Value == "" {
			return missing("agent_added.agent.agent_info.id")
		}
	case mesosAgentRemoved:
		if ev.AgentRemoved == nil || ev.AgentRemoved.AgentID.Value == "" {
			return missing("agent_removed.agent_id")
		}
	case mesosFrameworkAdded, mesosFrameworkUpdated:
		fw := ev.FrameworkAdded
		if ev.Type == mesosFrameworkUpdated {
			fw = ev.FrameworkUpdated
		}
		if fw == nil || fw.Framework.FrameworkInfo.ID.Value == "" {
			return missing("framework.framework_info.id")
		}
	case mesosFrameworkRemoved:
		if ev.FrameworkRemoved == nil || ev.FrameworkRemoved.FrameworkInfo.ID.Value == "" {
			return missing("framework_removed.framework_info.id")
		}
	}
	return nil
}

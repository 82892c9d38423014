package marathontest

import (
	"encoding/json"
	"fmt"
	"time"
)

// event is one Marathon event ready for the stream: its type and the
// single-line JSON of its data.
type event struct {
	Type string
	Data []byte
	raw  bool // from Emit: not kept for Replay
}

// newEvent marshals fields with eventType and timestamp added, the two
// fields every Marathon event has (mesosphere/marathon
// src/main/scala/mesosphere/marathon/api/v2/json/Formats.scala).
func newEvent(eventType string, now time.Time, fields obj) event {
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

// statusUpdateEvent is status_update_event for t's current state
// (docs/docs/event-bus.md "Status Update"; ipAddresses as written by
// InstanceChangedEventsGenerator).
func (c *cluster) statusUpdateEvent(t *task, now time.Time) event {
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
		"ports":      hostPortsJSON(t.hostPorts),
		"version":    marathonTime(t.version),
	}
	if !c.legacy {
		fields["ipAddresses"] = ips
	}
	return newEvent("status_update_event", now, fields)
}

// condition maps a Mesos task state to an instance condition
// (docs/docs/event-bus.md, instance_changed_event).
func condition(state string) string {
	switch state {
	case "TASK_STAGING":
		return "Staging"
	case "TASK_STARTING":
		return "Starting"
	case "TASK_RUNNING":
		return "Running"
	case "TASK_KILLING":
		return "Killing"
	case "TASK_KILLED":
		return "Killed"
	case "TASK_FAILED":
		return "Failed"
	case "TASK_FINISHED":
		return "Finished"
	}
	return "Unknown"
}

// instanceChangedEvent is instance_changed_event (Marathon ≥1.4) for t's
// current state; nil in the legacy shape.
func (c *cluster) instanceChangedEvent(t *task, now time.Time) []event {
	if c.legacy {
		return nil
	}
	return []event{newEvent("instance_changed_event", now, obj{
		"instanceId":     t.instanceID,
		"condition":      condition(t.state),
		"runSpecId":      t.appID,
		"agentId":        c.agents[t.agent].ID,
		"host":           c.agents[t.agent].Hostname,
		"runSpecVersion": marathonTime(t.version),
	})}
}

// healthEvents are the events of a health change: Marathon-side
// health_status_changed_event (its instanceId equals the task id in the
// legacy shape) and, except in the legacy shape,
// instance_health_changed_event.
func (c *cluster) healthEvents(t *task, now time.Time) []event {
	out := []event{newEvent("health_status_changed_event", now, obj{
		"appId":      t.appID,
		"instanceId": t.instanceID,
		"version":    marathonTime(t.version),
		"alive":      *t.healthy,
	})}
	if c.legacy {
		return out
	}
	return append(out, newEvent("instance_health_changed_event", now, obj{
		"instanceId":     t.instanceID,
		"runSpecId":      t.appID,
		"runSpecVersion": marathonTime(t.version),
		"healthy":        *t.healthy,
	}))
}

// apiPostEvent is api_post_event for a create or update of a through the
// REST API, carrying the full app definition.
func (c *cluster) apiPostEvent(a *app, uri string, now time.Time) event {
	return newEvent("api_post_event", now, obj{
		"clientIp":      "127.0.0.1",
		"uri":           uri,
		"appDefinition": c.appJSON(a, false),
	})
}

// deploymentSuccess is deployment_success for a deployment of appID,
// with the plan in the shape of docs/docs/event-bus.md deployment_info.
func (c *cluster) deploymentSuccess(appID string, now time.Time) event {
	c.seq++
	id := deploymentID(c.seq)
	return newEvent("deployment_success", now, obj{
		"id": id,
		"plan": obj{
			"id":      id,
			"steps":   []any{obj{"action": "ScaleApplication", "app": appID}},
			"version": marathonTime(now),
		},
	})
}

func deploymentID(n uint64) string {
	return fmt.Sprintf("867ed450-f6a8-4d33-b2bb-%012x", n)
}

// appTerminatedEvent is app_terminated_event.
func appTerminatedEvent(appID string, now time.Time) event {
	return newEvent("app_terminated_event", now, obj{"appId": appID})
}

// streamEvent is event_stream_attached or event_stream_detached.
func streamEvent(eventType, remote string, now time.Time) event {
	return newEvent(eventType, now, obj{"remoteAddress": remote})
}

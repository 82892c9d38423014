package marathontest

import (
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

// newEvent wraps the JSON data b of an event of eventType.
func newEvent(eventType string, b []byte) event {
	return event{Type: eventType, Data: b}
}

// The event payloads are appended by hand as render.go explains, keys
// sorted. Every Marathon event has eventType and timestamp
// (mesosphere/marathon
// src/main/scala/mesosphere/marathon/api/v2/json/Formats.scala).

// eventBufSize is the initial capacity of an event's data: most fit.
const eventBufSize = 512

// appendEventType appends the "eventType" key, its value and a comma.
func appendEventType(b []byte, eventType string) []byte {
	b = append(b, `"eventType":`...)
	b = appendString(b, eventType)
	return append(b, ',')
}

// appendTimestamp appends the "timestamp" key and now.
func appendTimestamp(b []byte, now time.Time) []byte {
	b = append(b, `"timestamp":`...)
	return appendTime(b, now)
}

// statusUpdateEvent is status_update_event for t's current state
// (docs/docs/event-bus.md "Status Update"; ipAddresses as written by
// InstanceChangedEventsGenerator, not in the legacy shape).
func (c *cluster) statusUpdateEvent(t *task, now time.Time) event {
	ag := &c.agents[t.agent]
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"appId":`...)
	b = appendString(b, t.appID)
	b = append(b, `,"eventType":"status_update_event","host":`...)
	b = appendString(b, ag.Hostname)
	if !c.legacy {
		b = append(b, `,"ipAddresses":`...)
		b = appendIPAddresses(b, t.ips)
	}
	b = append(b, `,"message":"","ports":`...)
	b = appendUint16s(b, t.hostPorts)
	b = append(b, `,"slaveId":`...)
	b = appendString(b, ag.ID)
	b = append(b, `,"taskId":`...)
	b = appendString(b, t.id)
	b = append(b, `,"taskStatus":`...)
	b = appendString(b, t.state)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	b = append(b, `,"version":`...)
	b = appendTime(b, t.version)
	return newEvent("status_update_event", append(b, '}'))
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
	ag := &c.agents[t.agent]
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"agentId":`...)
	b = appendString(b, ag.ID)
	b = append(b, `,"condition":`...)
	b = appendString(b, condition(t.state))
	b = append(b, `,"eventType":"instance_changed_event","host":`...)
	b = appendString(b, ag.Hostname)
	b = append(b, `,"instanceId":`...)
	b = appendString(b, t.instanceID)
	b = append(b, `,"runSpecId":`...)
	b = appendString(b, t.appID)
	b = append(b, `,"runSpecVersion":`...)
	b = appendTime(b, t.version)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	return []event{newEvent("instance_changed_event", append(b, '}'))}
}

// healthEvents are the events of a health change: Marathon-side
// health_status_changed_event (its instanceId equals the task id in the
// legacy shape) and, except in the legacy shape,
// instance_health_changed_event.
func (c *cluster) healthEvents(t *task, now time.Time) []event {
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"alive":`...)
	b = appendBool(b, *t.healthy)
	b = append(b, `,"appId":`...)
	b = appendString(b, t.appID)
	b = append(b, `,"eventType":"health_status_changed_event","instanceId":`...)
	b = appendString(b, t.instanceID)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	b = append(b, `,"version":`...)
	b = appendTime(b, t.version)
	out := []event{newEvent("health_status_changed_event", append(b, '}'))}
	if c.legacy {
		return out
	}
	b = make([]byte, 0, eventBufSize)
	b = append(b, `{"eventType":"instance_health_changed_event","healthy":`...)
	b = appendBool(b, *t.healthy)
	b = append(b, `,"instanceId":`...)
	b = appendString(b, t.instanceID)
	b = append(b, `,"runSpecId":`...)
	b = appendString(b, t.appID)
	b = append(b, `,"runSpecVersion":`...)
	b = appendTime(b, t.version)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	return append(out, newEvent("instance_health_changed_event", append(b, '}')))
}

// apiPostEvent is api_post_event for a create or update of a through the
// REST API, carrying the full app definition.
func (c *cluster) apiPostEvent(a *app, uri string, now time.Time) event {
	b := make([]byte, 0, 4*eventBufSize)
	b = append(b, `{"appDefinition":`...)
	b = c.appendApp(b, a, false)
	b = append(b, `,"clientIp":"127.0.0.1","eventType":"api_post_event",`...)
	b = appendTimestamp(b, now)
	b = append(b, `,"uri":`...)
	b = appendString(b, uri)
	return newEvent("api_post_event", append(b, '}'))
}

// deploymentSuccess is deployment_success for a deployment of appID,
// with the plan in the shape of docs/docs/event-bus.md deployment_info.
func (c *cluster) deploymentSuccess(appID string, now time.Time) event {
	c.seq++
	id := deploymentID(c.seq)
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"eventType":"deployment_success","id":`...)
	b = appendString(b, id)
	b = append(b, `,"plan":{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"steps":[{"action":"ScaleApplication","app":`...)
	b = appendString(b, appID)
	b = append(b, `}],"version":`...)
	b = appendTime(b, now)
	b = append(b, "},"...)
	b = appendTimestamp(b, now)
	return newEvent("deployment_success", append(b, '}'))
}

func deploymentID(n uint64) string {
	return fmt.Sprintf("867ed450-f6a8-4d33-b2bb-%012x", n)
}

// appTerminatedEvent is app_terminated_event.
func appTerminatedEvent(appID string, now time.Time) event {
	b := make([]byte, 0, eventBufSize)
	b = append(b, `{"appId":`...)
	b = appendString(b, appID)
	b = append(b, `,"eventType":"app_terminated_event",`...)
	b = appendTimestamp(b, now)
	return newEvent("app_terminated_event", append(b, '}'))
}

// streamEvent is event_stream_attached or event_stream_detached.
func streamEvent(eventType, remote string, now time.Time) event {
	b := make([]byte, 0, eventBufSize)
	b = append(b, '{')
	b = appendEventType(b, eventType)
	b = append(b, `"remoteAddress":`...)
	b = appendString(b, remote)
	b = append(b, ',')
	b = appendTimestamp(b, now)
	return newEvent(eventType, append(b, '}'))
}

package marathon

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

var eventTime = time.Date(2014, 3, 1, 23, 29, 30, 158e6, time.UTC)

type eventTest struct {
	name      string
	eventType string
	data      string
	want      []discovery.Update
	wantErr   error // nil: no error; errAny: some error
}

var errAny = errors.New("any error")

var eventTests = []eventTest{
	{
		name:      "status update running with ports and IPs",
		eventType: "status_update_event",
		data: `{"eventType":"status_update_event","timestamp":"2014-03-01T23:29:30.158Z","slaveId":"s1","taskId":"my-app_0-1",
			"taskStatus":"TASK_RUNNING","appId":"/my-app","host":"agent-1","ports":[31372],
			"ipAddresses":[{"ipAddress":"9.0.0.2","protocol":"IPv4"}],"version":"2014-04-04T06:26:23.051Z"}`,
		want: []discovery.Update{{Kind: discovery.UpdateTask, AppID: "/my-app", TaskID: "my-app_0-1", Task: discovery.Task{
			ID: "my-app_0-1", Host: "agent-1", AgentIP: agentIP, AgentID: "s1", State: discovery.TaskRunning, HostPorts: []uint16{31372},
			IPs: []netip.Addr{netip.MustParseAddr("9.0.0.2")}, Updated: eventTime}}},
	},
	{
		name:      "status update with an escaped slaveId: the encoding/json fallback",
		eventType: "status_update_event",
		data:      `{"timestamp":"2014-03-01T23:29:30.158Z","slaveId":"S\u0032","taskId":"t","taskStatus":"TASK_RUNNING","appId":"/a"}`,
		want: []discovery.Update{{Kind: discovery.UpdateTask, AppID: "/a", TaskID: "t",
			Task: discovery.Task{ID: "t", AgentID: "S2", State: discovery.TaskRunning, Updated: eventTime}}},
	},
	{
		name:      "status update killed",
		eventType: "status_update_event",
		data:      `{"timestamp":"2014-03-01T23:29:30.158Z","taskId":"t","taskStatus":"TASK_KILLED","appId":"/a"}`,
		want: []discovery.Update{{Kind: discovery.UpdateTask, AppID: "/a", TaskID: "t",
			Task: discovery.Task{ID: "t", State: discovery.TaskTerminal, Updated: eventTime}}},
	},
	{
		name:      "status update without task id",
		eventType: "status_update_event",
		data:      `{"taskStatus":"TASK_RUNNING","appId":"/a"}`,
		wantErr:   errAny,
	},
	{
		name:      "instance killed removes the instance",
		eventType: "instance_changed_event",
		data: `{"instanceId":"a.instance-1","condition":"Killed","runSpecId":"/a","host":"10.0.0.1",
			"timestamp":"2014-03-01T23:29:30.158Z"}`,
		want: []discovery.Update{{Kind: discovery.UpdateTask, AppID: "/a", TaskID: "a.instance-1", Task: discovery.Task{
			ID: "a.instance-1", Host: "10.0.0.1", AgentIP: netip.MustParseAddr("10.0.0.1"), State: discovery.TaskTerminal, Updated: eventTime}}},
	},
	{
		name:      "instance running gives nothing: status_update_event carries it",
		eventType: "instance_changed_event",
		data:      `{"instanceId":"a.instance-1","condition":"Running","runSpecId":"/a"}`,
	},
	{
		name:      "instance healthy",
		eventType: "instance_health_changed_event",
		data:      `{"instanceId":"a.instance-1","runSpecId":"/a","healthy":true}`,
		want:      []discovery.Update{{Kind: discovery.UpdateHealth, AppID: "/a", TaskID: "a.instance-1", Health: discovery.HealthHealthy}},
	},
	{
		name:      "instance health unknown",
		eventType: "instance_health_changed_event",
		data:      `{"instanceId":"a.instance-1","runSpecId":"/a","healthy":null}`,
		want:      []discovery.Update{{Kind: discovery.UpdateHealth, AppID: "/a", TaskID: "a.instance-1", Health: discovery.HealthNone}},
	},
	{
		name:      "marathon health check failing, old taskId field",
		eventType: "health_status_changed_event",
		data:      `{"appId":"/a","taskId":"a.1","alive":false}`,
		want:      []discovery.Update{{Kind: discovery.UpdateHealth, AppID: "/a", TaskID: "a.1", Health: discovery.HealthUnhealthy}},
	},
	{
		name:      "app terminated",
		eventType: "app_terminated_event",
		data:      `{"appId":"/a","timestamp":"2014-03-01T23:29:30.158Z"}`,
		want:      []discovery.Update{{Kind: discovery.UpdateAppRemoved, AppID: "/a"}},
	},
	{
		name:      "api post with definition",
		eventType: "api_post_event",
		data: `{"uri":"/v2/apps/a","appDefinition":{"id":"/a","version":"v1","portDefinitions":[{"port":0,"labels":{"VIP_0":"/a:80"}}],
			"healthChecks":[{"protocol":"HTTP"}]}}`,
		want: []discovery.Update{{Kind: discovery.UpdateApp, AppID: "/a", App: discovery.App{ID: "/a", Framework: "marathon", Version: "v1",
			HealthChecks: true, Ports: []discovery.Port{{Kind: discovery.PortHost, Protocols: tcp, Labels: vip("VIP_0", "/a:80")}}}}},
	},
	{
		name:      "api post of a delete",
		eventType: "api_post_event",
		data:      `{"uri":"/v2/apps/group/a?force=true","appDefinition":null}`,
		want:      []discovery.Update{{Kind: discovery.UpdateAppRemoved, AppID: "/group/a"}},
	},
	{
		name:      "api post on tasks endpoint without definition",
		eventType: "api_post_event",
		data:      `{"uri":"/v2/apps/a/tasks/t1"}`,
	},
	{
		name:      "api post with a broken definition",
		eventType: "api_post_event",
		data:      `{"uri":"/v2/apps/a","appDefinition":{"id":7}}`,
		wantErr:   errAny,
	},
	{
		name:      "deployment success resyncs",
		eventType: "deployment_success",
		data:      `{"id":"867ed450"}`,
		want:      []discovery.Update{{Kind: discovery.UpdateResync, Reason: "deployment"}},
	},
	{
		name:      "deployment failed resyncs",
		eventType: "deployment_failed",
		data:      `{"id":"867ed450"}`,
		want:      []discovery.Update{{Kind: discovery.UpdateResync, Reason: "deployment"}},
	},
	{name: "deployment info ignored", eventType: "deployment_info", data: `{"plan":{}}`},
	{name: "stream attached ignored", eventType: "event_stream_attached", data: `{"remoteAddress":"::1"}`},
	{name: "known type, garbage data", eventType: "event_stream_attached", data: `{`, wantErr: errAny},
	{name: "unknown type", eventType: "frobnicate_event", data: `{}`, wantErr: ErrUnknownEvent},
	{
		name: "type taken from data when the event line is missing",
		data: `{"eventType":"app_terminated_event","appId":"/a"}`,
		want: []discovery.Update{{Kind: discovery.UpdateAppRemoved, AppID: "/a"}},
	},
	{name: "empty data", eventType: "status_update_event", data: ``, wantErr: errAny},
	{name: "data is a string", eventType: "instance_health_changed_event", data: `"x"`, wantErr: errAny},
	{name: "wrong field type", eventType: "status_update_event", data: `{"taskId":"t","appId":"/a","ports":["x"]}`, wantErr: errAny},
}

// eventCrashers holds inputs the fuzzer once found troublesome; they run as
// table rows and seed FuzzDecodeEvent.
var eventCrashers = []eventTest{
	{name: "null data", eventType: "api_post_event", data: `null`},
	{name: "huge port", eventType: "status_update_event", data: `{"taskId":"t","appId":"/a","ports":[1e400]}`, wantErr: errAny},
}

func TestDecodeEvent(t *testing.T) {
	for _, tt := range append(append([]eventTest{}, eventTests...), eventCrashers...) {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.eventType, []byte(tt.data), fakeResolve)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("DecodeEvent(%q, %s): %v", tt.eventType, tt.data, err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("DecodeEvent(%q, %s) error = %v, want %v", tt.eventType, tt.data, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeEvent(%q, %s) =\n%+v\nwant\n%+v", tt.eventType, tt.data, got, tt.want)
			}
		})
	}
}

// TestDecodeEventBusExamples decodes every JSON example of
// docs/docs/event-bus.md: every one is a known event type.
func TestDecodeEventBusExamples(t *testing.T) {
	doc := upstreamtest.File(t, "mesosphere-marathon/docs/docs/event-bus.md")
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 25 {
		t.Fatalf("found %d JSON examples, want at least 25", len(blocks))
	}
	kinds := map[discovery.UpdateKind]int{}
	for _, b := range blocks {
		updates, err := DecodeEvent("", b[1], fakeResolve)
		if err != nil {
			t.Errorf("DecodeEvent(%s): %v", b[1], err)
			continue
		}
		checkUpdates(t, updates)
		for _, u := range updates {
			kinds[u.Kind]++
		}
	}
	for _, k := range []discovery.UpdateKind{discovery.UpdateTask, discovery.UpdateHealth, discovery.UpdateApp,
		discovery.UpdateAppRemoved, discovery.UpdateResync} {
		if kinds[k] == 0 {
			t.Errorf("no update of kind %d among the examples: %v", k, kinds)
		}
	}
}

type sseFrame struct{ event, data string }

// splitSSE is a minimal text/event-stream frame splitter for test inputs:
// "event:" and "data:" lines, frames ended by a blank line, CRLF or LF.
func splitSSE(b []byte) []sseFrame {
	var out []sseFrame
	var cur sseFrame
	var data []string
	flush := func() {
		if cur.event != "" || len(data) > 0 {
			cur.data = strings.Join(data, "\n")
			out = append(out, cur)
		}
		cur, data = sseFrame{}, nil
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "event:"):
			cur.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	flush()
	return out
}

// TestDecodeEventsCapture decodes the real SSE capture events.txt:
// event_stream_attached, then a failed and a running task.
func TestDecodeEventsCapture(t *testing.T) {
	raw := upstreamtest.File(t, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt")
	frames := splitSSE(raw)
	if len(frames) != 3 {
		t.Fatalf("got %d frames, want 3", len(frames))
	}
	var updates []discovery.Update
	for _, fr := range frames {
		u, err := DecodeEvent(fr.event, []byte(fr.data), fakeResolve)
		if err != nil {
			t.Fatalf("DecodeEvent(%q): %v", fr.event, err)
		}
		updates = append(updates, u...)
	}
	if len(updates) != 2 {
		t.Fatalf("got %d updates, want 2: %+v", len(updates), updates)
	}
	failed, running := updates[0], updates[1]
	if failed.AppID != "/foo" || failed.Task.State != discovery.TaskTerminal || failed.Task.AgentID != "20150707-153709-218108076-5050-25588-S6" {
		t.Errorf("first update = %+v, want terminal task of /foo on agent …-S6 (slaveId)", failed)
	}
	if running.Task.AgentID != "20150707-153709-201330860-5050-12052-S0" {
		t.Errorf("second update agent = %q, want the slaveId …-S0", running.Task.AgentID)
	}
	wantUpdated := time.Date(2015, 9, 30, 12, 47, 11, 286e6, time.UTC)
	if running.AppID != "/test-app" || running.Task.State != discovery.TaskRunning ||
		!reflect.DeepEqual(running.Task.HostPorts, []uint16{31182}) || !running.Task.Updated.Equal(wantUpdated) {
		t.Errorf("second update = %+v, want running task of /test-app on port 31182 at %v", running, wantUpdated)
	}
}

func TestSplitSSE(t *testing.T) {
	got := splitSSE([]byte("event: a\r\ndata: {\"x\":1}\r\n\r\n\r\nevent: b\ndata: 1\ndata: 2\n"))
	want := []sseFrame{{"a", `{"x":1}`}, {"b", "1\n2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitSSE = %+v, want %+v", got, want)
	}
	if n := len(splitSSE(bytes.Repeat([]byte("\r\n"), 3))); n != 0 {
		t.Errorf("heartbeats gave %d frames", n)
	}
}

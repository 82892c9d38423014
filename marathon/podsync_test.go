package marathon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

func TestPodEventID(t *testing.T) {
	tests := []struct {
		name, typ, data, want string
	}{
		{name: "created", typ: "pod_created_event", data: `{"uri":"/v2/pods/group/web","eventType":"pod_created_event"}`, want: "/group/web"},
		{name: "status uri", typ: "pod_updated_event", data: `{"uri":"/v2/pods/web::status?force=true"}`, want: "/web"},
		{name: "deleted", typ: "pod_deleted_event", data: `{"uri":"/v2/pods/web/"}`, want: "/web"},
		{name: "not a pod uri", typ: "pod_deleted_event", data: `{"uri":"/v2/apps/web"}`},
		{name: "no id", typ: "pod_deleted_event", data: `{"uri":"/v2/pods/"}`},
		{name: "other event", typ: "api_post_event", data: `{"uri":"/v2/pods/web"}`},
		{name: "garbage", typ: "pod_created_event", data: `{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := podEventID(tt.typ, []byte(tt.data))
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("podEventID(%s, %s) = %q, %v, want %q", tt.typ, tt.data, got, ok, tt.want)
			}
		})
	}
}

// TestPodRoute checks that updates about known pods become fetches and
// the rest pass.
func TestPodRoute(t *testing.T) {
	p := newPodTracker()
	p.reset([]discovery.App{{ID: "/pod", Tasks: []discovery.Task{{ID: "pod.instance-1"}}}})
	now := time.Now()
	in := []discovery.Update{
		{Kind: discovery.UpdateTask, AppID: "/pod", TaskID: "pod.instance-1.c1"},
		{Kind: discovery.UpdateTask, AppID: "/app", TaskID: "app.instance-1._app.1"},
		{Kind: discovery.UpdateHealth, AppID: "/pod", TaskID: "pod.instance-1"},
	}
	out := p.route("status_update_event", nil, in, now)
	if len(out) != 1 || out[0].AppID != "/app" {
		t.Errorf("route passed %+v, want only /app's update", out)
	}
	p.route("pod_created_event", []byte(`{"uri":"/v2/pods/new"}`), nil, now)
	// An update of a pod waiting for its first fetch waits too.
	if out := p.route("status_update_event", nil, []discovery.Update{{Kind: discovery.UpdateTask, AppID: "/new"}}, now); len(out) != 0 {
		t.Errorf("route passed %+v for a pending pod", out)
	}
	got := p.take()
	if len(got) != 2 || got["/pod"] != now || got["/new"] != now {
		t.Errorf("pending = %v, want /pod and /new", got)
	}
}

// TestFetchPod fetches a pod from a real HTTP server: the pod is sent
// whole, definition and instances (an instance the model had, here
// web.instance-1, goes with the replaced pod), and a 404 removes it.
func TestFetchPod(t *testing.T) {
	body := `{"id":"/web","spec":{"networks":[{"mode":"host"}],"containers":[{"name":"c","endpoints":[{"name":"e","hostPort":0,"labels":{"VIP_0":"/web:80"}}]}]},
		"instances":[{"id":"web.instance-2","agentHostname":"10.0.0.2","lastUpdated":"2024-01-01T00:00:02Z","containers":[{"name":"c","status":"TASK_RUNNING","endpoints":[{"name":"e","allocatedHostPort":31000}]}]}]}`
	gone := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/pods/web::status" || gone {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{srv.URL}})
	t1 := time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC)
	c.pods.reset([]discovery.App{{ID: "/web", Tasks: []discovery.Task{{ID: "web.instance-1", Updated: t1}}}})
	var sink recordingSink
	c.fetchPod(context.Background(), "/web", time.Time{}, &sink)
	if len(sink) != 1 || sink[0].Kind != discovery.UpdateAppReplace || sink[0].AppID != "/web" {
		t.Fatalf("updates = %+v, want /web replaced", sink)
	}
	pod := sink[0].App
	if len(pod.Tasks) != 1 || pod.Tasks[0].ID != "web.instance-2" || pod.Tasks[0].HostPorts[0] != 31000 ||
		pod.Ports[0].Labels[0].Value != "/web:80" {
		t.Errorf("replaced pod = %+v, want web.instance-2 on host port 31000 with VIP /web:80", pod)
	}
	gone = true
	sink = nil
	c.fetchPod(context.Background(), "/web", time.Time{}, &sink)
	if len(sink) != 1 || sink[0].Kind != discovery.UpdateAppRemoved || sink[0].AppID != "/web" {
		t.Errorf("after 404: %+v, want /web removed", sink)
	}
}

type recordingSink []discovery.Update

func (s *recordingSink) Update(u discovery.Update) { *s = append(*s, u) }

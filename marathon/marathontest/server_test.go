package marathontest_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// frame is one SSE frame as read off the wire; a heartbeat has Heartbeat
// set and nothing else.
type frame struct {
	Event     string
	Data      string
	Heartbeat bool
}

// stream is a minimal reader of Jetty-framed SSE, strict about CRLF.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads one frame or heartbeat; io.EOF when the server closed.
func (s *stream) next() (frame, error) {
	var f frame
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		if !strings.HasSuffix(line, "\r\n") {
			s.t.Fatalf("line %q does not end in CRLF", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case line == "" && f.Event == "" && f.Data == "":
			return frame{Heartbeat: true}, nil
		case line == "":
			return f, nil
		case strings.HasPrefix(line, "event: "):
			f.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			f.Data += strings.TrimPrefix(line, "data: ")
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// event reads frames, skipping heartbeats, and decodes the data.
func (s *stream) event() (string, map[string]any) {
	s.t.Helper()
	for {
		f, err := s.next()
		if err != nil {
			s.t.Fatalf("read event: %v", err)
		}
		if f.Heartbeat {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(f.Data), &m); err != nil {
			s.t.Fatalf("event %s data %q: %v", f.Event, f.Data, err)
		}
		if m["eventType"] != f.Event {
			s.t.Errorf("event %s has eventType %v", f.Event, m["eventType"])
		}
		if _, ok := m["timestamp"].(string); !ok {
			s.t.Errorf("event %s has no timestamp", f.Event)
		}
		return f.Event, m
	}
}

// until reads events up to and including one of type want, returning the
// types seen and the last event.
func (s *stream) until(want string) ([]string, map[string]any) {
	s.t.Helper()
	var seen []string
	for {
		typ, m := s.event()
		seen = append(seen, typ)
		if typ == want {
			return seen, m
		}
	}
}

func newDemo(t *testing.T, opts ...marathontest.Option) *marathontest.Server {
	t.Helper()
	sc, err := marathontest.LoadScenario("demo")
	if err != nil {
		t.Fatal(err)
	}
	s := marathontest.NewServer(sc, opts...)
	t.Cleanup(s.Close)
	return s
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

func TestScenarios(t *testing.T) {
	for _, name := range []string{"demo", "small"} {
		t.Run(name, func(t *testing.T) {
			sc, err := marathontest.LoadScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			s := marathontest.NewServer(sc)
			defer s.Close()
			for _, a := range s.Apps() {
				for _, task := range a.Tasks {
					if task.State != "TASK_RUNNING" {
						t.Errorf("app %s task %s state %s, want TASK_RUNNING", a.ID, task.ID, task.State)
					}
					for _, ip := range append([]netip.Addr{task.AgentIP}, task.IPs...) {
						if !ip.IsLoopback() {
							t.Errorf("app %s task %s address %s is not loopback", a.ID, task.ID, ip)
						}
					}
				}
			}
		})
	}
}

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "unknown field", in: `{"agents":[],"appz":[]}`, want: "unknown field"},
		{name: "app without agent", in: `{"apps":[{"id":"/a","instances":1}]}`, want: "at least one agent"},
		{name: "relative id", in: `{"agents":[{"ip":"127.0.0.2"}],"apps":[{"id":"a"}]}`, want: "absolute path"},
		{name: "bad network", in: `{"agents":[{"ip":"127.0.0.2"}],"apps":[{"id":"/a","network":"overlay"}]}`, want: "unknown network"},
		{name: "bad protocol", in: `{"agents":[{"ip":"127.0.0.2"}],"apps":[{"id":"/a","ports":[{"protocol":"sctp"}]}]}`, want: "unknown protocol"},
		{name: "bridge without container port", in: `{"agents":[{"ip":"127.0.0.2"}],"apps":[{"id":"/a","network":"bridge","ports":[{}]}]}`, want: "containerPort required"},
		{name: "agent out of range", in: `{"agents":[{"ip":"127.0.0.2"}],"frameworks":[{"name":"f","tasks":[{"id":"t","agent":1}]}]}`, want: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := marathontest.ParseScenario([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseScenario(%s) = %v, want error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestAppsEndpoint(t *testing.T) {
	s := newDemo(t)
	var body struct {
		Apps []struct {
			ID       string `json:"id"`
			Networks []struct {
				Mode string `json:"mode"`
				Name string `json:"name"`
			} `json:"networks"`
			Container *struct {
				PortMappings []struct {
					ContainerPort int               `json:"containerPort"`
					HostPort      *int              `json:"hostPort"`
					Protocol      string            `json:"protocol"`
					Labels        map[string]string `json:"labels"`
				} `json:"portMappings"`
			} `json:"container"`
			PortDefinitions []struct {
				Protocol string            `json:"protocol"`
				Labels   map[string]string `json:"labels"`
			} `json:"portDefinitions"`
			Tasks []struct {
				ID          string `json:"id"`
				Host        string `json:"host"`
				Ports       []int  `json:"ports"`
				IPAddresses []struct {
					IPAddress string `json:"ipAddress"`
				} `json:"ipAddresses"`
				HealthCheckResults []struct {
					Alive      bool   `json:"alive"`
					InstanceID string `json:"instanceId"`
				} `json:"healthCheckResults"`
			} `json:"tasks"`
		} `json:"apps"`
	}
	getJSON(t, s.URL()+"/v2/apps?embed=apps.tasks", &body)
	byID := map[string]int{}
	for i, a := range body.Apps {
		byID[a.ID] = i
	}
	web := body.Apps[byID["/web"]]
	if web.Networks[0].Mode != "host" || web.PortDefinitions[0].Labels["VIP_0"] != "/web:80" || len(web.Tasks) != 3 {
		t.Errorf("/web = %+v, want host networking, VIP_0 /web:80, 3 tasks", web)
	}
	for _, task := range web.Tasks {
		if len(task.Ports) != 1 || task.Ports[0] < 31000 || task.IPAddresses[0].IPAddress != task.Host {
			t.Errorf("/web task %+v: want one host port ≥31000 and the agent IP", task)
		}
	}
	shop := body.Apps[byID["/shop/web"]]
	if shop.Networks[0].Mode != "container/bridge" || shop.Container == nil || *shop.Container.PortMappings[0].HostPort != 0 {
		t.Errorf("/shop/web = %+v, want container/bridge with hostPort 0", shop)
	}
	for _, task := range shop.Tasks {
		if len(task.HealthCheckResults) != 1 || !task.HealthCheckResults[0].Alive || !strings.HasPrefix(task.ID, task.HealthCheckResults[0].InstanceID) {
			t.Errorf("/shop/web task %+v: want one alive health result for its instance", task)
		}
	}
	db := body.Apps[byID["/db/postgres"]]
	if db.Networks[0].Mode != "container" || db.Networks[0].Name != "dcos" || db.Container.PortMappings[0].HostPort != nil {
		t.Errorf("/db/postgres = %+v, want container network dcos without hostPort", db)
	}
	for _, task := range db.Tasks {
		if len(task.Ports) != 0 || !strings.HasPrefix(task.IPAddresses[0].IPAddress, "127.1.") {
			t.Errorf("/db/postgres task %+v: want no host ports and a 127.1.x.x IP", task)
		}
	}
	if dns := body.Apps[byID["/dns"]]; dns.Container.PortMappings[0].Protocol != "tcp,udp" {
		t.Errorf("/dns protocol = %q, want tcp,udp", dns.Container.PortMappings[0].Protocol)
	}

	var noTasks struct {
		Apps []map[string]any `json:"apps"`
	}
	getJSON(t, s.URL()+"/v2/apps", &noTasks)
	if _, ok := noTasks.Apps[0]["tasks"]; ok {
		t.Errorf("GET /v2/apps without embed has tasks")
	}
	var one struct {
		App struct {
			ID    string           `json:"id"`
			Tasks []map[string]any `json:"tasks"`
		} `json:"app"`
	}
	if code := getJSON(t, s.URL()+"/v2/apps/shop/web", &one); code != 200 || one.App.ID != "/shop/web" || len(one.App.Tasks) != 2 {
		t.Errorf("GET /v2/apps/shop/web = %d %+v", code, one)
	}
	var missing map[string]any
	if code := getJSON(t, s.URL()+"/v2/apps/nope", &missing); code != http.StatusNotFound {
		t.Errorf("GET /v2/apps/nope = %d, want 404", code)
	}
}

func TestInfoAndLeader(t *testing.T) {
	s := newDemo(t)
	var info struct {
		Elected bool   `json:"elected"`
		Leader  string `json:"leader"`
		Config  struct {
			FrameworkName string `json:"framework_name"`
		} `json:"marathon_config"`
	}
	getJSON(t, s.URL()+"/v2/info", &info)
	if !info.Elected || "http://"+info.Leader != s.URL() || info.Config.FrameworkName != "marathon" {
		t.Errorf("/v2/info = %+v", info)
	}
	var leader struct{ Leader string }
	getJSON(t, s.URL()+"/v2/leader", &leader)
	if "http://"+leader.Leader != s.URL() {
		t.Errorf("/v2/leader = %+v, want %s", leader, s.URL())
	}
}

func TestEventsNeedAcceptHeader(t *testing.T) {
	s := newDemo(t)
	tests := []struct {
		name, accept string
		want         int
	}{
		{name: "none", want: http.StatusMethodNotAllowed},
		{name: "json", accept: "application/json", want: http.StatusMethodNotAllowed},
		{name: "with parameters", accept: "text/event-stream; q=1", want: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v2/events", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("Accept %q: status %d, want %d", tt.accept, resp.StatusCode, tt.want)
			}
		})
	}
}

func TestEventsWireFormat(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	if ct := st.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	if st.resp.TransferEncoding != nil || !st.resp.Close {
		t.Errorf("TransferEncoding %v, Close %v: want no chunking and Connection: close", st.resp.TransferEncoding, st.resp.Close)
	}
	raw, err := st.r.ReadString('}')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "event: event_stream_attached\r\ndata: {") {
		t.Errorf("first frame starts %q", raw)
	}
	rest := make([]byte, 4)
	if _, err := io.ReadFull(st.r, rest); err != nil || string(rest) != "\r\n\r\n" {
		t.Errorf("frame ends %q, %v; want CRLF CRLF", rest, err)
	}
}

func TestHeartbeat(t *testing.T) {
	s := newDemo(t, marathontest.WithHeartbeat(5*time.Millisecond))
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	for {
		f, err := st.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Heartbeat {
			return
		}
	}
}

func TestEventTypeFilter(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=app_terminated_event&event_type=deployment_success")
	if err := s.ScaleApp("/web", 4); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp("/batch"); err != nil {
		t.Fatal(err)
	}
	seen, m := st.until("app_terminated_event")
	if strings.Join(seen, " ") != "deployment_success app_terminated_event" || m["appId"] != "/batch" {
		t.Errorf("filtered stream saw %v (%v)", seen, m)
	}
}

func TestScaleApp(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=status_update_event&event_type=api_post_event&event_type=deployment_success")
	if err := s.ScaleApp("/web", 4); err != nil {
		t.Fatal(err)
	}
	typ, post := st.event()
	def, _ := post["appDefinition"].(map[string]any)
	if typ != "api_post_event" || def["instances"] != 4.0 {
		t.Errorf("first event %s %v, want api_post_event with instances 4", typ, post)
	}
	var states []string
	var newTask map[string]any
	for {
		typ, m := st.event()
		if typ == "deployment_success" {
			break
		}
		states = append(states, m["taskStatus"].(string))
		newTask = m
	}
	if strings.Join(states, " ") != "TASK_STAGING TASK_RUNNING" {
		t.Errorf("scale up states %v", states)
	}
	apps, _ := s.App("/web")
	last := apps.Tasks[len(apps.Tasks)-1]
	if newTask["taskId"] != last.ID || newTask["appId"] != "/web" || newTask["host"] != last.Host ||
		newTask["slaveId"] != last.AgentID || newTask["ports"].([]any)[0] != float64(last.HostPorts[0]) {
		t.Errorf("status_update_event %v does not match task %+v", newTask, last)
	}

	if err := s.ScaleApp("/web", 2); err != nil {
		t.Fatal(err)
	}
	st.event() // api_post_event
	states = nil
	for {
		typ, m := st.event()
		if typ == "deployment_success" {
			break
		}
		states = append(states, m["taskStatus"].(string))
	}
	if strings.Join(states, " ") != "TASK_KILLING TASK_KILLED TASK_KILLING TASK_KILLED" {
		t.Errorf("scale down states %v", states)
	}
	if a, _ := s.App("/web"); len(a.Tasks) != 2 {
		t.Errorf("after scale down: %d tasks, want 2", len(a.Tasks))
	}
}

func TestKillTask(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=status_update_event")
	id := s.TaskIDs("/web")[0]
	if err := s.KillTask(id); err != nil {
		t.Fatal(err)
	}
	_, m := st.event()
	if m["taskId"] != id || m["taskStatus"] != "TASK_KILLED" {
		t.Errorf("event %v, want TASK_KILLED for %s", m, id)
	}
	if got := len(s.TaskIDs("/web")); got != 2 {
		t.Errorf("after kill: %d tasks, want 2 (no replacement)", got)
	}
	if err := s.KillTask(id); err == nil {
		t.Errorf("KillTask of a killed task succeeded")
	}
}

func TestSetHealth(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=instance_health_changed_event&event_type=health_status_changed_event")
	id := s.TaskIDs("/shop/web")[0]
	if err := s.SetHealth(id, false); err != nil {
		t.Fatal(err)
	}
	typ1, m1 := st.event()
	typ2, m2 := st.event()
	if typ1 != "health_status_changed_event" || m1["alive"] != false || !strings.HasPrefix(id, m1["instanceId"].(string)) {
		t.Errorf("first event %s %v", typ1, m1)
	}
	if typ2 != "instance_health_changed_event" || m2["healthy"] != false || m2["runSpecId"] != "/shop/web" {
		t.Errorf("second event %s %v", typ2, m2)
	}
	var app struct {
		App struct {
			Tasks []struct {
				ID                 string           `json:"id"`
				HealthCheckResults []map[string]any `json:"healthCheckResults"`
			} `json:"tasks"`
		} `json:"app"`
	}
	getJSON(t, s.URL()+"/v2/apps/shop/web", &app)
	for _, task := range app.App.Tasks {
		if task.ID == id && task.HealthCheckResults[0]["alive"] != false {
			t.Errorf("task %s health %v, want alive false", id, task.HealthCheckResults)
		}
	}
}

func TestDeleteApp(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	if err := s.DeleteApp("/web"); err != nil {
		t.Fatal(err)
	}
	seen, m := st.until("app_terminated_event")
	for _, typ := range seen {
		if typ == "api_post_event" {
			t.Errorf("DeleteApp emitted api_post_event")
		}
	}
	if m["appId"] != "/web" {
		t.Errorf("app_terminated_event %v", m)
	}
	if _, ok := s.App("/web"); ok {
		t.Errorf("app /web still exists")
	}
	if err := s.DeleteApp("/web"); err == nil {
		t.Errorf("second DeleteApp succeeded")
	}
}

func TestAddApp(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=api_post_event&event_type=status_update_event")
	spec := marathontest.AppSpec{ID: "/new", Instances: 1, Ports: []marathontest.PortSpec{{Labels: map[string]string{"VIP_0": "/new:80"}}}}
	if err := s.AddApp(spec); err != nil {
		t.Fatal(err)
	}
	typ, m := st.event()
	if typ != "api_post_event" || m["uri"] != "/v2/apps" {
		t.Errorf("first event %s %v", typ, m)
	}
	seen, _ := st.until("status_update_event")
	if len(seen) != 1 {
		t.Errorf("unexpected events %v", seen)
	}
	if err := s.AddApp(spec); err == nil {
		t.Errorf("adding /new twice succeeded")
	}
}

func TestEmitRaw(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	s.Emit("weird_event", []byte("{not json\nsecond line"))
	f, err := st.next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Event != "weird_event" || f.Data != "{not jsonsecond line" {
		t.Errorf("frame %+v", f)
	}
}

func TestDropConnections(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	s.DropConnections()
	for {
		f, err := st.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read after drop: %v", err)
		}
		if !f.Heartbeat {
			t.Fatalf("frame after drop: %+v", f)
		}
	}
}

func TestChangeLeader(t *testing.T) {
	s := newDemo(t)
	old := s.URL()
	st := openStream(t, old+"/v2/events")
	st.until("event_stream_attached")
	leader, err := s.ChangeLeader()
	if err != nil {
		t.Fatal(err)
	}
	if leader == old || s.LeaderURL() != leader {
		t.Fatalf("ChangeLeader() = %s, LeaderURL %s, old %s", leader, s.LeaderURL(), old)
	}
	if _, err := io.ReadAll(st.r); err != nil {
		t.Errorf("old stream did not end cleanly: %v", err)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, old+"/v2/events?event_type=x", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != leader+"/v2/events?event_type=x" {
		t.Errorf("old node /v2/events = %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), leader)
	}

	// The default client follows the redirect to a stream on the new leader.
	st2 := openStream(t, old+"/v2/events")
	st2.until("event_stream_attached")

	var info struct {
		Elected bool   `json:"elected"`
		Leader  string `json:"leader"`
	}
	getJSON(t, old+"/v2/info", &info)
	if info.Elected || "http://"+info.Leader != leader {
		t.Errorf("old node /v2/info = %+v, want elected false, leader %s", info, leader)
	}
	var apps struct{ Apps []any }
	getJSON(t, old+"/v2/apps?embed=apps.tasks", &apps)
	if len(apps.Apps) == 0 {
		t.Errorf("old node serves no apps")
	}
}

func TestMesosState(t *testing.T) {
	s := newDemo(t, marathontest.WithStandbyMaster())
	var state struct {
		Leader string `json:"leader"`
		Slaves []struct {
			ID  string `json:"id"`
			PID string `json:"pid"`
		} `json:"slaves"`
		Frameworks []struct {
			Name  string `json:"name"`
			Tasks []struct {
				ID        string `json:"id"`
				State     string `json:"state"`
				Resources struct {
					Ports string `json:"ports"`
				} `json:"resources"`
				Discovery struct {
					Ports struct {
						Ports []struct {
							Number   int    `json:"number"`
							Protocol string `json:"protocol"`
							Labels   struct {
								Labels []struct{ Key, Value string } `json:"labels"`
							} `json:"labels"`
						} `json:"ports"`
					} `json:"ports"`
				} `json:"discovery"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	getJSON(t, s.MesosURL()+"/master/state", &state)
	if state.Leader != "master@"+strings.TrimPrefix(s.MesosURL(), "http://") {
		t.Errorf("leader = %q", state.Leader)
	}
	if len(state.Slaves) != 3 || state.Slaves[0].PID != "slave(1)@127.0.0.2:5051" {
		t.Errorf("slaves = %+v", state.Slaves)
	}
	names := map[string]int{}
	for i, f := range state.Frameworks {
		names[f.Name] = i
	}
	hello := state.Frameworks[names["hello-world"]]
	if len(hello.Tasks) != 2 || hello.Tasks[0].Discovery.Ports.Ports[0].Labels.Labels[0].Value != "/api.hello-world:80" {
		t.Errorf("hello-world = %+v", hello)
	}
	marathon := state.Frameworks[names["marathon"]]
	dnsPorts := 0
	for _, task := range marathon.Tasks {
		if strings.HasPrefix(task.ID, "dns.") {
			dnsPorts = len(task.Discovery.Ports.Ports)
			if !strings.HasPrefix(task.Resources.Ports, "[31") {
				t.Errorf("dns task resources.ports = %q", task.Resources.Ports)
			}
		}
	}
	if dnsPorts != 2 {
		t.Errorf("tcp,udp port gives %d discovery ports, want 2", dnsPorts)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.StandbyMesosURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != s.MesosURL()+"/master/state" {
		t.Errorf("standby = %d %q, want 307 to the leader", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		opt    marathontest.Option
		header string
		user   string
	}{
		{name: "basic", opt: marathontest.WithBasicAuth("alice:secret"), user: "alice:secret"},
		{name: "token", opt: marathontest.WithToken("tok"), header: "token=tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDemo(t, tt.opt)
			for _, url := range []string{s.URL() + "/v2/apps", s.MesosURL() + "/master/state"} {
				resp, err := http.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s without credentials: %d, want 401", url, resp.StatusCode)
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				if u, p, ok := strings.Cut(tt.user, ":"); ok {
					req.SetBasicAuth(u, p)
				}
				resp, err = http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s with credentials: %d, want 200", url, resp.StatusCode)
				}
			}
		})
	}
}

func TestSlowConsumerDropped(t *testing.T) {
	s := newDemo(t, marathontest.WithMaxOutstanding(1))
	st := openStream(t, s.URL()+"/v2/events")
	for range 10000 {
		s.Emit("x", []byte(`{"eventType":"x","timestamp":"t","pad":"`+strings.Repeat("p", 1000)+`"}`))
		if s.Streams() == 0 {
			break
		}
	}
	if s.Streams() != 0 {
		t.Skip("stream kept up with every event; overflow not reached")
	}
	if _, err := io.Copy(io.Discard, st.r); err != nil {
		t.Errorf("dropped stream ended with %v", err)
	}
}

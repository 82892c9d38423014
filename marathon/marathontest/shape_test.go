package marathontest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
	"github.com/vipbridge/vipbridge/marathon"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// The simulator must not invent fields: every key path it emits for apps,
// tasks, /v2/info, events and the Mesos state has to occur in real upstream
// payloads, or (for Marathon) be a property of the RAML types under a path
// that does. Paths are loose: arrays collapse to "[]", and user data
// (labels, env) is a leaf.

// userData are keys whose object values hold user-chosen keys.
func userData(key string) bool { return key == "labels" || key == "env" }

// keyPaths adds every key path of v below prefix to out, stopping at
// objects that are a different root (stop returns true).
func keyPaths(v any, prefix string, out map[string]bool, stop func(map[string]any) bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			p := prefix + "." + k
			out[p] = true
			if m, ok := child.(map[string]any); ok && userData(k) {
				if _, mesos := m["labels"]; !mesos {
					continue
				}
			}
			if m, ok := child.(map[string]any); ok && stop(m) {
				continue
			}
			keyPaths(child, p, out, stop)
		}
	case []any:
		for _, child := range v {
			if m, ok := child.(map[string]any); ok && stop(m) {
				continue
			}
			keyPaths(child, prefix+"[]", out, stop)
		}
	}
}

func isApp(m map[string]any) bool {
	_, id := m["id"]
	_, appID := m["appId"]
	_, instances := m["instances"]
	_, cmd := m["cmd"]
	_, container := m["container"]
	return id && !appID && (instances || cmd || container)
}

func isTask(m map[string]any) bool {
	_, appID := m["appId"]
	_, host := m["host"]
	_, id := m["id"]
	return appID && host && id
}

// roots finds every object for which is returns true, anywhere in v.
func roots(v any, is func(map[string]any) bool, out *[]map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		if is(v) {
			*out = append(*out, v)
		}
		for _, child := range v {
			roots(child, is, out)
		}
	case []any:
		for _, child := range v {
			roots(child, is, out)
		}
	}
}

// shapePaths returns the key paths of every root object in docs.
func shapePaths(docs []any, is func(map[string]any) bool) map[string]bool {
	out := make(map[string]bool)
	stop := func(m map[string]any) bool { return isApp(m) || isTask(m) }
	for _, d := range docs {
		var rs []map[string]any
		roots(d, is, &rs)
		for _, r := range rs {
			keyPaths(r, "", out, stop)
		}
	}
	return out
}

func readJSONFiles(t *testing.T, paths ...string) []any {
	t.Helper()
	var docs []any
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Logf("skip %s: %v", p, err)
			continue
		}
		docs = append(docs, v)
	}
	return docs
}

func globJSON(t *testing.T, root string, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
				out = append(out, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// ramlProperties returns every property name declared in the Marathon
// RAML types.
func ramlProperties(t *testing.T, root string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s+([A-Za-z_]+)\??:`)
	out := make(map[string]bool)
	for _, p := range []string{"app.raml", "task.raml", "appContainer.raml", "network.raml", "healthCheck.raml"} {
		data, err := os.ReadFile(filepath.Join(root, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/types", p))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			out[string(m[1])] = true
		}
	}
	return out
}

// unknownPaths lists paths of got absent from want, allowing a path whose
// last key is in extra while its parent is known.
func unknownPaths(got, want, extra map[string]bool) []string {
	var bad []string
	for p := range got {
		if want[p] {
			continue
		}
		i := strings.LastIndex(p, ".")
		parent, key := p[:i], p[i+1:]
		if extra[key] && (parent == "" || want[parent] || want[strings.TrimSuffix(parent, "[]")] || got[parent]) {
			continue
		}
		bad = append(bad, p)
	}
	slices.Sort(bad)
	return bad
}

func fetch(t *testing.T, url string) any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v
}

func TestMarathonShapeMatchesUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	files := globJSON(t, root, "mesosphere-marathon", "mesosphere-marathon-lb", "allegro-marathon-consul", "gambol99-go-marathon", "dcos-dcos-ui")
	upstream := readJSONFiles(t, files...)
	raml := ramlProperties(t, root)
	wantApp := shapePaths(upstream, isApp)
	wantTask := shapePaths(upstream, isTask)
	if len(wantApp) < 50 || len(wantTask) < 10 {
		t.Fatalf("too few upstream paths: %d app, %d task", len(wantApp), len(wantTask))
	}
	if bad := unknownPaths(map[string]bool{".container.bogus": true}, wantApp, raml); len(bad) != 1 {
		t.Fatalf("unknownPaths accepts an invented key")
	}
	for _, tt := range []struct {
		name string
		opts []marathontest.Option
	}{
		{name: "1.5"},
		{name: "1.4", opts: []marathontest.Option{marathontest.WithLegacyShape()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDemo(t, tt.opts...)
			got := []any{
				fetch(t, s.URL()+"/v2/apps?embed=apps.tasks"),
				fetch(t, s.URL()+"/v2/apps/shop/web"),
				fetch(t, s.URL()+"/v2/tasks"),
			}
			for _, c := range []struct {
				kind string
				is   func(map[string]any) bool
				want map[string]bool
			}{{"app", isApp, wantApp}, {"task", isTask, wantTask}} {
				if bad := unknownPaths(shapePaths(got, c.is), c.want, raml); len(bad) > 0 {
					t.Errorf("%s keys not in upstream payloads or RAML: %v", c.kind, bad)
				}
			}
			info := map[string]bool{}
			keyPaths(fetch(t, s.URL()+"/v2/info"), "", info, func(map[string]any) bool { return false })
			wantInfo := map[string]bool{}
			keyPaths(readJSONFiles(t, filepath.Join(root, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/info.json"))[0], "", wantInfo, func(map[string]any) bool { return false })
			if bad := unknownPaths(info, wantInfo, nil); len(bad) > 0 {
				t.Errorf("/v2/info keys not in examples/info.json: %v", bad)
			}
		})
	}
}

func TestMesosShapeMatchesUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	files := globJSON(t, root, "dcos-dcos-net/apps/dcos_l4lb/testdata", "dcos-mesos_state", "mesosphere-mesos-dns")
	want := map[string]bool{}
	for _, d := range readJSONFiles(t, files...) {
		if m, ok := d.(map[string]any); ok && m["frameworks"] != nil {
			keyPaths(m, "", want, func(map[string]any) bool { return false })
		}
	}
	if len(want) < 50 || !want[".frameworks[].tasks[].discovery.ports.ports[].labels.labels[].key"] {
		t.Fatalf("upstream states give too few paths (%d)", len(want))
	}
	s := newDemo(t)
	got := map[string]bool{}
	keyPaths(fetch(t, s.MesosURL()+"/master/state"), "", got, func(map[string]any) bool { return false })
	if bad := unknownPaths(got, want, nil); len(bad) > 0 {
		t.Errorf("/master/state keys not in upstream states: %v", bad)
	}
}

// eventExamples extracts the JSON examples of docs/docs/event-bus.md and
// the capture examples/events.txt, by event type.
func eventExamples(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	add := func(data string) {
		var m map[string]any
		if json.Unmarshal([]byte(data), &m) != nil {
			return
		}
		typ, _ := m["eventType"].(string)
		if out[typ] == nil {
			out[typ] = map[string]bool{}
		}
		keyPaths(m, "", out[typ], func(map[string]any) bool { return false })
	}
	doc, err := os.ReadFile(filepath.Join(root, "mesosphere-marathon/docs/docs/event-bus.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		add(block[1])
	}
	capture, err := os.ReadFile(filepath.Join(root, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(capture), "\n") {
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			add(data)
		}
	}
	return out
}

func TestEventShapeMatchesUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	want := eventExamples(t, root)
	// Fields documented outside the examples: status_update_event carries
	// ipAddresses (Formats.scala, InstanceChangedEventsGenerator; UPSTREAM.md
	// §4.3); app definitions in api_post_event are checked as apps below.
	extra := map[string]map[string]bool{
		"status_update_event": {".ipAddresses": true, ".ipAddresses[].ipAddress": true, ".ipAddresses[].protocol": true},
		"deployment_success":  {".plan": true, ".plan.id": true, ".plan.steps": true, ".plan.steps[].action": true, ".plan.steps[].app": true, ".plan.version": true},
	}
	for _, tt := range []struct {
		name string
		opts []marathontest.Option
	}{
		{name: "1.5"},
		{name: "1.4", opts: []marathontest.Option{marathontest.WithLegacyShape()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDemo(t, tt.opts...)
			st := openStream(t, s.URL()+"/v2/events")
			ids := s.TaskIDs("/shop/web")
			s.SetHealth(ids[0], false)
			s.ScaleApp("/web", 4)
			s.KillTask(s.TaskIDs("/web")[0])
			s.DeleteApp("/batch")
			seen := map[string]bool{}
			for {
				typ, m := st.event()
				if typ == "api_post_event" {
					delete(m, "appDefinition")
				}
				got := map[string]bool{}
				keyPaths(m, "", got, func(map[string]any) bool { return false })
				for p := range got {
					if !want[typ][p] && !extra[typ][p] {
						t.Errorf("%s key %s not in upstream examples", typ, p)
					}
				}
				seen[typ] = true
				if typ == "app_terminated_event" {
					break
				}
			}
			for _, typ := range []string{"event_stream_attached", "status_update_event", "health_status_changed_event", "api_post_event", "deployment_success"} {
				if !seen[typ] {
					t.Errorf("no %s seen", typ)
				}
			}
		})
	}
}

// Value formats of the Mesos state fields mesos-dns and dcos-dns name
// things by, as the real states write them.
var (
	ipPort        = `(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+`
	leaderPID     = regexp.MustCompile(`^master@` + ipPort + `$`)
	agentPID      = regexp.MustCompile(`^slave\(1\)@` + ipPort + `$`)
	frameworkPID  = regexp.MustCompile(`^scheduler(-[0-9a-f-]{36}|\(\d+\))@` + ipPort + `$`)
	resourcePorts = regexp.MustCompile(`^\[(\d+-\d+(, \d+-\d+)*)?\]$`)
)

// mesosValueFaults lists where a /master/state breaks the value formats
// of the real states: the leader, agent and framework pids, task
// slave_ids naming a listed agent, resources.ports ranges, and (for
// Marathon, whose pid is "scheduler-<uuid>@…" since it runs on libprocess
// with a generated id) a DiscoveryInfo name equal to the task name.
func mesosValueFaults(state map[string]any) []string {
	var faults []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			faults = append(faults, fmt.Sprintf(format, args...))
		}
	}
	str := func(m map[string]any, k string) (string, bool) { s, ok := m[k].(string); return s, ok }
	list := func(v any) []map[string]any {
		var out []map[string]any
		l, _ := v.([]any)
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	if l, ok := str(state, "leader"); ok {
		check(leaderPID.MatchString(l), "leader %q", l)
	}
	agents := map[string]bool{}
	for _, a := range list(state["slaves"]) {
		id, _ := str(a, "id")
		pid, _ := str(a, "pid")
		agents[id] = true
		check(agentPID.MatchString(pid), "agent %s pid %q", id, pid)
	}
	for _, f := range list(state["frameworks"]) {
		name, _ := str(f, "name")
		pid, hasPID := str(f, "pid")
		check(!hasPID || frameworkPID.MatchString(pid), "framework %s pid %q", name, pid)
		marathon := name == "marathon" && strings.HasPrefix(pid, "scheduler-")
		for _, t := range list(f["tasks"]) {
			id, _ := str(t, "id")
			slave, _ := str(t, "slave_id")
			check(agents[slave], "task %s on unlisted agent %q", id, slave)
			if res, ok := t["resources"].(map[string]any); ok {
				if p, ok := str(res, "ports"); ok {
					check(resourcePorts.MatchString(p), "task %s resources.ports %q", id, p)
				}
			}
			if di, ok := t["discovery"].(map[string]any); ok && marathon {
				taskName, _ := str(t, "name")
				diName, _ := str(di, "name")
				check(diName == taskName, "marathon task %s: discovery name %q, task name %q", id, diName, taskName)
			}
		}
	}
	return faults
}

// TestMesosValuesMatchUpstream holds the simulator's /master/state to the
// value formats of the real states in dcos/mesos_state and mesos-dns, and
// decodes both into the same kind of Cluster: a leader, every pid a
// framework or agent address.
func TestMesosValuesMatchUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	files := globJSON(t, root, "dcos-mesos_state", "mesosphere-mesos-dns")
	checkCluster := func(t *testing.T, name string, state any) {
		t.Helper()
		data, _ := json.Marshal(state)
		st, _, err := marathon.DecodeMesosState(bytes.NewReader(data), "")
		if err != nil {
			t.Fatalf("%s: DecodeMesosState: %v", name, err)
		}
		m := state.(map[string]any)
		if _, ok := m["leader"]; ok && !st.Cluster.Leader.IsValid() {
			t.Errorf("%s: leader %v not decoded", name, m["leader"])
		}
		withPID := map[string]bool{}
		for _, f := range m["frameworks"].([]any) {
			if f, ok := f.(map[string]any); ok && f["pid"] != nil {
				withPID[f["id"].(string)] = true
			}
		}
		for _, f := range st.Cluster.Frameworks {
			if withPID[f.ID] && !f.Addr.IsValid() {
				t.Errorf("%s: framework %+v with a pid but no address", name, f)
			}
		}
		for _, a := range st.Cluster.Agents {
			if !a.Addr.IsValid() {
				t.Errorf("%s: agent %+v without address", name, a)
			}
		}
	}
	states := 0
	for i, d := range readJSONFiles(t, files...) {
		m, ok := d.(map[string]any)
		if !ok || m["frameworks"] == nil {
			continue
		}
		states++
		rel, _ := filepath.Rel(root, files[i])
		if faults := mesosValueFaults(m); len(faults) > 0 {
			t.Errorf("upstream %s breaks the formats (fix the formats): %v", rel, faults)
		}
		checkCluster(t, rel, d)
	}
	if states < 8 {
		t.Fatalf("only %d upstream states", states)
	}

	s := newDemo(t)
	state := fetch(t, s.MesosURL()+"/master/state")
	if faults := mesosValueFaults(state.(map[string]any)); len(faults) > 0 {
		t.Errorf("simulator's /master/state: %v", faults)
	}
	if l := state.(map[string]any)["leader"]; l != "master@"+strings.TrimPrefix(s.MesosURL(), "http://") {
		t.Errorf("leader = %v, want master@ the Mesos URL's host:port", l)
	}
	checkCluster(t, "simulator", state)
}

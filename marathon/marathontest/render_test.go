package marathontest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"
)

// escapeScenario has every networking mode in both shapes, several
// labels, host ports fixed and dynamic, an IPv6 agent and strings that
// encoding/json escapes (HTML characters, quotes, control characters,
// U+2028, invalid UTF-8), so that the hand-appended JSON is compared with
// encoding/json's on them.
func escapeScenario() *Scenario {
	hp := func(p uint16) *uint16 { return &p }
	return &Scenario{
		Agents: []Agent{
			{ID: "agent-<0>&\"", Hostname: "h\u00f6st\u2028\x01.example", IP: netip.MustParseAddr("127.0.0.2")},
			{IP: netip.MustParseAddr("127.0.0.3")},
			{ID: "agent-v6", IP: netip.MustParseAddr("::1")},
			{ID: "agent-zone", IP: netip.MustParseAddr("fe80::1%lo<&>")},
		},
		Apps: []AppSpec{
			{
				ID: "/esc/a<b>&c\"d\\e\u2028f\x7fé\xff", Instances: 4, HealthChecks: true,
				Labels: map[string]string{"b": "2", "B": "1", "a": "<&>", "é": "\xff", "_": "", "a\x00": "nul"},
				Ports: []PortSpec{
					{Name: "http<>", Protocol: "tcp,udp", Labels: map[string]string{"VIP_0": "/esc:80", "VIP_1": "1.2.3.4:80"}},
					{ServicePort: 10555},
				},
			},
			{
				ID: "/bridge", Instances: 3, Network: NetworkBridge, HealthChecks: true,
				Ports: []PortSpec{
					{Name: "web", ContainerPort: 80, Labels: map[string]string{"VIP_0": "/bridge:80"}},
					{ContainerPort: 443, HostPort: hp(31999), Protocol: "udp"},
				},
			},
			{
				ID: "/ctr/with space", Instances: 2, Network: NetworkContainer, NetworkName: "net&work",
				Ports: []PortSpec{
					{Name: "pg", ContainerPort: 5432, Labels: map[string]string{"VIP_0": "/ctr:5432"}},
					{ContainerPort: 8080, HostPort: hp(0)},
					{ContainerPort: 9090, HostPort: hp(32500)},
				},
			},
			{ID: "/empty", Instances: 0},
			{ID: "/noports", Instances: 1, Network: NetworkContainer},
		},
	}
}

// renderCase is one simulator to compare the renderings on.
type renderCase struct {
	name     string
	scenario func(t *testing.T) *Scenario
	legacy   bool
}

func renderCases() []renderCase {
	load := func(name string) func(t *testing.T) *Scenario {
		return func(t *testing.T) *Scenario {
			sc, err := LoadScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}
	}
	sized := func(t *testing.T) *Scenario { return SizedScenario(40, 3) }
	escape := func(t *testing.T) *Scenario { return escapeScenario() }
	return []renderCase{
		{name: "demo", scenario: load("demo")},
		{name: "demo legacy", scenario: load("demo"), legacy: true},
		{name: "small", scenario: load("small")},
		{name: "small legacy", scenario: load("small"), legacy: true},
		{name: "sized", scenario: sized},
		{name: "sized legacy", scenario: sized, legacy: true},
		{name: "escapes", scenario: escape},
		{name: "escapes legacy", scenario: escape, legacy: true},
	}
}

// stepClock is a clock with millisecond fractions and sub-millisecond
// noise that advances on every reading.
func stepClock() func() time.Time {
	var mu sync.Mutex
	now := time.Date(2017, 7, 19, 17, 34, 41, 967654321, time.FixedZone("CEST", 2*3600))
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(1234567 * time.Microsecond / 1000)
		return now
	}
}

// varyTasks puts the simulator's tasks through the states the renderings
// distinguish: staging (no startedAt), killed, unhealthy with a failure
// history, healthy after failing, and health hidden after a failover.
func varyTasks(t *testing.T, s *Server) {
	t.Helper()
	for i, a := range s.Apps() {
		ids := s.TaskIDs(a.ID)
		if len(ids) == 0 {
			continue
		}
		switch i % 3 {
		case 0:
			if err := s.ScaleApp(a.ID, len(ids)+1); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := s.KillTask(ids[0]); err != nil {
				t.Fatal(err)
			}
		}
		if a.HealthChecks {
			for j, id := range s.TaskIDs(a.ID) {
				if j%2 == 0 {
					if err := s.SetHealth(id, false); err != nil {
						t.Fatal(err)
					}
				}
				if j%4 == 0 {
					if err := s.SetHealth(id, true); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for i, a := range s.c.sortedApps() {
		if len(a.spec.Ports) > 0 && i%2 == 0 && len(s.c.agents) > 0 {
			if _, err := s.c.newTask(a, now); err != nil { // stays staging
				t.Fatal(err)
			}
		}
		for j, tk := range a.tasks {
			if tk.healthy != nil && j%3 == 1 {
				tk.blind = true
			}
		}
	}
}

// TestRenderMatchesMaps: every answer and event the simulator renders by
// hand is byte for byte what json.Marshal gives for the map-based
// rendering it replaced (render_ref_test.go), in both API shapes, for the
// scenario files, a sized scenario and one with strings to escape.
func TestRenderMatchesMaps(t *testing.T) {
	for _, tt := range renderCases() {
		t.Run(tt.name, func(t *testing.T) {
			opts := []Option{WithClock(stepClock())}
			if tt.legacy {
				opts = append(opts, WithLegacyShape())
			}
			s, err := Start(tt.scenario(t), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			varyTasks(t, s)

			s.mu.Lock()
			apps := s.c.sortedApps()
			var allTasks, appsWith, appsWithout []any
			want := map[string]any{}
			for _, a := range apps {
				appsWith = append(appsWith, s.c.refAppJSON(a, true))
				appsWithout = append(appsWithout, s.c.refAppJSON(a, false))
				tasks := []any{}
				for _, tk := range a.tasks {
					tasks = append(tasks, s.c.refTaskJSON(a, tk))
				}
				allTasks = append(allTasks, tasks...)
				want["/v2/apps"+a.spec.ID] = obj{"app": s.c.refAppJSON(a, true)}
				want["/v2/apps"+a.spec.ID+"/tasks"] = obj{"tasks": tasks}
			}
			orEmpty := func(l []any) []any {
				if l == nil {
					return []any{}
				}
				return l
			}
			want["/v2/apps"] = obj{"apps": orEmpty(appsWithout)}
			want["/v2/apps?embed=apps.tasks"] = obj{"apps": orEmpty(appsWith)}
			want["/v2/apps?embed=tasks"] = obj{"apps": orEmpty(appsWith)}
			want["/v2/tasks"] = obj{"tasks": orEmpty(allTasks)}
			checkEvents(t, s.c, apps)
			s.mu.Unlock()

			for path, v := range want {
				wantBytes, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				u := s.URL() + (&url.URL{Path: path}).EscapedPath()
				if p, q, ok := cutQuery(path); ok {
					u = s.URL() + (&url.URL{Path: p}).EscapedPath() + "?" + q
				}
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("GET %q: %s, Content-Type %q", path, resp.Status, resp.Header.Get("Content-Type"))
				}
				if !bytes.Equal(got, wantBytes) {
					t.Errorf("GET %q: rendering differs from the maps'\n%s", path, firstDiff(got, wantBytes))
				}
			}
		})
	}
}

func cutQuery(path string) (string, string, bool) {
	for i := range len(path) {
		if path[i] == '?' {
			return path[:i], path[i+1:], true
		}
	}
	return "", "", false
}

// checkEvents compares every event type rendered for apps and their
// tasks with the maps' rendering. The caller holds the server's mutex.
func checkEvents(t *testing.T, c *cluster, apps []*app) {
	t.Helper()
	now := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	same := func(what string, got, want []event) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d events, want %d", what, len(got), len(want))
			return
		}
		for i := range got {
			if got[i].Type != want[i].Type || got[i].raw != want[i].raw || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("%s: event %q differs from %q\n%s", what, got[i].Type, want[i].Type, firstDiff(got[i].Data, want[i].Data))
			}
		}
	}
	for _, a := range apps {
		same("api_post_event "+a.spec.ID,
			[]event{c.apiPostEvent(a, "/v2/apps"+a.spec.ID, now)},
			[]event{c.refApiPostEvent(a, "/v2/apps"+a.spec.ID, now)})
		same("app_terminated_event "+a.spec.ID,
			[]event{appTerminatedEvent(a.spec.ID, now)},
			[]event{refAppTerminatedEvent(a.spec.ID, now)})
		seq := c.seq
		ref := c.refDeploymentSuccess(a.spec.ID, now)
		c.seq = seq
		same("deployment_success "+a.spec.ID, []event{c.deploymentSuccess(a.spec.ID, now)}, []event{ref})
		for _, tk := range a.tasks {
			same("status_update_event "+tk.id, []event{c.statusUpdateEvent(tk, now)}, []event{c.refStatusUpdateEvent(tk, now)})
			same("instance_changed_event "+tk.id, c.instanceChangedEvent(tk, now), c.refInstanceChangedEvent(tk, now))
			if tk.healthy != nil {
				same("health events "+tk.id, c.healthEvents(tk, now), c.refHealthEvents(tk, now))
			}
		}
	}
	for _, typ := range []string{"event_stream_attached", "event_stream_detached"} {
		for _, remote := range []string{"127.0.0.1:41234", "[::1]:5555", "<&>"} {
			same(typ+" "+remote, []event{streamEvent(typ, remote, now)}, []event{refStreamEvent(typ, remote, now)})
		}
	}
}

// firstDiff shows where got and want part.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-120)
	return "at byte " + itoa(i) + ":\ngot  …" + string(got[lo:min(len(got), i+120)]) + "\nwant …" + string(want[lo:min(len(want), i+120)])
}

func itoa(n int) string { return string(appendInt(nil, n)) }

// TestAppendTime: appendTime writes what marathonTime gives, quoted,
// across zones, fractions and the years that need the fallback.
func TestAppendTime(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
	}{
		{name: "utc", at: time.Date(2017, 7, 19, 17, 34, 41, 967000000, time.UTC)},
		{name: "zone and sub-millisecond", at: time.Date(2017, 1, 2, 0, 4, 5, 999999, time.FixedZone("X", -7*3600-1800))},
		{name: "zero", at: time.Time{}},
		{name: "year 9999", at: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{name: "year 10000", at: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "negative year", at: time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(marathonTime(tt.at))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendTime(nil, tt.at); !bytes.Equal(got, want) {
				t.Errorf("appendTime(%v) = %s, want %s", tt.at, got, want)
			}
		})
	}
}

// FuzzAppendString: appendString is json.Marshal for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"`, `\`, "<>&", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é", "a\tb\nc\rd\be\ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("appendString(%q) = %s, want x%s", s, got, want)
		}
	})
}

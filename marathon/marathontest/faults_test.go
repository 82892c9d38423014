package marathontest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

func TestInjectFault(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		fault marathontest.Fault
		url   func(*marathontest.Server) string
		want  []int // statuses of consecutive requests
	}{
		{name: "503 twice on apps", path: "/v2/apps", fault: marathontest.Fault{Status: 503, Count: 2},
			url: func(s *marathontest.Server) string { return s.URL() + "/v2/apps" }, want: []int{503, 503, 200}},
		{name: "500 on info until cleared", path: "/v2/info", fault: marathontest.Fault{Status: 500},
			url: func(s *marathontest.Server) string { return s.URL() + "/v2/info" }, want: []int{500, 500, 500}},
		{name: "503 on master state", path: "/master/state", fault: marathontest.Fault{Status: 503, Count: 1},
			url: func(s *marathontest.Server) string { return s.MesosURL() + "/master/state" }, want: []int{503, 200}},
		{name: "other paths unaffected", path: "/v2/info", fault: marathontest.Fault{Status: 503},
			url: func(s *marathontest.Server) string { return s.URL() + "/v2/apps" }, want: []int{200, 200}},
		{name: "delayed answer is still an answer", path: "/v2/apps", fault: marathontest.Fault{Delay: time.Millisecond, Count: 1},
			url: func(s *marathontest.Server) string { return s.URL() + "/v2/apps" }, want: []int{200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDemo(t)
			s.InjectFault(tt.path, tt.fault)
			for i, want := range tt.want {
				var body map[string]any
				if got := getJSON(t, tt.url(s), &body); got != want {
					t.Errorf("request %d: status %d, want %d", i, got, want)
				}
			}
			s.ClearFaults()
			var body map[string]any
			if got := getJSON(t, tt.url(s), &body); got != http.StatusOK {
				t.Errorf("after ClearFaults: status %d, want 200", got)
			}
		})
	}
}

func TestInjectFaultHang(t *testing.T) {
	s := newDemo(t)
	s.InjectFault("/v2/apps", marathontest.Fault{Hang: true})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/v2/apps")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.FaultHits() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the fault")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("hanging request returned before ClearFaults: %v", err)
	default:
	}
	s.ClearFaults()
	if err := <-done; err == nil {
		t.Errorf("hung request got an answer, want a closed connection")
	}
}

func TestChangeMesosLeader(t *testing.T) {
	s := newDemo(t, marathontest.WithStandbyMaster())
	if _, err := newDemo(t).ChangeMesosLeader(); err == nil {
		t.Errorf("ChangeMesosLeader without standby: no error")
	}
	old, standby := s.MesosURL(), s.StandbyMesosURL()
	leader, err := s.ChangeMesosLeader()
	if err != nil {
		t.Fatal(err)
	}
	if leader != standby || s.MesosURL() != standby || s.StandbyMesosURL() != old {
		t.Fatalf("after change: leader %s, MesosURL %s, standby %s; want %s and %s", leader, s.MesosURL(), s.StandbyMesosURL(), standby, old)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(old + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != leader+"/master/state" {
		t.Errorf("old master: %d Location %q, want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), leader)
	}
	var state struct {
		Frameworks []any `json:"frameworks"`
	}
	if getJSON(t, old+"/master/state", &state); len(state.Frameworks) == 0 {
		t.Errorf("following the redirect gave no frameworks")
	}
}

func TestCutStreams(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	s.CutStreams()
	ids := s.TaskIDs("/shop/web")
	if err := s.KillTask(ids[0]); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(st.r)
	if err != nil {
		t.Fatalf("read after cut: %v", err)
	}
	got := strings.TrimLeft(string(rest), "\r\n") // heartbeats
	if !strings.HasPrefix(got, "event: status_update_event\r\ndata: {") || strings.Contains(got, "\r\n\r\n") {
		t.Errorf("after the cut the stream sent %q, want half a status_update_event frame", got)
	}
	if s.Streams() != 0 {
		t.Errorf("Streams() = %d after the cut, want 0", s.Streams())
	}
	// A new stream is not cut.
	st2 := openStream(t, s.URL()+"/v2/events")
	st2.until("event_stream_attached")
	if err := s.ScaleApp("/shop/web", 3); err != nil {
		t.Fatal(err)
	}
	st2.until("deployment_success")
}

func TestStallStreamsThenSlowConsumerDropped(t *testing.T) {
	s := newDemo(t, marathontest.WithMaxOutstanding(8), marathontest.WithHeartbeat(time.Millisecond))
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	s.StallStreams()
	if n := s.Burst(9); n != 9 { // the writer may hold one, the queue eight
		t.Fatalf("Burst = %d", n)
	}
	if s.Streams() != 0 && s.Burst(1) == 1 && s.Streams() != 0 {
		t.Fatalf("stalled stream not dropped after a burst beyond its queue (Streams %d)", s.Streams())
	}
	if s.SlowDrops() != 1 {
		t.Errorf("SlowDrops() = %d, want 1", s.SlowDrops())
	}
	rest, err := io.ReadAll(st.r)
	if err != nil {
		t.Fatalf("read after drop: %v", err)
	}
	if strings.Contains(string(rest), "status_update_event") {
		t.Errorf("a stalled stream wrote a burst event: %q", rest)
	}
}

func TestFailoverHealthGap(t *testing.T) {
	health := func(s *marathontest.Server) map[string]bool {
		var apps struct {
			Apps []struct {
				ID    string `json:"id"`
				Tasks []struct {
					ID      string `json:"id"`
					Results []any  `json:"healthCheckResults"`
				} `json:"tasks"`
			} `json:"apps"`
		}
		getJSON(t, s.URL()+"/v2/apps?embed=apps.tasks", &apps)
		out := map[string]bool{}
		for _, a := range apps.Apps {
			for _, tk := range a.Tasks {
				out[tk.ID] = len(tk.Results) > 0
			}
		}
		return out
	}
	t.Run("results missing until set again", func(t *testing.T) {
		s := newDemo(t, marathontest.WithFailoverHealthGap(time.Hour))
		checked := ""
		for _, a := range s.Apps() {
			for _, tk := range a.Tasks {
				if tk.Healthy != nil && checked == "" {
					checked = tk.ID
				}
			}
		}
		if checked == "" || !health(s)[checked] {
			t.Fatalf("no task with a health result before the failover")
		}
		if _, err := s.ChangeLeader(); err != nil {
			t.Fatal(err)
		}
		for id, has := range health(s) {
			if has {
				t.Errorf("task %s has a health result right after the failover", id)
			}
		}
		if a, _ := s.App("/shop/web"); a.Tasks[0].Healthy == nil && a.HealthChecks {
			t.Errorf("ground truth lost its health")
		}
		if err := s.SetHealth(checked, true); err != nil {
			t.Fatal(err)
		}
		if !health(s)[checked] {
			t.Errorf("task %s: no health result after SetHealth", checked)
		}
	})
	t.Run("results come back with events", func(t *testing.T) {
		s := newDemo(t, marathontest.WithFailoverHealthGap(time.Hour))
		leader, err := s.ChangeLeader()
		if err != nil {
			t.Fatal(err)
		}
		st := openStream(t, leader+"/v2/events")
		st.until("event_stream_attached")
		s.EndHealthGap()
		_, ev := st.until("health_status_changed_event")
		if ev["alive"] != true {
			t.Errorf("health event after the gap = %v", ev)
		}
		// The new leader's results are as new as their events: a snapshot
		// must not report an older lastSuccess than the event's timestamp.
		var apps struct {
			Apps []struct {
				Tasks []struct {
					ID      string `json:"id"`
					Results []struct {
						LastSuccess *string `json:"lastSuccess"`
						LastFailure *string `json:"lastFailure"`
					} `json:"healthCheckResults"`
				} `json:"tasks"`
			} `json:"apps"`
		}
		getJSON(t, s.URL()+"/v2/apps?embed=apps.tasks", &apps)
		for _, a := range apps.Apps {
			for _, tk := range a.Tasks {
				for _, r := range tk.Results {
					success, failure := "null", "null"
					if r.LastSuccess != nil {
						success = *r.LastSuccess
					}
					if r.LastFailure != nil {
						failure = *r.LastFailure
					}
					if success != ev["timestamp"] && failure != ev["timestamp"] {
						t.Errorf("task %s: result after the gap: lastSuccess %s, lastFailure %s; want the event's %v", tk.ID, success, failure, ev["timestamp"])
					}
				}
			}
		}
		has := health(s)
		for _, a := range s.Apps() {
			for _, tk := range a.Tasks {
				if a.HealthChecks && !has[tk.ID] {
					t.Errorf("task %s: no health result after the gap", tk.ID)
				}
			}
		}
	})
}

func TestReplay(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	if err := s.ScaleApp("/shop/web", 3); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for {
		typ, m := st.event()
		b, _ := json.Marshal(m)
		sent = append(sent, string(b))
		if typ == "deployment_success" {
			break
		}
	}
	if n := s.Replay(len(sent), nil); n != len(sent) {
		t.Fatalf("Replay = %d, want %d", n, len(sent))
	}
	for i := range sent {
		_, m := st.event()
		b, _ := json.Marshal(m)
		if want := sent[len(sent)-1-i]; string(b) != want {
			t.Errorf("replayed event %d = %s, want %s", i, b, want)
		}
	}
	if n := s.Replay(len(sent), nil); n != len(sent) {
		t.Errorf("second Replay = %d, want %d (replays are not history)", n, len(sent))
	}
}

// TestHealthResultsOrdered: two health results of a task in the same
// millisecond get distinct, increasing times, in their events and in
// lastSuccess/lastFailure, as Marathon's (a check runs at most once a
// second): a client that orders health events by time can.
func TestHealthResultsOrdered(t *testing.T) {
	fixed := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s := newDemo(t, marathontest.WithClock(func() time.Time { return fixed }))
	st := openStream(t, s.URL()+"/v2/events")
	st.until("event_stream_attached")
	var id string
	for _, a := range s.Apps() {
		if a.HealthChecks && len(a.Tasks) > 0 && id == "" {
			id = a.Tasks[0].ID
		}
	}
	if id == "" {
		t.Fatal("no task with health checks")
	}
	var stamps []string
	for _, healthy := range []bool{false, true, false} {
		if err := s.SetHealth(id, healthy); err != nil {
			t.Fatal(err)
		}
		_, ev := st.until("health_status_changed_event")
		stamps = append(stamps, ev["timestamp"].(string))
	}
	if !(stamps[0] < stamps[1] && stamps[1] < stamps[2]) {
		t.Errorf("health event timestamps %v, want increasing", stamps)
	}
	var apps struct {
		Apps []struct {
			Tasks []struct {
				ID      string `json:"id"`
				Results []struct {
					LastSuccess string `json:"lastSuccess"`
					LastFailure string `json:"lastFailure"`
				} `json:"healthCheckResults"`
			} `json:"tasks"`
		} `json:"apps"`
	}
	getJSON(t, s.URL()+"/v2/apps?embed=apps.tasks", &apps)
	for _, a := range apps.Apps {
		for _, tk := range a.Tasks {
			if tk.ID == id && (len(tk.Results) != 1 || tk.Results[0].LastSuccess != stamps[1] || tk.Results[0].LastFailure != stamps[2]) {
				t.Errorf("task %s results %+v, want lastSuccess %s, lastFailure %s", id, tk.Results, stamps[1], stamps[2])
			}
		}
	}
}

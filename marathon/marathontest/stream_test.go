package marathontest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// TestStreamedAnswersAreMarshalled: /v2/apps, /v2/apps?embed=apps.tasks and
// /v2/tasks, written item by item, are byte for byte what json.Marshal of
// the whole answer gives, in both API shapes.
func TestStreamedAnswersAreMarshalled(t *testing.T) {
	tests := []struct {
		name   string
		legacy bool
		path   string
	}{
		{name: "apps with tasks", path: "/v2/apps?embed=apps.tasks"},
		{name: "apps", path: "/v2/apps"},
		{name: "tasks", path: "/v2/tasks"},
		{name: "legacy apps with tasks", legacy: true, path: "/v2/apps?embed=apps.tasks"},
		{name: "legacy tasks", legacy: true, path: "/v2/tasks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := LoadScenario("demo")
			if err != nil {
				t.Fatal(err)
			}
			var opts []Option
			if tt.legacy {
				opts = append(opts, WithLegacyShape())
			}
			s, err := Start(sc, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.mu.Lock()
			var whole obj
			if tt.path == "/v2/tasks" {
				tasks := []any{}
				for _, a := range s.c.sortedApps() {
					for _, tk := range a.tasks {
						tasks = append(tasks, s.c.taskJSON(a, tk))
					}
				}
				whole = obj{"tasks": tasks}
			} else {
				apps := []any{}
				for _, a := range s.c.sortedApps() {
					apps = append(apps, s.c.appJSON(a, tt.path != "/v2/apps"))
				}
				whole = obj{"apps": apps}
			}
			s.mu.Unlock()
			want, err := json.Marshal(whole)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(s.URL() + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("GET %s: %d bytes differ from json.Marshal's %d\ngot  %.300s\nwant %.300s", tt.path, len(got), len(want), got, want)
			}
		})
	}
}

// TestStreamedAppsWhileChanging: answers rendered outside the server's
// mutex (from the snapshot copied under it) while apps scale, tasks flip
// health and die: every answer decodes, and -race sees no shared write.
func TestStreamedAppsWhileChanging(t *testing.T) {
	s, err := Start(SizedScenario(50, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			id := s.Apps()[i%50].ID
			_ = s.ScaleApp(id, 1+i%5)
			for _, task := range s.TaskIDs(id) {
				_, _ = s.FlipTask(task)
			}
			if ids := s.TaskIDs(id); len(ids) > 1 {
				_ = s.KillTask(ids[0])
			}
		}
	}()
	for range 20 {
		resp, err := http.Get(s.URL() + "/v2/apps?embed=apps.tasks")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Apps []struct {
				ID    string            `json:"id"`
				Tasks []json.RawMessage `json:"tasks"`
			} `json:"apps"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || len(body.Apps) != 50 {
			t.Fatalf("answer: %d apps, %v; want 50", len(body.Apps), err)
		}
	}
	<-done
}

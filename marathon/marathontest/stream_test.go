package marathontest

import (
	"encoding/json"
	"net/http"
	"testing"
)

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

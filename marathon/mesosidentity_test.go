package marathon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

const (
	overlayMarathon   = "c620b0f5-ce56-472b-814a-aa36b40206af-0001"
	overlayHelloWorld = "c620b0f5-ce56-472b-814a-aa36b40206af-0002"
)

// infoServer serves /v2/info with a frameworkId the test sets ("" for
// none, as before Marathon registered).
type infoServer struct {
	*httptest.Server
	mu sync.Mutex
	id string
}

func newInfoServer(t *testing.T, id string) *infoServer {
	t.Helper()
	s := &infoServer{id: id}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/v2/info":
			if s.id == "" {
				w.Write([]byte(`{"marathon_config":{"framework_name":"marathon"}}`))
				return
			}
			w.Write([]byte(`{"frameworkId":"` + s.id + `","marathon_config":{"framework_name":"marathon"}}`))
		case "/v2/apps":
			w.Write([]byte(`{"apps":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *infoServer) set(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = id
}

// TestMesosStreamMarathonIdentity: Marathon's tasks are those of the
// framework /v2/info names by ID; before it does, no task is classified
// (no update, and the snapshot fails); a new framework ID reclassifies at
// once.
func TestMesosStreamMarathonIdentity(t *testing.T) {
	records := captureRecords(t, "hello-overlay.json")
	api := newOperatorAPI(t, records)
	info := newInfoServer(t, "")
	c, _, _ := testClient(t, Config{MarathonURLs: []string{info.URL}, MesosURLs: []string{api.URL}})
	noDNS(c)
	s, rec := runStream(t, c)
	waitChanges(t, s, rec, changes(t, records))
	for _, u := range rec.all() {
		if u.Kind != discovery.UpdateResync {
			t.Errorf("update %s before Marathon's identity is known", describe([]discovery.Update{u}))
		}
	}
	if _, err := s.Snapshot(context.Background()); !errors.Is(err, errMarathonUnknown) {
		t.Fatalf("Snapshot before Marathon's identity = %v, want %v", err, errMarathonUnknown)
	}

	// Marathon registered as the framework named "marathon".
	info.set(overlayMarathon)
	if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a resync for the identity", atLeast("marathon framework id", 1))
	want := []string{
		"hello-world/hello-host-vip-0-server__2e5e76da-1d8c-4435-b152-70002de6ca9b",
		"hello-world/hello-overlay-0-server__7a7fe08f-7870-4def-a3ac-da5f18377dab",
		"hello-world/hello-overlay-vip-0-server__3b071c4d-ef05-4344-9910-867431def3d7",
	}
	if got := snapshotIDs(t, s); !slices.Equal(got, want) {
		t.Errorf("apps = %q, want %q", got, want)
	}
	s.mu.Lock()
	for k := range s.mirror.tasks {
		if k.framework == overlayMarathon {
			t.Errorf("the mirror keeps Marathon's task %s: its own source serves it", k.task)
		}
	}
	s.mu.Unlock()

	// A reinstall: Marathon is now the framework that had hello-world's ID.
	info.set(overlayHelloWorld)
	if _, err := c.Marathon().Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a resync for the new identity", atLeast("marathon framework id", 2))
	// The old Marathon's tasks were never kept: a new subscription reads
	// them.
	want = []string{"marathon/hello-world.cea59641-2bea-11e8-93f9-6a3d376ad59c"}
	eventually(t, "the task of the framework named marathon", func() bool { return slices.Equal(snapshotIDs(t, s), want) })
	if n := api.count(mesosAPIPath); n != 2 {
		t.Errorf("%d subscriptions, want 2 (one more for the new identity)", n)
	}
}

// TestMesosStreamElection: a master answering 503 while it is elected
// (no leader, or not recovered yet) is retried until it streams.
func TestMesosStreamElection(t *testing.T) {
	sim := marathontest.NewServer(simScenario())
	t.Cleanup(sim.Close)
	sim.InjectFault("/api/v1", marathontest.Fault{Status: http.StatusServiceUnavailable, Count: 3})
	c, _, reg := testClient(t, Config{MarathonURLs: []string{sim.URL()}, MesosURLs: []string{sim.MesosURL()}})
	noDNS(c)
	s, rec := runStream(t, c)
	rec.waitFor(t, "the subscription", atLeast("subscribed", 1))
	if n := metric(t, reg, "vipbridge_mesos_reconnects_total", "reason", "connect"); n < 3 {
		t.Errorf("%v failed attempts, want the 3 answered 503", n)
	}
	if got := snapshotIDs(t, s); !slices.Equal(got, []string{"marathon/kafka-0"}) {
		t.Errorf("apps = %q, want kafka-0", got)
	}
}

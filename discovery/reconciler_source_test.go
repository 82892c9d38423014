package discovery

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// seqSource is a Source that numbers its state, as the Mesos operator
// stream does (State.Seq).
type seqSource struct {
	mu sync.Mutex
	st State
}

func (s *seqSource) Snapshot(context.Context) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, nil
}

func (s *seqSource) set(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
}

// TestReconcilerUpdatesOfAnotherSource: updates naming a source change
// that source's model, not Marathon's; an update older than the snapshot
// the model holds (by Seq) is ignored; a resync asked for a source
// resyncs that source.
func TestReconcilerUpdatesOfAnotherSource(t *testing.T) {
	marathon := &fakeSource{}
	marathon.set(nil, webApp("/web", false, 31000))
	mesos := &seqSource{}
	mesos.set(State{Apps: []App{webApp("/spark", false, 32000)}, Seq: 10})
	r, err := NewReconciler(Config{
		Sources: []SourceConfig{
			{Name: "marathon", Source: marathon, Interval: time.Hour},
			{Name: "mesos", Source: mesos, Interval: time.Hour},
		},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := &recTest{r: r}
	rt.run(t)
	t.Cleanup(rt.stop)
	rt.waitSynced(t)
	rt.waitSummary(t, "spark.marathon:80* 32000/1", "web.marathon:80* 31000/1")

	// Replaced whole; the stale update (Seq 9, before the snapshot) is not.
	r.Update(Update{Source: "mesos", Kind: UpdateAppReplace, Seq: 9, App: webApp("/spark", false, 32009)})
	r.Update(Update{Source: "mesos", Kind: UpdateAppReplace, Seq: 11, App: webApp("/spark", false, 32000, 32001)})
	r.Update(Update{Source: "mesos", Kind: UpdateAppReplace, Seq: 12, App: webApp("/kafka", false, 33000)})
	rt.waitSummary(t, "kafka.marathon:80* 33000/1", "spark.marathon:80* 32000/1 32001/1", "web.marathon:80* 31000/1")

	r.Update(Update{Source: "mesos", Kind: UpdateAppRemoved, Seq: 13, AppID: "/kafka"})
	r.Update(Update{Source: "nowhere", Kind: UpdateAppReplace, App: webApp("/ghost", false, 34000)})
	rt.waitSummary(t, "spark.marathon:80* 32000/1 32001/1", "web.marathon:80* 31000/1")

	mesos.set(State{Apps: []App{webApp("/cassandra", false, 35000)}, Seq: 20})
	r.Update(Update{Source: "mesos", Kind: UpdateResync, Reason: "test"})
	rt.waitSummary(t, "cassandra.marathon:80* 35000/1", "web.marathon:80* 31000/1")
	if n := marathon.callCount(); n != 1 {
		t.Errorf("marathon snapshots = %d, want 1: a resync of mesos is not one of marathon", n)
	}
}

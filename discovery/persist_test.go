package discovery

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var storeT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// memStore is a Store in memory: Write queues, Flush applies the queue
// (or fails while fail is set, keeping it). Tests of the real
// file are in package store and persist_store_test.go.
type memStore struct {
	mu       sync.Mutex
	queued   []Batch
	apps     map[string]map[string]App // source, app ID
	assign   map[string]Assignment     // name plus "/4" or "/6"
	lastSync time.Time
	fail     error
}

func newMemStore() *memStore {
	return &memStore{apps: map[string]map[string]App{}, assign: map[string]Assignment{}}
}

func (s *memStore) Write(b Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = append(s.queued, b)
}

func (s *memStore) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for _, b := range s.queued {
		if b.Replace || s.apps[b.Source] == nil {
			s.apps[b.Source] = map[string]App{}
		}
		for _, id := range b.Delete {
			delete(s.apps[b.Source], id)
		}
		for _, a := range b.Put {
			s.apps[b.Source][a.ID] = a
		}
		for _, a := range b.Assign {
			s.assign[allocKey{name: a.Name, v6: a.Addr.Is6()}.String()] = a
		}
		for _, k := range b.Unassign {
			delete(s.assign, k)
		}
		if b.LastSync.After(s.lastSync) {
			s.lastSync = b.LastSync
		}
	}
	s.queued = nil
	return nil
}

func (s *memStore) Load() (Stored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stored{Sources: map[string][]App{}, LastSync: s.lastSync, Schema: 1}
	for src, apps := range s.apps {
		if len(apps) > 0 {
			st.Sources[src] = slices.SortedFunc(maps.Values(apps), func(x, y App) int { return cmp.Compare(x.ID, y.ID) })
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.assign)) {
		st.Assignments = append(st.Assignments, s.assign[k])
	}
	return st, nil
}

// stored flushes s and returns what it holds.
func (s *memStore) stored(t testing.TB) Stored {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	st, _ := s.Load()
	return st
}

// counterValue returns the value of the counter named name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func TestReconcilerPersists(t *testing.T) {
	store := newMemStore()
	rt := startReconciler(t, store, nil, webApp("/web", false, 31000), webApp("/gone", false, 32000))
	rt.waitSynced(t)
	rt.r.Update(Update{Kind: UpdateAppRemoved, AppID: "/gone"})
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)})
	rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	rt.stop()

	st := store.stored(t)
	if apps := st.Sources["marathon"]; len(st.Sources) != 1 || len(apps) != 1 || apps[0].ID != "/web" {
		t.Fatalf("stored sources = %v, want marathon's /web only", st.Sources)
	}
	if n := len(st.Sources["marathon"][0].Tasks); n != 2 {
		t.Errorf("stored tasks of /web = %d, want 2", n)
	}
	if len(st.Assignments) == 0 || !st.LastSync.Equal(storeT0) {
		t.Errorf("stored assignments %v, last sync %v, want some, %v", st.Assignments, st.LastSync, storeT0)
	}
}

// TestReconcilerFlushesAtEnd: what is still queued when Run ends (here
// because every flush before failed) is committed by Run's flush on the
// way out, not by whoever closes the store.
func TestReconcilerFlushesAtEnd(t *testing.T) {
	store := newMemStore()
	rt := startReconciler(t, store, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	store.mu.Lock()
	store.fail = errors.New("disk full") // the writer's flushes fail from here on
	store.mu.Unlock()
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)})
	rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	rt.stop()

	store.mu.Lock()
	pending := len(store.queued)
	store.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d batches still queued after Run, want none", pending)
	}
	if n := len(store.stored(t).Sources["marathon"][0].Tasks); n != 2 {
		t.Errorf("stored tasks of /web after Run = %d, want 2 (the update queued while flushes failed)", n)
	}
}

// TestReconcilerStoreFailing: failing flushes are retried and never end
// Run or hold back the published table.
func TestReconcilerStoreFailing(t *testing.T) {
	store := newMemStore()
	store.fail = errors.New("read-only file system")
	rt := startReconciler(t, store, nil, webApp("/web", false, 31000))
	rt.waitSummary(t, "web.marathon:80* 31000/1")
	rt.stop()
	if st, _ := store.Load(); len(st.Sources) != 0 {
		t.Errorf("stored sources = %v, want none (every flush failed)", st.Sources)
	}
}

func TestReconcilerDropsUnconfiguredSource(t *testing.T) {
	store := newMemStore()
	store.Write(Batch{Source: "marathon", Put: []App{webApp("/web", false, 31000)}})
	store.Write(Batch{Source: "removed", Put: []App{webApp("/old", false, 32000)}})
	store.stored(t)

	rt := newRecTest(t, store, nil)
	if got := summary(rt.r.Table()); !slices.Equal(got, []string{"web.marathon:80* 31000/1"}) {
		t.Errorf("table at start = %v, want only the configured source's apps", got)
	}
	if st := store.stored(t); len(st.Sources) != 1 || len(st.Sources["marathon"]) != 1 {
		t.Errorf("stored sources = %v, want the unconfigured source's removed", st.Sources)
	}
}

// TestReconcilerRecordsSyncAfterItsApps: a sync is recorded in the store
// (last_sync, which makes a restart count as loaded) only with or after
// its apps, never before them: a crash in between must not leave a store
// that claims a sync whose apps it lacks.
func TestReconcilerRecordsSyncAfterItsApps(t *testing.T) {
	rt := newRecTest(t, nil, nil, webApp("/web", false, 31000))
	ctx := context.Background()
	state, err := rt.src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rt.r.takeSnapshot(syncResult{source: "marathon", state: state, at: rt.clock.Now()})
	if st := rt.store.stored(t); !st.LastSync.IsZero() {
		t.Errorf("last_sync %v stored before the sync's apps (%d stored)", st.LastSync, len(st.Sources["marathon"]))
	}
	if err := rt.r.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	st := rt.store.stored(t)
	if !st.LastSync.Equal(storeT0) || len(st.Sources["marathon"]) != 1 {
		t.Errorf("after the build: last_sync %v, %d apps; want %v, 1", st.LastSync, len(st.Sources["marathon"]), storeT0)
	}
}

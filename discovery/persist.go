package discovery

// Persistence: what the reconciler loads from its Store at start, what it
// writes to it, and the one goroutine that commits the writes.

import (
	"context"
	"fmt"
	"time"
)

// Store keeps the model and the VIP address assignments across restarts;
// *store.DB (package discovery/store) is the bbolt one. The reconciler is
// its only writer: it loads it once in NewReconciler, queues every change
// with Write, and commits them with Flush, from one goroutine while Run
// runs and once more when Run ends.
type Store interface {
	// Load returns everything stored.
	Load() (Stored, error)
	// Write queues b without blocking on the disk. Later writes supersede
	// earlier ones of the same app or assignment.
	Write(b Batch)
	// Flush commits everything queued before the call. On error the
	// changes stay queued for the next Flush.
	Flush(ctx context.Context) error
}

// Stored is what Load returns: the persisted model and assignments.
type Stored struct {
	// Sources maps a source name to its apps, sorted by ID.
	Sources map[string][]App
	// Clusters maps a source name to its last cluster.
	Clusters map[string]*Cluster
	// Assignments are the persisted VIP address assignments.
	Assignments []Assignment
	// LastSync is the latest successful full sync of any source; zero if
	// none was ever stored.
	LastSync time.Time
	// Schema is the layout version of the file.
	Schema int
}

// Batch is one set of changes for Store.Write. Deletes apply before puts.
type Batch struct {
	// Source names the source whose apps Put, Delete and Replace concern.
	Source string
	// Put stores these apps (with their tasks), replacing stored ones of
	// the same ID.
	Put []App
	// Delete removes these app IDs.
	Delete []string
	// Replace makes Put the source's whole app set: apps not in Put are
	// removed. It supersedes every earlier queued change of the source.
	Replace bool
	// Assign stores these assignments.
	Assign []Assignment
	// Unassign removes the assignments with these keys.
	Unassign []string
	// LastSync, when not zero, records a successful full sync.
	LastSync time.Time
	// SetCluster stores Cluster (nil: deletes it) as Source's cluster.
	SetCluster bool
	Cluster    *Cluster
}

// load builds and publishes the Table of the stored state.
func (r *Reconciler) load(ac AllocConfig, names NamesConfig) error {
	var st Stored
	if r.store != nil {
		var err error
		if st, err = r.store.Load(); err != nil {
			return fmt.Errorf("new reconciler: %w", err)
		}
	}
	now := r.now()
	for name, apps := range st.Sources {
		if _, ok := r.byName[name]; !ok {
			// A source no longer configured would never be resynced:
			// serving its apps would keep dead backends forever.
			r.log.Info("dropping stored apps of a source no longer configured", "source", name, "apps", len(apps))
			r.store.Write(Batch{Source: name, Replace: true})
			r.pokeStore()
			continue
		}
		r.models[name] = newSourceModel(apps)
	}
	for name, cl := range st.Clusters {
		if m, ok := r.models[name]; ok {
			m.cluster, m.clusterChanged = cl, true
		} else if _, ok := r.byName[name]; ok {
			m := r.model(name)
			m.cluster, m.clusterChanged = cl, true
		}
	}
	r.storeSynced = !st.LastSync.IsZero()
	r.tables = newTableBuilder(ac, names, st.Assignments)
	apps := r.allApps()
	changes, clusters := r.takeChanges()
	t := r.tables.next(changes, clusters, nil, now, true).next
	t.Generation = 1
	t.Stale = r.staleNow()
	r.table.Store(t)
	r.recordTable(t)
	r.dataplaneBehind = true
	r.log.Info("loaded stored state", "apps", len(apps), "vips", t.VIPs.Len(), "names", t.Names(),
		"assignments", len(st.Assignments), "last_sync", st.LastSync)
	return nil
}

// persist queues the changed apps, the changed assignments (assigned) and
// the keys of the expired ones for the store.
func (r *Reconciler) persist(assigned []Assignment, expired []string) {
	if r.store == nil {
		for _, m := range r.models {
			clear(m.dirty)
		}
		return
	}
	wrote := false
	for name, m := range r.models {
		if len(m.dirty) > 0 || m.clusterDirty {
			r.store.Write(m.persist(name))
			wrote = true
		}
	}
	if len(assigned) > 0 || len(expired) > 0 {
		r.store.Write(Batch{Assign: assigned, Unassign: expired})
		wrote = true
	}
	if !r.syncedAt.IsZero() {
		// After the sync's apps: the store commits batches in order, and
		// a flush split over transactions writes last_sync in the last.
		r.store.Write(Batch{LastSync: r.syncedAt})
		r.syncedAt = time.Time{}
		wrote = true
	}
	if wrote {
		r.pokeStore()
	}
}

// pokeStore wakes writeStore; many pokes collapse into one Flush.
func (r *Reconciler) pokeStore() {
	select {
	case r.storeWake <- struct{}{}:
	default:
	}
}

// storeCloseWait bounds the flush at the end of Run.
const storeCloseWait = 5 * time.Second

// writeStore commits the store's queued writes whenever persist queued
// some, until ctx ends. A failed Flush (logged and counted by the store)
// is retried with capped, jittered backoff and never ends it. It is the
// only caller of Flush while Run runs.
func (r *Reconciler) writeStore(ctx context.Context) {
	retry := newRetryTimer()
	defer retry.stop()
	failures := 0
	for {
		wake := r.storeWake
		if retry.pending() {
			wake = nil // failing: wait for the backoff, not for every write
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-retry.C:
			retry.fired()
		}
		if err := r.store.Flush(ctx); err != nil {
			if ctx.Err() == nil {
				failures++
				retry.failed()
			}
			continue
		}
		if failures > 0 {
			r.log.Info("store writes recovered", "failed_attempts", failures)
		}
		failures = 0
		retry.succeeded()
	}
}

// flushStore is the one flush at the end of Run, after writeStore and the
// loop have stopped: it commits what they left queued, waiting at most
// storeCloseWait.
func (r *Reconciler) flushStore() {
	if r.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeCloseWait)
	defer cancel()
	if err := r.store.Flush(ctx); err != nil {
		r.log.Error("store writes lost at shutdown", "err", err)
	}
}

package discovery

// Status: how fresh the published state is, per source and overall.

import (
	"slices"
	"time"
)

// Status says how fresh the published state is.
type Status struct {
	// Loaded is true when the state came from disk (a sync had been stored)
	// or every source has synced once.
	Loaded bool
	// Synced is true once every source has synced at least once.
	Synced bool
	// Stale is true while some source has not synced since start or its
	// last sync failed; its last known state is served meanwhile.
	Stale        bool
	StaleSources []string
	// LastSync is the last successful sync per source.
	LastSync map[string]time.Time
	// LastError is the last sync error per source, cleared by a success.
	LastError map[string]string
	// Generation is the published Table's.
	Generation uint64
}

type sourceStatus struct {
	synced   bool // synced at least once
	failing  bool // last sync failed
	lastSync time.Time
	lastErr  string
}

// Status reports how fresh the published state is.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Synced: true, LastSync: map[string]time.Time{}, LastError: map[string]string{},
		Generation: r.table.Load().Generation}
	for name, s := range r.status {
		if !s.synced {
			st.Synced = false
		}
		if !s.synced || s.failing {
			st.StaleSources = append(st.StaleSources, name)
		}
		if !s.lastSync.IsZero() {
			st.LastSync[name] = s.lastSync
		}
		if s.lastErr != "" {
			st.LastError[name] = s.lastErr
		}
	}
	slices.Sort(st.StaleSources)
	st.Stale = len(st.StaleSources) > 0
	st.Loaded = r.storeSynced || st.Synced
	return st
}

func (r *Reconciler) staleNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.status {
		if !s.synced || s.failing {
			return true
		}
	}
	return false
}

package discovery

// Syncing sources: one goroutine per source fetches full snapshots (at
// start, every Interval, on request, retrying with backoff) and hands them
// to the loop, which takes them into the model (takeSnapshot).

import (
	"context"
	"time"
)

// sourceRun is one configured source and its resync requests.
type sourceRun struct {
	cfg  SourceConfig
	kick chan struct{} // cap 1: resync requested
}

// syncResult is one snapshot of a source, or its error.
type syncResult struct {
	source string
	state  State
	err    error
	at     time.Time
	// started is when the snapshot was asked for, by the reconciler's
	// clock.
	started time.Time
}

// syncLoop fetches snapshots of one source: at start (once the event stream
// asked for it, or after StreamWait), then every Interval or on request;
// failures retry with capped, jittered backoff (requests made meanwhile
// wait for it, so a failing upstream is not hammered).
func (r *Reconciler) syncLoop(ctx context.Context, s *sourceRun) {
	bo := retryBackoff{min: retryMin, max: retryMax}
	wait := r.streamWait
	failing := false
	for {
		kick := s.kick
		if failing {
			kick = nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-kick:
			t.Stop()
		}
		select { // this snapshot answers requests made until now
		case <-s.kick:
		default:
		}
		start, started := time.Now(), r.now()
		sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		st, err := s.cfg.Source.Snapshot(sctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.met.resyncSeconds.WithLabelValues(s.cfg.Name).Observe(time.Since(start).Seconds())
		select {
		case r.results <- syncResult{source: s.cfg.Name, state: st, err: err, at: r.now(), started: started}:
		case <-ctx.Done():
			return
		}
		failing = err != nil
		if failing {
			wait = bo.next()
		} else {
			bo.reset()
			wait = s.cfg.Interval
		}
	}
}

// takeSnapshot records a sync's outcome in the source's status and metrics
// and, when it succeeded, replaces the source's model with its snapshot.
func (r *Reconciler) takeSnapshot(res syncResult) {
	r.mu.Lock()
	s := r.status[res.source]
	wasStale := !s.synced || s.failing
	if res.err != nil {
		s.failing = true
		s.lastErr = res.err.Error()
	} else {
		s.synced, s.failing, s.lastErr, s.lastSync = true, false, "", res.at
	}
	r.mu.Unlock()

	if res.err != nil {
		r.met.resyncs.WithLabelValues(res.source, "error").Inc()
		r.met.stale.WithLabelValues(res.source).Set(1)
		r.log.Warn("resync failed, serving last known state", "source", res.source, "err", res.err)
		return
	}
	r.met.resyncs.WithLabelValues(res.source, "ok").Inc()
	r.met.stale.WithLabelValues(res.source).Set(0)
	if wasStale {
		r.log.Info("source synced", "source", res.source, "apps", len(res.state.Apps))
	}
	m := r.model(res.source)
	m.replace(res.state.Apps, res.at, r.grace, res.started)
	m.seq = res.state.Seq
	if res.state.Cluster != nil || m.cluster != nil {
		m.setCluster(res.state.Cluster)
	}
	// The sync is recorded once its apps are queued for the store (persist),
	// so that a crash in between never leaves a last_sync without them.
	if res.at.After(r.syncedAt) {
		r.syncedAt = res.at
	}
}

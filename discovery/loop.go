package discovery

// The reconciler's loop: the one goroutine that owns the model. It takes
// updates and snapshots into it, collapses pokes into builds, retries a
// failed dataplane apply with backoff, asks for the resyncs late events
// call for and calls the heartbeat (Config.Heartbeat) while it is free.

import (
	"context"
	"time"
)

// loop owns the model: it applies updates and snapshots and builds when
// dirty. While a failed dataplane apply waits for its retry, builds wait
// too (the model keeps changing; the retry builds from the latest).
func (r *Reconciler) loop(ctx context.Context) {
	retry := newRetryTimer()
	defer retry.stop()
	var late *time.Timer
	var lateC <-chan time.Time
	defer func() {
		if late != nil {
			late.Stop()
		}
	}()
	beat := r.newBeat()
	defer beat.Stop()
	r.beat()
	r.poke()
	for {
		dirty := r.dirty
		if retry.pending() {
			dirty = nil
		}
		select {
		case <-ctx.Done():
			return
		case u := <-r.updates:
			r.handleUpdate(u)
			r.drainUpdates()
			r.poke()
			if r.lateDue > 0 && lateC == nil {
				late = time.NewTimer(r.lateDue)
				lateC = late.C
			}
		case <-lateC:
			lateC = nil
			r.resyncLate()
		case res := <-r.results:
			r.takeSnapshot(res)
			r.poke()
		case <-retry.C:
			retry.fired()
			r.poke()
		case <-beat.C:
			r.beat()
		case <-dirty:
			if err := r.reconcile(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				retry.failed()
				continue
			}
			retry.succeeded()
		}
	}
}

// newBeat returns the ticker of the heartbeat; stopped, never firing,
// without one.
func (r *Reconciler) newBeat() *time.Ticker {
	t := time.NewTicker(r.beatEvery)
	if r.heartbeat == nil {
		t.Stop()
	}
	return t
}

// beat calls the heartbeat, if any. It runs on the loop only: a loop stuck
// in a build or an apply stops it.
func (r *Reconciler) beat() {
	if r.heartbeat != nil {
		r.heartbeat()
	}
}

// drainUpdates applies the updates already queued, up to updateDrainMax,
// so that one build covers them.
func (r *Reconciler) drainUpdates() {
	for range updateDrainMax {
		select {
		case u := <-r.updates:
			r.handleUpdate(u)
		default:
			return
		}
	}
}

func (r *Reconciler) poke() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *Reconciler) model(source string) *sourceModel {
	m := r.models[source]
	if m == nil {
		m = newSourceModel(nil)
		r.models[source] = m
	}
	return m
}

// handleUpdate changes the model of the update's source by one update and
// asks for a resync when the update refers to what the model lacks or
// arrived late. Updates of unknown sources are ignored, and so are those a
// snapshot of an ordered source already holds (State.Seq).
func (r *Reconciler) handleUpdate(u Update) {
	r.met.events.WithLabelValues(updateKindName(u.Kind)).Inc()
	source := updateSource(u)
	if _, ok := r.byName[source]; !ok {
		return
	}
	if !u.Received.IsZero() && len(r.received) < maxLatencySamples {
		r.received = append(r.received, u.Received)
	}
	m := r.model(source)
	if u.Seq != 0 && u.Seq <= m.seq {
		return
	}
	late := m.late
	if m.update(u, r.now()) {
		r.log.Debug("update for unknown app or task, resyncing", "source", source, "kind", updateKindName(u.Kind),
			"app_id", updateAppID(u), "task_id", u.TaskID+u.Task.ID)
		r.Resync(source)
	}
	if m.late > late && source == marathonSource {
		r.lateEvent(u)
	}
}

// lateResyncEvery bounds the resyncs that late events trigger.
const lateResyncEvery = 5 * time.Second

// lateEvent asks for a resync of "marathon" after an update found late.
// Events arrive out of order (Marathon does not order them), so the model
// may also hold one whose age could not be told: a resync converges to the
// truth. At most one runs per lateResyncEvery; a late update inside that
// window defers its resync to the window's end (lateDue, which the loop
// waits for) rather than dropping it, so that the last of a burst of late
// events is never left for the periodic resync.
func (r *Reconciler) lateEvent(u Update) {
	now := r.now()
	if wait := lateResyncEvery - now.Sub(r.lateResyncAt); wait > 0 && !now.Before(r.lateResyncAt) {
		if r.lateDue == 0 {
			r.lateDue = wait
			r.log.Debug("late event ignored, resync deferred", "kind", updateKindName(u.Kind), "app_id", updateAppID(u), "wait", wait)
		}
		return
	}
	r.log.Debug("late event ignored, resyncing", "kind", updateKindName(u.Kind), "app_id", updateAppID(u))
	r.resyncLate()
}

// resyncLate asks for the resync late events wait for.
func (r *Reconciler) resyncLate() {
	r.lateResyncAt = r.now()
	r.lateDue = 0
	r.Resync(marathonSource)
}

// takeChanges returns the apps changed since the last call (nil for an app
// gone) and the clusters of the sources whose cluster changed, and forgets
// them.
func (r *Reconciler) takeChanges() (map[appRef]*App, map[string]*Cluster) {
	var clusters map[string]*Cluster
	for name, m := range r.models {
		if m.clusterChanged {
			if clusters == nil {
				clusters = map[string]*Cluster{}
			}
			clusters[name] = m.cluster
			m.clusterChanged = false
		}
	}
	n := 0
	for _, m := range r.models {
		n += len(m.changed)
	}
	changes := make(map[appRef]*App, n)
	for name, m := range r.models {
		for id := range m.changed {
			if a, ok := m.apps[id]; ok {
				changes[appRef{name, id}] = &a
			} else {
				changes[appRef{name, id}] = nil
			}
		}
		clear(m.changed)
	}
	return changes, clusters
}

func (r *Reconciler) allApps() []App {
	n := 0
	for _, m := range r.models {
		n += len(m.apps)
	}
	apps := make([]App, 0, n)
	for _, m := range r.models {
		apps = m.appendApps(apps)
	}
	return apps
}

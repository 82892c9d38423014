package discovery

// Publishing: the order of effects of a build (withdraw, dataplane,
// publish), the subscribers, and the published Table's metrics and logs.

import (
	"context"
	"fmt"
	"time"
)

// reconcile builds a Table from the model and, if it differs from the
// published one, makes it take effect in this order (DESIGN.md "Order of
// effects"): (1) publish the current Table with the names that go away
// withdrawn, (2) Dataplane.Apply(new), (3) publish the new Table. When Apply
// fails, the Table of step 1 stays published (new names unannounced, removed
// ones withdrawn) and the caller retries with backoff. Publishing only the
// VIPs the dataplane did program would need per-VIP results from Apply.
func (r *Reconciler) reconcile(ctx context.Context) error {
	prev := r.table.Load()
	changes, clusters := r.takeChanges()
	step := r.tables.next(changes, clusters, prev, r.now(), r.dataplaneBehind)
	if step.more {
		r.poke() // the task zones of this change, in the next round
	}
	r.persist(step.assigned, step.expired)
	stale := r.staleNow()
	if step.next == nil {
		if prev.Stale != stale {
			t := *prev
			t.Stale = stale
			r.publish(&t)
		}
		r.observeLatency()
		return nil
	}
	if w := step.withdrawn; w != nil {
		w.Stale = stale
		r.publish(w)
	}
	next := step.next
	next.Generation = r.table.Load().Generation + 1
	next.Stale = stale
	next.Received = r.earliestReceived()
	if r.dp != nil {
		if err := r.dp.Apply(ctx, next); err != nil {
			r.dataplaneBehind = true
			if ctx.Err() == nil {
				r.met.applyErrors.Inc()
				r.log.Warn("dataplane apply failed, keeping previous table", "generation", next.Generation, "err", err)
			}
			return fmt.Errorf("apply table %d: %w", next.Generation, err)
		}
	}
	r.dataplaneBehind = false
	r.logLabelErrors(prev, next)
	r.publish(next)
	r.observeLatency()
	return nil
}

// earliestReceived is the arrival time of the oldest event the next table
// reflects, zero if it reflects none (a snapshot only).
func (r *Reconciler) earliestReceived() time.Time {
	var first time.Time
	for _, t := range r.received {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// publish makes t the Table readers see, numbering it after the current one.
func (r *Reconciler) publish(t *Table) {
	t.Generation = r.table.Load().Generation + 1
	r.table.Store(t)
	r.recordTable(t)
	r.log.Debug("published table", "generation", t.Generation, "vips", t.VIPs.Len(), "names", t.Names(), "stale", t.Stale)
	r.mu.Lock()
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

func (r *Reconciler) recordTable(t *Table) {
	backends := t.VIPs.Backends()
	r.met.records.WithLabelValues("names").Set(float64(t.Names()))
	r.met.records.WithLabelValues("vips").Set(float64(t.VIPs.Len()))
	r.met.records.WithLabelValues("backends").Set(float64(backends))
	r.met.records.WithLabelValues("task_names").Set(float64(t.RecordNames()))
	r.met.records.WithLabelValues("task_records_skipped").Set(float64(t.SkippedRecords))
	r.met.labelErrors.Set(float64(len(t.Errors)))
	r.met.generation.Set(float64(t.Generation))
}

func (r *Reconciler) observeLatency() {
	now := time.Now()
	for _, rcv := range r.received {
		r.met.eventToDNS.Observe(now.Sub(rcv).Seconds())
	}
	r.received = r.received[:0]
}

// logLabelErrors logs label errors that next has and prev had not, so each
// is logged once rather than at every build.
func (r *Reconciler) logLabelErrors(prev, next *Table) {
	old := make(map[LabelError]struct{}, len(prev.Errors))
	for _, e := range prev.Errors {
		old[e] = struct{}{}
	}
	for _, e := range next.Errors {
		if _, ok := old[e]; !ok {
			r.log.Warn("unusable vip label", "app_id", e.AppID, "key", e.Key, "value", e.Value, "reason", e.Reason)
		}
	}
}

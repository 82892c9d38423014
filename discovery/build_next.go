package discovery

// The reconciler's one way into table building: tableBuilder.next takes
// the apps that changed and the published Table and says what to publish.
// Which build runs (incremental, full after expiry), how names are
// announced and withdrawn, and whether anything changed are decided here;
// the order of effects is the reconciler's (publish.go).

import (
	"slices"
	"time"
)

// tableBuilder builds the reconciler's Tables: it owns the incremental
// builder and the VIP address allocator. It is not safe for concurrent
// use; the reconciler's loop owns it.
type tableBuilder struct {
	inc  *incBuilder
	recs *recordsBuilder
	// pendingApps and pendingClusters are what the first Table was built
	// of, for the task zones the next build makes (see next).
	pendingApps     map[appRef]*App
	pendingClusters map[string]*Cluster
	alloc           *Allocator
	lastExpire      time.Time // Expire runs at most every touchEvery
}

// tableStep is what one build asks the reconciler to do.
type tableStep struct {
	// withdrawn, if not nil, is the published Table without the names that
	// go away or change address: published before the dataplane gets next.
	withdrawn *Table
	// next is the new Table, its names announced; nil when its VIPs and
	// errors are the published Table's and no rebuild was forced.
	next *Table
	// more asks for another build soon: the task zones of this one's
	// changes were left for it (see next).
	more bool
	// assigned and expired are the assignments changed (Allocator.Dirty)
	// and expired (their keys) by this build, for the store.
	assigned []Assignment
	expired  []string
}

func newTableBuilder(ac AllocConfig, nc NamesConfig, assignments []Assignment) *tableBuilder {
	return &tableBuilder{inc: newIncBuilder(), recs: newRecordsBuilder(nc), alloc: NewAllocator(ac, assignments)}
}

// next applies changes (an app, or nil for an app gone) and the clusters
// of the sources that sent one, and returns what to publish after prev. force builds next even when nothing changed (the
// dataplane is behind the published Table).
//
// A nil prev asks for the first Table, from the stored state: nothing
// expires (the stored names are touched first, by this build) and the
// assignments stay dirty for the next build; next is always set.
//
// The build is incremental (incBuilder): when prev's VIPs are the builder's
// previous result, only the names of the VIPs that changed are
// re-announced or withdrawn, and next shares every chunk of VIPs and every
// shard of the names index the change did not touch (VIPList, cowmap), so
// the cost of an update does not grow with the number of VIPs.
//
// The task zones of a big change (the first Table, a first sync: more
// than deferRecordsAbove apps) are left for the next call (step.more), so
// that the VIPs are served at once (the task zones of 100,000 tasks take
// seconds to build) and the task names within one more round; small
// changes build both at once.
func (b *tableBuilder) next(changes map[appRef]*App, clusters map[string]*Cluster, prev *Table, now time.Time, force bool) tableStep {
	recApps, recClusters := changes, clusters
	if b.pendingApps != nil || b.pendingClusters != nil {
		recApps, recClusters = laterOver(b.pendingApps, changes), laterOver(b.pendingClusters, clusters)
		b.pendingApps, b.pendingClusters = nil, nil
	}
	deferRecs := prev == nil || len(changes) > deferRecordsAbove
	if deferRecs {
		b.pendingApps, b.pendingClusters = recApps, recClusters
	}
	if prev == nil {
		t := b.inc.build(changes, b.alloc, now, false).table
		return tableStep{next: t.WithAnnounced(announcer(nil)), more: true}
	}
	recsChanged := false
	if !deferRecs {
		recsChanged = b.recs.build(recApps, recClusters)
	}
	var step tableStep
	if now.Sub(b.lastExpire) >= touchEvery || now.Before(b.lastExpire) {
		step.expired = b.alloc.Expire(now)
		b.lastExpire = now
	}
	res := b.inc.build(changes, b.alloc, now, len(step.expired) > 0)
	step.assigned = b.alloc.Dirty()
	next := res.table
	var changed map[string]struct{} // nil: index every name
	var same bool
	if prev.VIPs.same(res.base) {
		changed = res.changed
		same = res.same && slices.Equal(prev.Errors, next.Errors)
	} else {
		same = sameTable(prev, next)
	}
	step.more = deferRecs
	if same && !force {
		if recsChanged {
			t := *prev
			t.Built = now
			step.next = b.withRecords(&t)
		}
		return step
	}
	if changed != nil {
		next = next.reindexed(prev, changed, announcer(prev))
	} else {
		next = next.WithAnnounced(announcer(prev))
	}
	step.next = b.withRecords(next)
	if w, ok := withdrawn(prev, next, changed); ok {
		step.withdrawn = w
	}
	return step
}

// withRecords sets t's task zones to the records builder's index.
func (b *tableBuilder) withRecords(t *Table) *Table {
	t.records, t.nonTerminals, t.tasks = b.recs.records, b.recs.nonTerminals, b.recs.tasks()
	t.SkippedRecords = b.recs.skipped
	return t
}

// deferRecordsAbove is the size of a change (in apps) whose task zones are
// left for the next build.
const deferRecordsAbove = 1000

// laterOver returns later laid over earlier (either may be nil), in a new
// map when both have entries.
func laterOver[K comparable, V any](earlier, later map[K]V) map[K]V {
	if len(earlier) == 0 {
		return later
	}
	if len(later) == 0 {
		return earlier
	}
	out := make(map[K]V, len(earlier)+len(later))
	for k, v := range earlier {
		out[k] = v
	}
	for k, v := range later {
		out[k] = v
	}
	return out
}

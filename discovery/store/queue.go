package store

// The write queue: changes coalesced in memory until the next Flush.

import (
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// queue holds coalesced pending changes: one entry per app and per
// assignment key, a nil entry meaning delete.
type queue struct {
	sources  map[string]*queuedSource
	assign   map[string]*discovery.Assignment
	clusters map[string]*discovery.Cluster // nil value: delete
	lastSync time.Time
}

type queuedSource struct {
	replace bool                      // apps is the source's whole set
	apps    map[string]*discovery.App // nil value: delete (skipped when replace)
}

func newQueue() *queue {
	return &queue{sources: map[string]*queuedSource{}, assign: map[string]*discovery.Assignment{},
		clusters: map[string]*discovery.Cluster{}}
}

func (q *queue) empty() bool {
	return len(q.sources) == 0 && len(q.assign) == 0 && len(q.clusters) == 0 && q.lastSync.IsZero()
}

func (q *queue) size() int {
	n := len(q.assign) + len(q.clusters)
	for _, src := range q.sources {
		n += len(src.apps)
	}
	return n
}

// add merges b into q and returns how many changes it had to drop.
func (q *queue) add(b discovery.Batch) (dropped int) {
	if b.Replace || len(b.Put) > 0 || len(b.Delete) > 0 {
		if b.Source == "" {
			dropped += len(b.Put) + len(b.Delete) + 1
		} else {
			src := q.sources[b.Source]
			if src == nil || b.Replace {
				src = &queuedSource{replace: b.Replace, apps: map[string]*discovery.App{}}
				q.sources[b.Source] = src
			}
			for _, id := range b.Delete {
				if id == "" {
					dropped++
					continue
				}
				src.apps[id] = nil
			}
			for i := range b.Put {
				if b.Put[i].ID == "" {
					dropped++
					continue
				}
				a := b.Put[i]
				src.apps[a.ID] = &a
			}
		}
	}
	if b.SetCluster {
		if b.Source == "" {
			dropped++
		} else {
			q.clusters[b.Source] = b.Cluster
		}
	}
	for i := range b.Assign {
		a := b.Assign[i]
		q.assign[assignmentKey(a)] = &a
	}
	for _, k := range b.Unassign {
		q.assign[k] = nil
	}
	if b.LastSync.After(q.lastSync) {
		q.lastSync = b.LastSync
	}
	return dropped
}

// merge lays newer (queued later) over q.
func (q *queue) merge(newer *queue) {
	for name, ns := range newer.sources {
		old := q.sources[name]
		if old == nil || ns.replace {
			q.sources[name] = ns
			continue
		}
		for id, a := range ns.apps {
			old.apps[id] = a
		}
	}
	for k, a := range newer.assign {
		q.assign[k] = a
	}
	for name, cl := range newer.clusters {
		q.clusters[name] = cl
	}
	if newer.lastSync.After(q.lastSync) {
		q.lastSync = newer.lastSync
	}
}

// assignmentKey is an assignment's key: its name plus "/4" or "/6", as
// discovery.Allocator.Expire reports them.
func assignmentKey(a discovery.Assignment) string {
	if a.Addr.Is4() {
		return a.Name + "/4"
	}
	return a.Name + "/6"
}

package discovery

// The task zones' incremental index (recordsBuilder): given the apps and
// clusters that changed, it recomputes only the names they give (or gave)
// records, and its result equals Table.WithRecords over the same records.

import (
	"reflect"
	"slices"
	"strings"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// recordsBuilder keeps the records every app and every source's cluster
// give the task zones and the Table's index of them. Names are shared (a
// task name is the name of every task of an app, frameworks hold several
// tasks of one name), so each name lists its owners and its records are
// their union. It is not safe for concurrent use; the tableBuilder owns it.
type recordsBuilder struct {
	cfg NamesConfig
	// apps are the apps the records were made of (FromMesos apps are
	// remade when their source's agents change); recs what they gave.
	apps map[appRef]*App
	recs map[appRef][]*TaskRecords
	// clusters and clusterRecs are each source's cluster and its records.
	clusters    map[string]*Cluster
	clusterRecs map[string][]ZoneRecord
	agents      map[string]map[string]struct{} // source → known agent IDs
	owners      map[RecordName][]owner         // who gives a name records

	// below counts, per key of a name that has records or not, the names
	// with records strictly below it; the empty non-terminals are those
	// counted that have no records themselves (nonTerminals holds them).
	below map[RecordName]int

	skipped      int // the sum of every TaskRecords' Skipped
	records      cowmap.Map[*Records]
	nonTerminals cowmap.Map[struct{}]
	tasks        cowmap.Map[[]*TaskRecords]
}

// owner is an app (cluster false) or a source's cluster (ref.id empty).
type owner struct {
	ref     appRef
	cluster bool
}

func newRecordsBuilder(cfg NamesConfig) *recordsBuilder {
	return &recordsBuilder{cfg: cfg, apps: map[appRef]*App{}, recs: map[appRef][]*TaskRecords{},
		clusters: map[string]*Cluster{}, clusterRecs: map[string][]ZoneRecord{},
		agents: map[string]map[string]struct{}{}, owners: map[RecordName][]owner{}, below: map[RecordName]int{}}
}

// taskKey is an app's key in the Table's tasks map.
func taskKey(ref appRef) string { return ref.source + "\x00" + ref.id }

// build takes the changed apps (nil: gone) and the clusters of the sources
// that sent one (nil: none known), and reports whether the index changed.
func (b *recordsBuilder) build(changes map[appRef]*App, clusters map[string]*Cluster) bool {
	dirty := map[RecordName]struct{}{}
	tasks := b.tasks.EditSized(len(changes))
	tasksChanged := false
	remake := func(ref appRef, app *App) {
		old := b.recs[ref]
		var recs []*TaskRecords
		for _, tr := range old {
			b.skipped -= tr.Skipped
		}
		if app != nil {
			recs = b.cfg.AppRecords(app, b.known(ref.source))
			for _, tr := range recs {
				b.skipped += tr.Skipped
			}
			b.apps[ref] = app
		} else {
			delete(b.apps, ref)
		}
		if len(old) == 0 && len(recs) == 0 {
			return
		}
		if sameTaskRecords(old, recs) {
			if len(recs) > 0 {
				b.recs[ref] = recs
			}
			return
		}
		b.change(owner{ref: ref}, old, recs, dirty)
		if len(recs) > 0 {
			b.recs[ref] = recs
			tasks.Set(taskKey(ref), recs)
		} else {
			delete(b.recs, ref)
			tasks.Delete(taskKey(ref))
		}
		tasksChanged = true
	}
	for source, cl := range clusters {
		if reflect.DeepEqual(b.clusters[source], cl) {
			continue
		}
		o := owner{ref: appRef{source: source}, cluster: true}
		b.disown(b.clusterRecs[source], o, dirty)
		var recs []ZoneRecord
		if cl != nil {
			recs = b.cfg.ClusterRecords(cl)
			b.clusters[source] = cl
		} else {
			delete(b.clusters, source)
		}
		b.clusterRecs[source] = recs
		b.own(recs, o, dirty)
		if b.setAgents(source, cl) {
			for ref, app := range b.apps {
				if ref.source == source && app.FromMesos {
					if _, ok := changes[ref]; !ok {
						remake(ref, app)
					}
				}
			}
		}
	}
	for ref, app := range changes {
		remake(ref, app)
	}
	if tasksChanged {
		b.tasks = tasks.Map()
	}
	if len(dirty) == 0 {
		return tasksChanged
	}
	e := b.records.EditSized(len(dirty))
	ents := b.nonTerminals.Edit()
	changed := tasksChanged
	for n := range dirty {
		r := b.merge(n)
		k := recordKey(n.Zone, n.Name)
		old, had := e.Get(k)
		switch {
		case r == nil && had:
			e.Delete(k)
			b.countBelow(n, -1, e, ents)
			if b.below[n] > 0 {
				ents.Set(k, struct{}{})
			}
			changed = true
		case r != nil && (!had || !equalRecords(old, r)):
			e.Set(k, r)
			if !had {
				b.countBelow(n, 1, e, ents)
				ents.Delete(k)
			}
			changed = true
		}
	}
	b.records = e.Map()
	b.nonTerminals = ents.Map()
	return changed
}

// countBelow adds d to the count of every ancestor of n below its zone's
// apex, keeping ents (the ancestors with names below them and no records
// of their own) in step.
func (b *recordsBuilder) countBelow(n RecordName, d int, recs *cowmap.Editor[*Records], ents *cowmap.Editor[struct{}]) {
	for name := n.Name; ; {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return
		}
		name = name[i+1:]
		p := RecordName{Zone: n.Zone, Name: name}
		pk := recordKey(p.Zone, p.Name)
		c := b.below[p] + d
		if c <= 0 {
			delete(b.below, p)
			ents.Delete(pk)
			continue
		}
		b.below[p] = c
		if _, has := recs.Get(pk); !has {
			ents.Set(pk, struct{}{})
		}
	}
}

// known returns the agent check for apps of source: nil (every agent)
// while the source has no cluster.
func (b *recordsBuilder) known(source string) func(string) bool {
	agents, ok := b.agents[source]
	if !ok {
		return nil
	}
	return func(id string) bool {
		_, ok := agents[id]
		return ok
	}
}

// setAgents records the agents of source's cluster and reports whether the
// set changed.
func (b *recordsBuilder) setAgents(source string, cl *Cluster) bool {
	old, had := b.agents[source]
	if cl == nil {
		delete(b.agents, source)
		return had
	}
	next := make(map[string]struct{}, len(cl.Agents))
	for _, a := range cl.Agents {
		next[a.ID] = struct{}{}
	}
	b.agents[source] = next
	return !had || !sameSet(old, next)
}

func sameSet(a, b map[string]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// change moves o's records from old to recs: the names of the records that
// differ are marked dirty, and o owns the names of recs only. A task's
// state flip in a big app changes a few names, not every name of the app.
func (b *recordsBuilder) change(o owner, old, recs []*TaskRecords, dirty map[RecordName]struct{}) {
	if len(old) == 0 || len(recs) == 0 { // all of one side: no diff needed
		trs, add := recs, true
		if len(recs) == 0 {
			trs, add = old, false
		}
		for _, tr := range trs {
			if add {
				b.own(tr.Records, o, dirty)
			} else {
				b.disown(tr.Records, o, dirty)
			}
		}
		return
	}
	diff := map[ZoneRecord]int{}
	before, after := map[RecordName]bool{}, map[RecordName]bool{}
	for _, tr := range old {
		for _, zr := range tr.Records {
			diff[zr]--
			before[RecordName{zr.Zone, zr.Name}] = true
		}
	}
	for _, tr := range recs {
		for _, zr := range tr.Records {
			diff[zr]++
			after[RecordName{zr.Zone, zr.Name}] = true
		}
	}
	for zr, c := range diff {
		if c != 0 {
			dirty[RecordName{zr.Zone, zr.Name}] = struct{}{}
		}
	}
	for n := range before {
		if !after[n] {
			b.removeOwner(n, o)
		}
	}
	for n := range after {
		if !before[n] {
			b.addOwner(n, o)
		}
	}
}

func (b *recordsBuilder) addOwner(n RecordName, o owner) {
	if os := b.owners[n]; !slices.Contains(os, o) {
		b.owners[n] = append(os, o)
	}
}

func (b *recordsBuilder) removeOwner(n RecordName, o owner) {
	os := b.owners[n]
	if j := slices.Index(os, o); j >= 0 {
		os = slices.Delete(os, j, j+1)
		if len(os) == 0 {
			delete(b.owners, n)
		} else {
			b.owners[n] = os
		}
	}
}

// own adds o to the owners of recs' names and marks them dirty.
func (b *recordsBuilder) own(recs []ZoneRecord, o owner, dirty map[RecordName]struct{}) {
	for i := range recs {
		n := RecordName{recs[i].Zone, recs[i].Name}
		dirty[n] = struct{}{}
		b.addOwner(n, o)
	}
}

// disown removes o from the owners of recs' names and marks them dirty.
func (b *recordsBuilder) disown(recs []ZoneRecord, o owner, dirty map[RecordName]struct{}) {
	for i := range recs {
		n := RecordName{recs[i].Zone, recs[i].Name}
		dirty[n] = struct{}{}
		b.removeOwner(n, o)
	}
}

// merge returns the union of the records n's owners give it, or nil.
func (b *recordsBuilder) merge(n RecordName) *Records {
	os := b.owners[n]
	if len(os) == 0 {
		return nil
	}
	r := &Records{}
	add := func(recs []ZoneRecord) {
		for i := range recs {
			if zr := &recs[i]; zr.Zone == n.Zone && zr.Name == n.Name {
				r.add(*zr)
			}
		}
	}
	for _, o := range os {
		if o.cluster {
			add(b.clusterRecs[o.ref.source])
			continue
		}
		for _, tr := range b.recs[o.ref] {
			add(tr.Records)
		}
	}
	r.normalise()
	return r
}

// sameTaskRecords reports whether a and b hold the same records.
func sameTaskRecords(a, b []*TaskRecords) bool {
	return slices.EqualFunc(a, b, func(x, y *TaskRecords) bool {
		return x.Framework == y.Framework && x.Name == y.Name && x.ID == y.ID && slices.Equal(x.Records, y.Records)
	})
}

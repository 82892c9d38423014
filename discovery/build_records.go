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
	owners      map[string][]owner             // recordKey → who gives it records

	// below counts, per key of a name that has records or not, the names
	// with records strictly below it; the empty non-terminals are those
	// counted that have no records themselves (nonTerminals holds them).
	below map[string]int

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
		agents: map[string]map[string]struct{}{}, owners: map[string][]owner{}, below: map[string]int{}}
}

// taskKey is an app's key in the Table's tasks map.
func taskKey(ref appRef) string { return ref.source + "\x00" + ref.id }

// build takes the changed apps (nil: gone) and the clusters of the sources
// that sent one (nil: none known), and reports whether the index changed.
func (b *recordsBuilder) build(changes map[appRef]*App, clusters map[string]*Cluster) bool {
	dirty := map[string]struct{}{}
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
	for k := range dirty {
		r := b.merge(k)
		old, had := e.Get(k)
		switch {
		case r == nil && had:
			e.Delete(k)
			b.countBelow(k, -1, e, ents)
			if b.below[k] > 0 {
				ents.Set(k, struct{}{})
			}
			changed = true
		case r != nil && (!had || !equalRecords(old, r)):
			e.Set(k, r)
			if !had {
				b.countBelow(k, 1, e, ents)
				ents.Delete(k)
			}
			changed = true
		}
	}
	b.records = e.Map()
	b.nonTerminals = ents.Map()
	return changed
}

// countBelow adds d to the count of every ancestor of key k below its
// zone's apex, keeping ents (the ancestors with names below them and no
// records of their own) in step.
func (b *recordsBuilder) countBelow(k string, d int, recs *cowmap.Editor[*Records], ents *cowmap.Editor[struct{}]) {
	zone := k[:1]
	for name := k[1:]; ; {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return
		}
		name = name[i+1:]
		pk := zone + name
		n := b.below[pk] + d
		if n <= 0 {
			delete(b.below, pk)
			ents.Delete(pk)
			continue
		}
		b.below[pk] = n
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
func (b *recordsBuilder) change(o owner, old, recs []*TaskRecords, dirty map[string]struct{}) {
	count := func(trs []*TaskRecords, d int, m map[ZoneRecord]int) {
		for _, tr := range trs {
			for _, zr := range tr.Records {
				m[zr] += d
			}
		}
	}
	diff := map[ZoneRecord]int{}
	count(old, -1, diff)
	count(recs, 1, diff)
	owned := map[string]int{} // recordKey → +1 owned now only, -1 before only, 0 both
	for zr, n := range diff {
		k := recordKey(zr.Zone, zr.Name)
		if n != 0 {
			dirty[k] = struct{}{}
		}
		if _, ok := owned[k]; !ok {
			owned[k] = 0
		}
	}
	if len(dirty) == 0 {
		return
	}
	had := func(trs []*TaskRecords) map[string]bool {
		m := map[string]bool{}
		for _, tr := range trs {
			for _, zr := range tr.Records {
				m[recordKey(zr.Zone, zr.Name)] = true
			}
		}
		return m
	}
	before, after := had(old), had(recs)
	for k := range owned {
		switch {
		case before[k] && !after[k]:
			b.removeOwner(k, o)
		case after[k] && !before[k]:
			b.addOwner(k, o)
		}
	}
}

func (b *recordsBuilder) addOwner(k string, o owner) {
	if os := b.owners[k]; !slices.Contains(os, o) {
		b.owners[k] = append(os, o)
	}
}

func (b *recordsBuilder) removeOwner(k string, o owner) {
	os := b.owners[k]
	if j := slices.Index(os, o); j >= 0 {
		os = slices.Delete(os, j, j+1)
		if len(os) == 0 {
			delete(b.owners, k)
		} else {
			b.owners[k] = os
		}
	}
}

// own adds o to the owners of recs' names and marks them dirty.
func (b *recordsBuilder) own(recs []ZoneRecord, o owner, dirty map[string]struct{}) {
	for i := range recs {
		k := recordKey(recs[i].Zone, recs[i].Name)
		dirty[k] = struct{}{}
		os := b.owners[k]
		if !slices.Contains(os, o) {
			b.owners[k] = append(os, o)
		}
	}
}

// disown removes o from the owners of recs' names and marks them dirty.
func (b *recordsBuilder) disown(recs []ZoneRecord, o owner, dirty map[string]struct{}) {
	for i := range recs {
		k := recordKey(recs[i].Zone, recs[i].Name)
		dirty[k] = struct{}{}
		os := b.owners[k]
		if j := slices.Index(os, o); j >= 0 {
			os = slices.Delete(os, j, j+1)
			if len(os) == 0 {
				delete(b.owners, k)
			} else {
				b.owners[k] = os
			}
		}
	}
}

// merge returns the union of the records k's owners give it, or nil.
func (b *recordsBuilder) merge(k string) *Records {
	os := b.owners[k]
	if len(os) == 0 {
		return nil
	}
	r := &Records{}
	z, name := RecordZone(k[0]-'0'), k[1:]
	add := func(recs []ZoneRecord) {
		for i := range recs {
			if zr := &recs[i]; zr.Zone == z && zr.Name == name {
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

package discovery

// The task zones' incremental index (recordsBuilder): given the apps and
// clusters that changed, it recomputes only the names they give (or gave)
// records, and its result equals Table.WithRecords over the same records.

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// recordsBuilder keeps the apps and every source's cluster the task zones'
// records are made of, and the Table's index of those records. Names are
// shared (a task name is the name of every task of an app, frameworks hold
// several tasks of one name), so each name lists its owners and its records
// are their union. An app's records are not kept (at 100,000 tasks they
// would be the biggest part of the index): they are made again from the
// app when needed, the old app's before it is replaced (the diff) and each
// owner's once per build (the merge of a name). It is not safe for
// concurrent use; the tableBuilder owns it.
type recordsBuilder struct {
	cfg NamesConfig
	// apps are the apps the records are made of, by taskKey; the Table
	// enumerates their tasks from them (taskIndex).
	apps cowmap.Map[*App]
	// clusters and clusterRecs are each source's cluster and its records.
	clusters    map[string]*Cluster
	clusterRecs map[string][]ZoneRecord
	// agents are each source's known agent IDs; the map is replaced, never
	// changed, when a source's agents change (Tables share it).
	agents map[string]map[string]struct{}
	// owners is who gives a name records: most names have one owner (the
	// app of the task the name is of), kept in owners; the owners of a
	// name shared by several are in shared instead.
	owners map[RecordName]*ownerRef
	shared map[RecordName][]*ownerRef
	// interned holds the one ownerRef of each owner of a name.
	interned map[owner]*ownerRef

	// below counts, per key of a name that has records or not, the names
	// with records strictly below it; the empty non-terminals are those
	// counted that have no records themselves (nonTerminals holds them).
	below map[RecordName]int

	skipped      int // the sum of every TaskRecords' Skipped
	records      cowmap.Map[*Records]
	nonTerminals cowmap.Map[struct{}]
}

// owner is an app (cluster false) or a source's cluster (ref.id empty).
type owner struct {
	ref     appRef
	cluster bool
}

// ownerRef is the owner the names of an owner point at, shared by them (a
// pointer per name, not an owner), with the count of those names.
type ownerRef struct {
	owner
	names int
}

func newRecordsBuilder(cfg NamesConfig) *recordsBuilder {
	return &recordsBuilder{cfg: cfg, clusters: map[string]*Cluster{}, clusterRecs: map[string][]ZoneRecord{},
		agents: map[string]map[string]struct{}{}, owners: map[RecordName]*ownerRef{},
		shared: map[RecordName][]*ownerRef{}, interned: map[owner]*ownerRef{}, below: map[RecordName]int{}}
}

// taskKey is an app's key in the apps map.
func taskKey(ref appRef) string { return ref.source + "\x00" + ref.id }

// taskRef is the app of a taskKey.
func taskRef(k string) appRef {
	source, id, _ := strings.Cut(k, "\x00")
	return appRef{source: source, id: id}
}

// tasks is the enumeration of the builder's apps' tasks, for a Table.
func (b *recordsBuilder) tasks() taskIndex {
	return taskIndex{cfg: b.cfg, apps: b.apps, agents: b.agents}
}

// build takes the changed apps (nil: gone) and the clusters of the sources
// that sent one (nil: none known), and reports whether the index changed.
func (b *recordsBuilder) build(changes map[appRef]*App, clusters map[string]*Cluster) bool {
	dirty := map[RecordName]struct{}{}
	apps := b.apps.EditSized(len(changes))
	// made are the records of the apps remade by this build, for merge.
	made := map[appRef][]*TaskRecords{}
	// The apps' records were made with the agents known before this build.
	wasKnown := b.agents
	changed := false
	remake := func(ref appRef, app *App) {
		k := taskKey(ref)
		var old, recs []*TaskRecords
		if prev, ok := apps.Get(k); ok {
			old = b.cfg.AppRecords(prev, knownAgents(wasKnown, ref.source))
		}
		for _, tr := range old {
			b.skipped -= tr.Skipped
		}
		if app != nil {
			recs = b.cfg.AppRecords(app, knownAgents(b.agents, ref.source))
			for _, tr := range recs {
				b.skipped += tr.Skipped
			}
			apps.Set(k, app)
		} else {
			apps.Delete(k)
		}
		made[ref] = recs
		if len(old) == 0 && len(recs) == 0 || sameTaskRecords(old, recs) {
			return
		}
		b.change(owner{ref: ref}, old, recs, dirty)
		changed = true
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
			// Every app of source is remade with the agents now known.
			for k, app := range b.apps.All() {
				if ref := taskRef(k); ref.source == source {
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
	b.apps = apps.Map()
	if len(dirty) == 0 {
		return changed
	}
	e := b.records.EditSized(len(dirty))
	ents := b.nonTerminals.Edit()
	for n := range dirty {
		r := b.merge(n, made)
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

// knownAgents returns the agent check for apps of source: nil (every
// agent) while the source has no cluster.
func knownAgents(agents map[string]map[string]struct{}, source string) func(string) bool {
	ids, ok := agents[source]
	if !ok {
		return nil
	}
	return func(id string) bool {
		_, ok := ids[id]
		return ok
	}
}

// setAgents records the agents of source's cluster and reports whether the
// set changed.
func (b *recordsBuilder) setAgents(source string, cl *Cluster) bool {
	old, had := b.agents[source]
	if cl == nil {
		if had {
			b.agents = maps.Clone(b.agents)
			delete(b.agents, source)
		}
		return had
	}
	next := make(map[string]struct{}, len(cl.Agents))
	for _, a := range cl.Agents {
		next[a.ID] = struct{}{}
	}
	if had && sameSet(old, next) {
		return false
	}
	b.agents = maps.Clone(b.agents)
	b.agents[source] = next
	return true
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
	p := b.interned[o]
	if p == nil {
		p = &ownerRef{owner: o}
		b.interned[o] = p
	}
	if ps, ok := b.shared[n]; ok {
		if !slices.Contains(ps, p) {
			b.shared[n] = append(ps, p)
			p.names++
		}
		return
	}
	cur, ok := b.owners[n]
	switch {
	case !ok:
		b.owners[n] = p
	case cur != p:
		delete(b.owners, n)
		b.shared[n] = []*ownerRef{cur, p}
	default:
		return
	}
	p.names++
}

func (b *recordsBuilder) removeOwner(n RecordName, o owner) {
	p := b.interned[o]
	if p == nil {
		return
	}
	if ps, ok := b.shared[n]; ok {
		j := slices.Index(ps, p)
		if j < 0 {
			return
		}
		ps = slices.Delete(ps, j, j+1)
		if len(ps) == 1 {
			delete(b.shared, n)
			b.owners[n] = ps[0]
		} else {
			b.shared[n] = ps
		}
	} else if cur, ok := b.owners[n]; ok && cur == p {
		delete(b.owners, n)
	} else {
		return
	}
	if p.names--; p.names == 0 {
		delete(b.interned, o)
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

// merge returns the union of the records n's owners give it, or nil. made
// holds the records of the apps made by this build; merge adds those it
// makes of the other owners, so each app's are made once per build.
func (b *recordsBuilder) merge(n RecordName, made map[appRef][]*TaskRecords) *Records {
	os := b.shared[n]
	if o, ok := b.owners[n]; ok {
		os = []*ownerRef{o}
	}
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
		trs, ok := made[o.ref]
		if !ok {
			if app, has := b.apps.Get(taskKey(o.ref)); has {
				trs = b.cfg.AppRecords(app, knownAgents(b.agents, o.ref.source))
			}
			made[o.ref] = trs
		}
		for _, tr := range trs {
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

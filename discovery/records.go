package discovery

// The task zones' records as a Table holds them: RecordZone, ZoneRecord
// (one record), TaskRecords (what one task gives), Records (what DNS serves
// for one name) and the Table's lookups of them.

import (
	"cmp"
	"iter"
	"net/netip"
	"slices"
	"strings"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// RecordZone is a zone of task records. Names in it are relative to the
// zone: lower case, no trailing dot ("web.marathon", "_web._tcp.marathon",
// "web.marathon.autoip"). Where DNS serves each zone is dnsserver's
// business: ZoneMesos under the mesos domain ("mesos.") and its mirror
// "mesos.thisdcos.directory.", ZoneDCOS under "dcos.thisdcos.directory.".
type RecordZone uint8

const (
	// ZoneMesos holds mesos-dns's names (UPSTREAM.md §3).
	ZoneMesos RecordZone = iota
	// ZoneDCOS holds dcos-dns's task names (UPSTREAM.md §2.2):
	// "<task>.<framework>.agentip|containerip|autoip", "leader", "master".
	ZoneDCOS
	numRecordZones
)

// String is the zone's short name, as the HTTP API shows it.
func (z RecordZone) String() string {
	switch z {
	case ZoneMesos:
		return "mesos"
	case ZoneDCOS:
		return "dcos"
	}
	return "zone?"
}

// RecordType is the type of a ZoneRecord.
type RecordType uint8

const (
	TypeA RecordType = iota + 1
	TypeAAAA
	TypeSRV
)

// String is the type's DNS mnemonic.
func (t RecordType) String() string {
	switch t {
	case TypeA:
		return "A"
	case TypeAAAA:
		return "AAAA"
	case TypeSRV:
		return "SRV"
	}
	return "TYPE?"
}

// ZoneRecord is one record of a task zone.
type ZoneRecord struct {
	Zone RecordZone
	Type RecordType
	// Name is the owner, relative to Zone.
	Name string
	// Addr is the address of an A or AAAA record.
	Addr netip.Addr
	// Target (relative to Zone) and Port are an SRV record's; priority 0
	// and weight 1 as mesos-dns.
	Target string
	Port   uint16
}

// TaskRecords are the records one task gives the task zones, for
// enumeration (mesos-dns's /v1/enumerate).
type TaskRecords struct {
	// Framework is the framework's name as written upstream.
	Framework string
	// Name is the task's name as mesos-dns enumerates it (the DiscoveryInfo
	// name when set, else the task name).
	Name string
	// ID is the task ID.
	ID      string
	Records []ZoneRecord
	// Skipped counts the records the naming rules made but whose name or
	// target cannot be asked over DNS (NamesConfig.AppRecords), so left out.
	Skipped int
}

// Records is what DNS serves for one name of a task zone: every record of
// every task and cluster member that gives the name one, without
// duplicates, each list sorted.
type Records struct {
	A, AAAA []netip.Addr
	SRV     []SRVTarget
}

// SRVTarget is the data of one SRV record.
type SRVTarget struct {
	// Target is relative to the zone of the SRV record.
	Target string
	Port   uint16
}

func compareSRVTarget(x, y SRVTarget) int {
	if c := cmp.Compare(x.Target, y.Target); c != 0 {
		return c
	}
	return cmp.Compare(x.Port, y.Port)
}

// equalRecords reports whether a and b hold the same records.
func equalRecords(a, b *Records) bool {
	return slices.Equal(a.A, b.A) && slices.Equal(a.AAAA, b.AAAA) && slices.Equal(a.SRV, b.SRV)
}

// recordKey is the key of a name in a Table's records index: the zone's
// byte, then the relative name.
func recordKey(z RecordZone, name string) string { return string(rune('0'+z)) + name }

// Records returns the records of name (relative to zone z, lower case), or
// ErrNotFound.
func (t *Table) Records(z RecordZone, name string) (*Records, error) {
	if t == nil {
		return nil, ErrNotFound
	}
	if r, ok := t.records.Get(recordKey(z, name)); ok {
		return r, nil
	}
	return nil, ErrNotFound
}

// RecordNonTerminal reports whether name (relative to zone z, lower case)
// is an empty non-terminal of the task zones: it has no records but names
// below it do (RFC 8020: the answer is NODATA, not NXDOMAIN).
func (t *Table) RecordNonTerminal(z RecordZone, name string) bool {
	if t == nil {
		return false
	}
	_, ok := t.nonTerminals.Get(recordKey(z, name))
	return ok
}

// RecordNames returns how many names the task zones hold.
func (t *Table) RecordNames() int {
	if t == nil {
		return 0
	}
	return t.records.Len()
}

// AllRecords yields every name of the task zones with its records, in no
// particular order.
func (t *Table) AllRecords() iter.Seq2[RecordName, *Records] {
	return func(yield func(RecordName, *Records) bool) {
		if t == nil {
			return
		}
		for k, r := range t.records.All() {
			if !yield(RecordName{Zone: RecordZone(k[0] - '0'), Name: k[1:]}, r) {
				return
			}
		}
	}
}

// RecordName is a name of a task zone.
type RecordName struct {
	Zone RecordZone
	Name string
}

// Tasks yields the records of every task (enumeration), in no particular
// order.
func (t *Table) Tasks() iter.Seq[*TaskRecords] {
	return func(yield func(*TaskRecords) bool) {
		if t == nil {
			return
		}
		t.tasks.all(yield)
	}
}

// taskIndex is what Table.Tasks enumerates: the records builder's apps,
// whose records are made again on each enumeration (it is rare; keeping
// every task's records would cost more than the rest of the index), or the
// fixed list of WithRecords.
type taskIndex struct {
	cfg    NamesConfig
	apps   cowmap.Map[*App] // by taskKey
	agents map[string]map[string]struct{}
	fixed  []*TaskRecords
}

// all yields every task's records until yield returns false.
func (x taskIndex) all(yield func(*TaskRecords) bool) bool {
	for _, tr := range x.fixed {
		if !yield(tr) {
			return false
		}
	}
	for k, app := range x.apps.All() {
		for _, tr := range x.cfg.AppRecords(app, knownAgents(x.agents, taskRef(k).source)) {
			if !yield(tr) {
				return false
			}
		}
	}
	return true
}

// ChangedRecords calls fn for every task-zone name whose records differ
// between prev and next (nil: not served), at the cost of the change when
// the Tables are related (see ChangedNames).
func ChangedRecords(prev, next *Table, fn func(n RecordName, old, cur *Records)) {
	var a, b cowmap.Map[*Records]
	if prev != nil {
		a = prev.records
	}
	if next != nil {
		b = next.records
	}
	cowmap.Diff(a, b, func(x, y *Records) bool { return x == y }, func(k string, x *Records, _ bool, y *Records, _ bool) {
		fn(RecordName{Zone: RecordZone(k[0] - '0'), Name: k[1:]}, x, y)
	})
}

// WithRecords returns a shallow copy of t whose task zones hold the
// records of tasks and of the cluster, built whole: the reference the
// incremental index (build_records.go) must equal, and the way tests make
// Tables with records. The copy shares tasks and its values.
func (t *Table) WithRecords(tasks []*TaskRecords, cluster []ZoneRecord) *Table {
	c := *t
	byName := map[string]*Records{}
	for _, tr := range tasks {
		addRecords(byName, tr.Records)
	}
	addRecords(byName, cluster)
	e := cowmap.Map[*Records]{}.EditSized(len(byName))
	for k, r := range byName {
		r.normalise()
		e.Set(k, r)
	}
	c.records = e.Map()
	ents := cowmap.Map[struct{}]{}.Edit()
	for k := range byName {
		for name := k[1:]; ; {
			i := strings.IndexByte(name, '.')
			if i < 0 {
				break
			}
			name = name[i+1:]
			if _, has := byName[k[:1]+name]; !has {
				ents.Set(k[:1]+name, struct{}{})
			}
		}
	}
	c.nonTerminals = ents.Map()
	c.tasks = taskIndex{fixed: tasks}
	return &c
}

// addRecords adds recs to the records by key, unsorted.
func addRecords(byName map[string]*Records, recs []ZoneRecord) {
	for _, zr := range recs {
		k := recordKey(zr.Zone, zr.Name)
		r := byName[k]
		if r == nil {
			r = &Records{}
			byName[k] = r
		}
		r.add(zr)
	}
}

func (r *Records) add(zr ZoneRecord) {
	switch zr.Type {
	case TypeA:
		r.A = append(r.A, zr.Addr)
	case TypeAAAA:
		r.AAAA = append(r.AAAA, zr.Addr)
	case TypeSRV:
		r.SRV = append(r.SRV, SRVTarget{Target: zr.Target, Port: zr.Port})
	}
}

// normalise sorts r's lists and drops duplicates.
func (r *Records) normalise() {
	slices.SortFunc(r.A, netip.Addr.Compare)
	r.A = slices.Compact(r.A)
	slices.SortFunc(r.AAAA, netip.Addr.Compare)
	r.AAAA = slices.Compact(r.AAAA)
	slices.SortFunc(r.SRV, compareSRVTarget)
	r.SRV = slices.Compact(r.SRV)
}

// WithTaskZonesOf returns a shallow copy of t whose task zones (records,
// empty non-terminals, tasks, skipped count) and label errors are o's; its Generation is
// the sum of both, so it grows when either does. A cluster publisher
// serves the VIPs etcd holds with the task zones its own reconciler
// builds. The copy shares everything with t and o.
func (t *Table) WithTaskZonesOf(o *Table) *Table {
	c := *t
	c.records, c.nonTerminals, c.tasks, c.SkippedRecords = o.records, o.nonTerminals, o.tasks, o.SkippedRecords
	c.Errors = o.Errors
	c.Generation = t.Generation + o.Generation
	return &c
}

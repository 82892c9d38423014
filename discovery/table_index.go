package discovery

// A Table's DNS names index: built whole (NewTable, WithAnnounced) or
// edited for the names that changed only (reindexed).

import (
	"slices"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// NewTable returns a Table of vips and errs whose DNS names are those of the
// named VIPs for which announce returns true; a nil announce announces every
// VIP with backends. NewTable owns vips and errs from then on and sorts vips
// by Key if they are not sorted yet. The reconciler uses announce to hold a
// name back until its VIP is ready, and to withdraw names before the
// dataplane drops them.
func NewTable(vips []VIP, errs []LabelError, announce func(*VIP) bool) *Table {
	if !slices.IsSortedFunc(vips, compareVIP) {
		slices.SortFunc(vips, compareVIP)
	}
	l := newVIPList(vips)
	return &Table{VIPs: l, Errors: errs, names: index(l, announce)}
}

// WithAnnounced returns a shallow copy of t whose DNS names are those of the
// named VIPs for which announce returns true (nil: every VIP with backends).
// The copy shares VIPs and Errors with t.
func (t *Table) WithAnnounced(announce func(*VIP) bool) *Table {
	c := *t
	c.names = index(c.VIPs, announce)
	return &c
}

// reindexed returns a shallow copy of t whose names index is base's with
// the entries of names recomputed from t.VIPs under announce (nil: every
// VIP with backends). The caller vouches that every other name's entry in
// base is what index(t.VIPs, announce) would give it; the cost is the work
// for names and the shards of the index they are in, not a pass over every
// VIP.
func (t *Table) reindexed(base *Table, names map[string]struct{}, announce func(*VIP) bool) *Table {
	c := *t
	e := base.names.EditSized(len(names))
	for name := range names {
		if ne := t.entry(name, announce); ne != nil {
			e.Set(name, ne)
		} else {
			e.Delete(name)
		}
	}
	c.names = e.Map()
	return &c
}

// entry computes name's NameEntry from t.VIPs as index does, or nil when
// no VIP of the name is announced.
func (t *Table) entry(name string, announce func(*VIP) bool) *NameEntry {
	var e *NameEntry
	for v := range t.VIPs.Named(name) {
		if announce == nil && len(v.Backends) == 0 || announce != nil && !announce(v) {
			continue
		}
		if e == nil {
			e = &NameEntry{}
		}
		if !e.Addr4.IsValid() {
			e.Addr4 = v.Addr4
		}
		if !e.Addr6.IsValid() {
			e.Addr6 = v.Addr6
		}
		e.Ports = append(e.Ports, PortProto{Protocol: v.Key.Protocol, Port: v.Key.Port})
	}
	return e
}

// index builds the DNS names of the announced named VIPs in vips (sorted),
// so each name's ports come out sorted by protocol, then port.
func index(vips VIPList, announce func(*VIP) bool) cowmap.Map[*NameEntry] {
	n := 0
	for v := range vips.All() {
		if v.Key.Name != "" {
			n++
		}
	}
	names := cowmap.Map[*NameEntry]{}.EditSized(n)
	entries := make([]NameEntry, 0, n)
	for v := range vips.All() {
		if v.Key.Name == "" {
			continue
		}
		if announce == nil && len(v.Backends) == 0 || announce != nil && !announce(v) {
			continue
		}
		e, _ := names.Get(v.Key.Name)
		if e == nil {
			entries = append(entries, NameEntry{})
			e = &entries[len(entries)-1]
			names.Set(v.Key.Name, e)
		}
		if !e.Addr4.IsValid() {
			e.Addr4 = v.Addr4
		}
		if !e.Addr6.IsValid() {
			e.Addr6 = v.Addr6
		}
		e.Ports = append(e.Ports, PortProto{Protocol: v.Key.Protocol, Port: v.Key.Port})
	}
	return names.Map()
}

// compareVIP orders VIPs by Key.
func compareVIP(x, y VIP) int { return compareKey(x.Key, y.Key) }

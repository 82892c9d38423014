package dnsserver

import (
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// nonTerminals holds the empty non-terminals of one table: names that own
// no records but have names below them, such as "<framework>" and
// "_tcp.<framework>" (relative to the zone, lower case). RFC 8020 resolvers
// treat NXDOMAIN as "nothing below either", so these must answer NODATA.
// Each maps to how many times the served names imply it, so that the
// non-terminals of a new table are those of the previous one updated for
// the names that changed (advance).
type nonTerminals struct {
	table *discovery.Table
	names cowmap.Map[int]
}

// nonTerminal reports whether rest (relative to the zone, lower case) is an
// empty non-terminal.
func (n *nonTerminals) nonTerminal(rest string) bool {
	_, ok := n.names.Get(rest)
	return ok
}

// index returns the empty non-terminals of t, computed once per table from
// those of the last table indexed. Only negative answers and the fast
// path's packing need them, so a table nobody asks a missing name of never
// pays for it.
func (s *Server) index(t *discovery.Table) *nonTerminals {
	if n := s.ents.Load(); n != nil && n.table == t {
		return n
	}
	s.entsMu.Lock()
	defer s.entsMu.Unlock()
	n := s.ents.Load()
	if n != nil && n.table == t {
		return n
	}
	n = n.advance(t)
	s.ents.Store(n)
	return n
}

// advance returns the non-terminals of t from those of n (nil: none):
// the cost is that of the names whose records differ (discovery.ChangedNames).
func (n *nonTerminals) advance(t *discovery.Table) *nonTerminals {
	var prev *discovery.Table
	var e *cowmap.Editor[int]
	if n != nil {
		prev, e = n.table, n.names.Edit()
	} else {
		e = cowmap.Map[int]{}.Edit() // a handful: "<framework>", "_tcp.<framework>", …
	}
	add := func(rest string) { c, _ := e.Get(rest); e.Set(rest, c+1) }
	drop := func(rest string) {
		if c, _ := e.Get(rest); c > 1 {
			e.Set(rest, c-1)
		} else {
			e.Delete(rest)
		}
	}
	discovery.ChangedNames(prev, t, func(key string, old, cur *discovery.NameEntry) {
		if old != nil {
			impliedBy(key, old, drop)
		}
		if cur != nil {
			impliedBy(key, cur, add)
		}
	})
	return &nonTerminals{table: t, names: e.Map()}
}

// impliedBy calls fn with every proper suffix of every owner name the
// served name key (entry e) has: key itself and, for each protocol it has
// ports of, every way of writing it as "_<name>._<proto>.<framework>" (see
// discovery.ParseSRVName). A suffix may come more than once; advance
// counts it as often both ways.
func impliedBy(key string, e *discovery.NameEntry, fn func(rest string)) {
	suffixes(key, fn)
	for _, proto := range []discovery.Protocol{discovery.TCP, discovery.UDP} {
		if !hasProtocol(e, proto) {
			continue
		}
		for j := strings.IndexByte(key, '.'); j >= 0; {
			suffixes("_"+key[:j]+"._"+proto.String()+"."+key[j+1:], fn)
			k := strings.IndexByte(key[j+1:], '.')
			if k < 0 {
				break
			}
			j += k + 1
		}
	}
}

func suffixes(name string, fn func(rest string)) {
	for i := strings.IndexByte(name, '.'); i >= 0; {
		fn(name[i+1:])
		k := strings.IndexByte(name[i+1:], '.')
		if k < 0 {
			return
		}
		i += k + 1
	}
}

package dnsserver

import (
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
)

// nonTerminals holds the empty non-terminals of one table: names that own
// no records but have names below them, such as "<framework>" and
// "_tcp.<framework>" (relative to the zone, lower case). RFC 8020 resolvers
// treat NXDOMAIN as "nothing below either", so these must answer NODATA.
type nonTerminals struct {
	table *discovery.Table
	names map[string]struct{}
}

// nonTerminal reports whether rest (relative to the zone, lower case) is an
// empty non-terminal.
func (n *nonTerminals) nonTerminal(rest string) bool {
	_, ok := n.names[rest]
	return ok
}

// index returns the empty non-terminals of t, building them once per table.
// Only negative answers need them, so a table nobody asks a missing name
// of never pays for it.
func (s *Server) index(t *discovery.Table) *nonTerminals {
	if n := s.ents.Load(); n != nil && n.table == t {
		return n
	}
	s.entsMu.Lock()
	defer s.entsMu.Unlock()
	if n := s.ents.Load(); n != nil && n.table == t {
		return n
	}
	n := buildNonTerminals(t)
	s.ents.Store(n)
	return n
}

// buildNonTerminals collects every proper suffix of every served owner
// name: each "<name>.<framework>" and, for each protocol it has ports of,
// every way of writing it as "_<name>._<proto>.<framework>" (see discovery.ParseSRVName).
func buildNonTerminals(t *discovery.Table) *nonTerminals {
	n := &nonTerminals{table: t, names: make(map[string]struct{})}
	if t == nil {
		return n
	}
	seen := make(map[string]bool)
	for v := range t.VIPs.All() {
		key := v.Key.Name
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		e, err := t.Lookup(key)
		if err != nil {
			continue // not announced
		}
		n.addSuffixes(key)
		for _, proto := range []discovery.Protocol{discovery.TCP, discovery.UDP} {
			if !hasProtocol(e, proto) {
				continue
			}
			for j := strings.IndexByte(key, '.'); j >= 0; {
				n.addSuffixes("_" + key[:j] + "._" + proto.String() + "." + key[j+1:])
				k := strings.IndexByte(key[j+1:], '.')
				if k < 0 {
					break
				}
				j += k + 1
			}
		}
	}
	return n
}

func (n *nonTerminals) addSuffixes(name string) {
	for i := strings.IndexByte(name, '.'); i >= 0; {
		n.names[name[i+1:]] = struct{}{}
		k := strings.IndexByte(name[i+1:], '.')
		if k < 0 {
			return
		}
		i += k + 1
	}
}

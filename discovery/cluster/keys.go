package cluster

// The etcd key layout under the prefix (default /vipbridge/v1/); README
// "Cluster mode" documents it for operators.
//
//	election/<lease hex>        the publishers' election (concurrency.Election)
//	status/leader               the leading publisher, on its session's lease
//	alloc/name/<name>/4 and /6  a name's cluster address: allocValue
//	alloc/addr/<addr>           the reverse index: "<name>/4" or "<name>/6"
//	vips/n/<name>               a named VIP group: every VIP of "<name>.<framework>"
//	vips/ip/<addr>              an IP VIP group: every VIP of one address
//	vips/<group>/s<k>           backend slice k of a group with more than
//	                            SliceBackends backends (the head says how many)
//
// Nodes list and watch [status/, vips0): the leader key and the VIP groups,
// never alloc/ or election/.

import (
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPrefix is where vipbridge keeps every key unless told otherwise.
const DefaultPrefix = "/vipbridge/v1/"

// keys builds the keys of one prefix.
type keys struct{ prefix string }

// newKeys returns the keys under prefix ("" is DefaultPrefix), which
// always ends in "/".
func newKeys(prefix string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return keys{prefix}
}

func (k keys) election() string { return k.prefix + "election" }
func (k keys) leader() string   { return k.prefix + "status/leader" }
func (k keys) alloc() string    { return k.prefix + "alloc/" }
func (k keys) vips() string     { return k.prefix + "vips/" }

// watchRange is the [start, end) nodes list and watch: status/ and vips/.
func (k keys) watchRange() (string, string) { return k.prefix + "status/", k.prefix + "vips0" }

func (k keys) allocName(name string, v6 bool) string {
	return k.prefix + "alloc/name/" + name + familySuffix(v6)
}

func (k keys) allocAddr(a netip.Addr) string { return k.prefix + "alloc/addr/" + a.String() }

// group is a group's head key; id is "n/<name>" or "ip/<addr>".
func (k keys) group(id string) string { return k.prefix + "vips/" + id }

// slice is the key of a group's backend slice i.
func (k keys) slice(id string, i int) string { return k.group(id) + "/s" + strconv.Itoa(i) }

func familySuffix(v6 bool) string {
	if v6 {
		return "/6"
	}
	return "/4"
}

// groupKey is what a key under vips/ names: a group's head (slice < 0) or
// one of its slices.
type groupKey struct {
	id    string
	slice int
}

// parseGroupKey parses a key under vips/ (the prefix already removed):
// "n/<name>", "ip/<addr>", either followed by "/s<k>".
func parseGroupKey(rel string) (groupKey, bool) {
	kind, rest, ok := strings.Cut(rel, "/")
	if !ok || rest == "" || (kind != "n" && kind != "ip") {
		return groupKey{}, false
	}
	gk := groupKey{slice: -1}
	if name, s, ok := strings.Cut(rest, "/"); ok {
		if len(s) < 2 || s[0] != 's' || name == "" {
			return groupKey{}, false
		}
		n, err := strconv.Atoi(s[1:])
		if err != nil || n < 0 || n >= maxSlices || strconv.Itoa(n) != s[1:] {
			return groupKey{}, false
		}
		rest, gk.slice = name, n
	}
	gk.id = kind + "/" + rest
	return gk, true
}

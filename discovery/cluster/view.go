package cluster

// A node's view of etcd's watched range (status/ and vips/): the raw
// values by key, the groups decoded from them, and the Table they make.
// Pure: the node's sync loop feeds it events, lists and cache loads.

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

const (
	relVIPs   = "vips/"
	relLeader = "status/leader"
)

// leaderValue is status/leader's value: the leading publisher, and the
// upstream sources (Marathon, Mesos) its reconciler finds stale.
type leaderValue struct {
	ID    string    `json:"id"`
	Since time.Time `json:"since"`
	Stale []string  `json:"stale,omitempty"`
}

// view is not safe for concurrent use; the node's sync loop owns it.
type view struct {
	kv     map[string][]byte          // key under the prefix → value
	groups map[string][]discovery.VIP // group id → its VIPs, decoded
	bad    map[string]error           // group id → why its value is unusable
	leader string                     // the leading publisher's ID, "" when none
	stale  []string                   // the upstream sources the leader finds stale
	rev    int64                      // the etcd revision kv is at
	dirty  map[string]struct{}        // groups changed since the last build
	newBad []string                   // groups that became unusable in the last build
	// sorted is every group's VIPs in a Table's order, kept by build: a
	// change moves its own VIPs rather than sorting them all again.
	sorted []discovery.VIP
}

func newView() *view {
	return &view{kv: map[string][]byte{}, groups: map[string][]discovery.VIP{}, bad: map[string]error{}, dirty: map[string]struct{}{}}
}

// replace makes kv (keys under the prefix) the whole view, at rev.
func (v *view) replace(kv map[string][]byte, rev int64) {
	for k := range v.kv {
		if _, ok := kv[k]; !ok {
			v.set(k, nil)
		}
	}
	for k, val := range kv {
		if string(v.kv[k]) != string(val) || v.kv[k] == nil {
			v.set(k, val)
		}
	}
	v.rev = rev
}

// set changes one key (nil value: deleted); keys outside status/leader and
// vips/ are ignored.
func (v *view) set(rel string, val []byte) {
	if rel == relLeader {
		v.setLeader(val)
	} else if g, ok := strings.CutPrefix(rel, relVIPs); !ok {
		return
	} else if gk, ok := parseGroupKey(g); ok {
		v.dirty[gk.id] = struct{}{}
	}
	if val == nil {
		delete(v.kv, rel)
		return
	}
	v.kv[rel] = val
}

func (v *view) setLeader(val []byte) {
	var l leaderValue
	if val == nil || json.Unmarshal(val, &l) != nil {
		v.leader, v.stale = "", nil
		return
	}
	v.leader, v.stale = l.ID, l.Stale
}

// build decodes the groups changed since the last build and reports
// whether any changed. A group whose value is unusable keeps its last good
// VIPs (none if it never had any) and is listed in bad (and in newBad
// when it was not, or not for that reason).
func (v *view) build() bool {
	v.newBad = v.newBad[:0]
	if len(v.dirty) == 0 {
		return false
	}
	// Many changed groups (a list, a cache load): sort once at the end.
	bulk := len(v.dirty) > 64 && len(v.dirty) > len(v.groups)/8
	for id := range v.dirty {
		old := v.groups[id]
		head, ok := v.kv[relVIPs+id]
		if !ok {
			delete(v.groups, id)
			delete(v.bad, id)
			v.move(old, nil, bulk)
			continue
		}
		vips, err := decodeGroup(id, head, func(i int) ([]byte, bool) {
			b, ok := v.kv[relVIPs+id+"/s"+strconv.Itoa(i)]
			return b, ok
		})
		if err != nil {
			if old, ok := v.bad[id]; !ok || old.Error() != err.Error() {
				v.newBad = append(v.newBad, id)
			}
			v.bad[id] = err
			continue
		}
		delete(v.bad, id)
		v.groups[id] = vips
		v.move(old, vips, bulk)
	}
	if bulk {
		v.sorted = v.sorted[:0]
		for _, g := range v.groups {
			v.sorted = append(v.sorted, g...)
		}
		slices.SortFunc(v.sorted, func(x, y discovery.VIP) int { return compareKey(x.Key, y.Key) })
	}
	clear(v.dirty)
	return true
}

// move replaces a group's old VIPs by its new ones in sorted (unless a
// bulk build sorts everything afterwards).
func (v *view) move(old, vips []discovery.VIP, bulk bool) {
	if bulk {
		return
	}
	byKey := func(x discovery.VIP, k discovery.VIPKey) int { return compareKey(x.Key, k) }
	for _, x := range old {
		if i, ok := slices.BinarySearchFunc(v.sorted, x.Key, byKey); ok {
			v.sorted = slices.Delete(v.sorted, i, i+1)
		}
	}
	for _, x := range vips {
		i, _ := slices.BinarySearchFunc(v.sorted, x.Key, byKey)
		v.sorted = slices.Insert(v.sorted, i, x)
	}
}

// table returns a new Table of every group's VIPs.
func (v *view) table() *discovery.Table {
	t := discovery.NewTable(slices.Clone(v.sorted), nil, nil)
	t.Built = time.Now()
	return t
}

package cluster

// The elected publisher's writes: the diff between its Table and what etcd
// holds (the mirror, read once per term), cluster address allocation, the
// addresses' grace, and transactions packed within etcd's limits, each
// fenced by the election.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery"
)

// etcd's default limits are 128 operations and 1.5 MiB per request
// (server/embed/config.go DefaultMaxTxnOps, DefaultMaxRequestBytes); a
// transaction stays within 128 operations and 1 MiB.
const (
	maxTxnOps   = 128
	maxTxnBytes = 1 << 20
	// allocBatch names go in one allocation transaction: two compares
	// each, plus the fence.
	allocBatch = 60
)

// nameFamily is one address of a name: "<name>.<framework>" and a family.
type nameFamily struct {
	name string
	v6   bool
}

// allocValue is alloc/name/<name>/<family>'s value. GoneSince is when the
// name lost its last VIP of the family; the address is freed Grace after.
type allocValue struct {
	Addr      netip.Addr `json:"addr"`
	GoneSince time.Time  `json:"goneSince,omitzero"`
}

// writer is one term's writes; lead owns it.
type writer struct {
	p        *Publisher
	fence    clientv3.Cmp
	fenceKey string
	rev      int64

	loaded bool
	vals   map[string]string // key under vips/ → the value etcd holds
	allocs map[nameFamily]allocValue
	// encoded remembers each group's last encoding, by what it was
	// encoded from: Tables are immutable, so a VIP whose slices are the
	// same arrays encodes to the same bytes, and an unchanged group of a
	// large Table costs a comparison, not an encoding.
	encoded map[string]encoding
}

// encoding is a group's keys and values and the VIPs they encode.
type encoding struct {
	from []vipPrint
	kvs  [][2]string
}

// vipPrint identifies a VIP's content in an immutable Table.
type vipPrint struct {
	key                   discovery.VIPKey
	addr4, addr6          netip.Addr
	backends              *discovery.Backend
	labels, apps          *string
	nBackends, nLabels, n int
}

func printOf(v *discovery.VIP) vipPrint {
	p := vipPrint{key: v.Key, addr4: v.Addr4, addr6: v.Addr6, nBackends: len(v.Backends), nLabels: len(v.Labels), n: len(v.Apps)}
	if len(v.Backends) > 0 {
		p.backends = &v.Backends[0]
	}
	if len(v.Labels) > 0 {
		p.labels = &v.Labels[0]
	}
	if len(v.Apps) > 0 {
		p.apps = &v.Apps[0]
	}
	return p
}

// invalidate makes the next sync read etcd again (after a failed write,
// whose effect is unknown).
func (w *writer) invalidate() { w.loaded = false }

// load reads vips/ and alloc/name/ into the mirror.
func (w *writer) load(ctx context.Context) error {
	w.vals = map[string]string{}
	w.allocs = map[nameFamily]allocValue{}
	if err := w.scan(ctx, w.p.keys.vips(), func(k, v []byte) { w.vals[string(k)] = string(v) }); err != nil {
		return err
	}
	names := w.p.keys.alloc() + "name/"
	err := w.scan(ctx, names, func(k, v []byte) {
		rel := strings.TrimPrefix(string(k), names)
		name, fam := rel[:max(len(rel)-2, 0)], rel[max(len(rel)-2, 0):]
		var av allocValue
		if (fam != "/4" && fam != "/6") || json.Unmarshal(v, &av) != nil || !av.Addr.IsValid() {
			w.p.log.Warn("unusable allocation in etcd, ignored", "key", string(k))
			return
		}
		w.allocs[nameFamily{name, fam == "/6"}] = av
	})
	if err != nil {
		return err
	}
	w.loaded = true
	return nil
}

// scan reads every key under prefix, paged, at one revision.
func (w *writer) scan(ctx context.Context, prefix string, fn func(k, v []byte)) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from, rev := prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := w.p.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("read %s: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision // later pages read at the first's revision
		}
		for _, kv := range resp.Kvs {
			fn(kv.Key, kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// sync makes etcd hold t: addresses first, then every group that differs.
func (w *writer) sync(ctx context.Context, t *discovery.Table) error {
	if !w.loaded {
		if err := w.load(ctx); err != nil {
			return err
		}
	}
	now := w.p.now()
	groups := map[string][]discovery.VIP{}
	need := map[nameFamily]netip.Addr{} // → the reconciler's own address
	for v := range t.VIPs.All() {
		id := groupID(v.Key)
		groups[id] = append(groups[id], *v)
		if v.Key.Name != "" {
			if v.Addr4.IsValid() {
				need[nameFamily{v.Key.Name, false}] = v.Addr4
			}
			if v.Addr6.IsValid() {
				need[nameFamily{v.Key.Name, true}] = v.Addr6
			}
		}
	}
	if err := w.allocate(ctx, t, need, now); err != nil {
		return err
	}
	if err := w.retire(ctx, need, now); err != nil {
		return err
	}
	units, next, err := w.groupWrites(groups)
	if err != nil {
		return err
	}
	if err := w.commit(ctx, units); err != nil {
		return err
	}
	w.vals = next
	return nil
}

// groupWrites encodes every group with its cluster addresses and returns
// the writes that differ from the mirror, one unit (transaction part) per
// group, and the mirror after them.
func (w *writer) groupWrites(groups map[string][]discovery.VIP) ([][]clientv3.Op, map[string]string, error) {
	next := make(map[string]string, len(w.vals))
	unitOf := map[string]int{}
	var units [][]clientv3.Op
	add := func(id string, op clientv3.Op) {
		i, ok := unitOf[id]
		if !ok {
			i = len(units)
			unitOf[id] = i
			units = append(units, nil)
		}
		units[i] = append(units[i], op)
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if w.encoded == nil {
		w.encoded = map[string]encoding{}
	}
	encoded := make(map[string]encoding, len(groups))
	for _, id := range ids {
		kvs, err := w.encode(id, groups[id], encoded)
		if err != nil {
			return nil, nil, err
		}
		changed := false
		for _, kv := range kvs {
			next[kv[0]] = kv[1]
			if old, ok := w.vals[kv[0]]; !ok || old != kv[1] {
				add(id, clientv3.OpPut(kv[0], kv[1]))
				changed = true
			}
		}
		if !changed {
			w.p.met.skipped.Inc()
		}
	}
	for k := range w.vals {
		if _, ok := next[k]; ok {
			continue
		}
		gk, _ := parseGroupKey(strings.TrimPrefix(k, w.p.keys.vips()))
		add(gk.id, clientv3.OpDelete(k))
	}
	w.encoded = encoded
	return units, next, nil
}

// encode returns group id's keys and values, from its last encoding when
// its VIPs are the same, and records them in encoded.
func (w *writer) encode(id string, vips []discovery.VIP, encoded map[string]encoding) ([][2]string, error) {
	prints := make([]vipPrint, len(vips))
	for i := range vips {
		w.clusterAddrs(&vips[i])
		prints[i] = printOf(&vips[i])
	}
	if e, ok := w.encoded[id]; ok && slices.Equal(e.from, prints) {
		encoded[id] = e
		return e.kvs, nil
	}
	head, sliced, err := encodeGroup(vips)
	if err != nil {
		return nil, err
	}
	kvs := [][2]string{{w.p.keys.group(id), string(head)}}
	for i, s := range sliced {
		kvs = append(kvs, [2]string{w.p.keys.slice(id, i), string(s)})
	}
	encoded[id] = encoding{from: prints, kvs: kvs}
	return kvs, nil
}

// clusterAddrs replaces a named VIP's addresses by the cluster's.
func (w *writer) clusterAddrs(v *discovery.VIP) {
	if v.Key.Name == "" {
		return
	}
	if v.Addr4.IsValid() {
		v.Addr4 = w.allocs[nameFamily{v.Key.Name, false}].Addr
	}
	if v.Addr6.IsValid() {
		v.Addr6 = w.allocs[nameFamily{v.Key.Name, true}].Addr
	}
}

// commit writes units in as few fenced transactions as etcd's limits
// allow, never splitting a unit unless it alone exceeds them.
func (w *writer) commit(ctx context.Context, units [][]clientv3.Op) error {
	var batch []clientv3.Op
	size := 0
	for _, u := range units {
		for len(u) > 0 {
			n, b := 0, 0
			for n < len(u) && n < maxTxnOps && b+opBytes(u[n]) <= maxTxnBytes {
				b += opBytes(u[n])
				n++
			}
			n = max(n, 1)
			if len(batch)+n > maxTxnOps || size+b > maxTxnBytes {
				if err := w.txn(ctx, batch, nil); err != nil {
					return err
				}
				batch, size = nil, 0
			}
			batch, size = append(batch, u[:n]...), size+b
			u = u[n:]
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return w.txn(ctx, batch, nil)
}

func opBytes(op clientv3.Op) int { return len(op.KeyBytes()) + len(op.ValueBytes()) + 16 }

// txn commits ops if the fence and cmps hold. When they do not, it tells
// the fence (errFenced) from the other compares (errConflict).
func (w *writer) txn(ctx context.Context, ops []clientv3.Op, cmps []clientv3.Cmp) error {
	if w.p.beforeWrite != nil {
		w.p.beforeWrite()
	}
	resp, err := w.p.cli.Txn(ctx).If(append([]clientv3.Cmp{w.fence}, cmps...)...).Then(ops...).
		Else(clientv3.OpGet(w.fenceKey)).Commit()
	if err != nil {
		w.p.met.txns.WithLabelValues("error").Inc()
		return fmt.Errorf("write %d keys: %w", len(ops), err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 || kvs[0].CreateRevision != w.rev {
			w.p.met.txns.WithLabelValues("fenced").Inc()
			w.p.met.fenced.Inc()
			return errFenced
		}
		w.p.met.txns.WithLabelValues("conflict").Inc()
		return errConflict
	}
	w.p.met.txns.WithLabelValues("ok").Inc()
	for _, op := range ops {
		if op.IsDelete() {
			w.p.met.deletes.Inc()
		} else {
			w.p.met.puts.Inc()
		}
		w.p.met.bytes.Add(float64(len(op.KeyBytes()) + len(op.ValueBytes())))
	}
	return nil
}

// errConflict means an allocation's key was taken after the mirror was
// read; the next sync rereads it.
var errConflict = errors.New("allocation conflict")

package cluster

// Cluster-consistent VIP addresses: the elected publisher is the only
// allocator and etcd the only record. A name's address is created in one
// transaction with its reverse key, only if neither exists, and never
// changes; it is freed Grace after the name's last VIP of the family went.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery"
)

// allocate gives every needed name and family without a cluster address
// one: the reconciler's own address when no other name holds it in etcd
// (so a single-node vipbridge that becomes the first leader brings its
// assignments in), else the allocator's hash-and-probe over what etcd
// holds.
func (w *writer) allocate(ctx context.Context, t *discovery.Table, need map[nameFamily]netip.Addr, now time.Time) error {
	var missing []nameFamily
	for nf := range need {
		if _, ok := w.allocs[nf]; !ok {
			missing = append(missing, nf)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(x, y nameFamily) int {
		return strings.Compare(x.name+familySuffix(x.v6), y.name+familySuffix(y.v6))
	})
	cand := w.candidates(t, need, now)
	for chunk := range slices.Chunk(missing, allocBatch) {
		var ops []clientv3.Op
		var cmps []clientv3.Cmp
		got := map[nameFamily]netip.Addr{}
		for _, nf := range chunk {
			addr, err := cand.Assign(nf.name, nf.v6, now)
			if err != nil {
				w.p.log.Error("cannot allocate a cluster vip address", "vip", nf.name, "err", err)
				continue
			}
			nameKey, addrKey := w.p.keys.allocName(nf.name, nf.v6), w.p.keys.allocAddr(addr)
			val, err := json.Marshal(allocValue{Addr: addr})
			if err != nil {
				return fmt.Errorf("encode allocation: %w", err)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(nameKey), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(addrKey), "=", 0))
			ops = append(ops, clientv3.OpPut(nameKey, string(val)), clientv3.OpPut(addrKey, nf.name+familySuffix(nf.v6)))
			got[nf] = addr
		}
		if len(ops) == 0 {
			continue
		}
		if err := w.txn(ctx, ops, cmps); err != nil {
			return fmt.Errorf("allocate %d addresses: %w", len(got), err)
		}
		for nf, addr := range got {
			w.allocs[nf] = allocValue{Addr: addr}
			w.p.met.allocs.Inc()
			w.p.log.Info("allocated cluster vip address", "vip", nf.name, "addr", addr)
		}
	}
	return nil
}

// candidates is an Allocator holding etcd's addresses (which win) and the
// reconciler's own addresses of the needed names, with every IP VIP's
// address reserved.
func (w *writer) candidates(t *discovery.Table, need map[nameFamily]netip.Addr, now time.Time) *discovery.Allocator {
	held := now.Add(100 * 365 * 24 * time.Hour) // etcd's first: newest LastSeen wins
	existing := make([]discovery.Assignment, 0, len(w.allocs)+len(need))
	for nf, av := range w.allocs {
		existing = append(existing, discovery.Assignment{Name: nf.name, Addr: av.Addr, LastSeen: held})
	}
	for nf, addr := range need {
		if addr.Is6() == nf.v6 {
			existing = append(existing, discovery.Assignment{Name: nf.name, Addr: addr, LastSeen: now})
		}
	}
	cfg := w.p.alloc
	cfg.Grace = 0
	a := discovery.NewAllocator(cfg, existing)
	for v := range t.VIPs.All() {
		if v.Key.IP.IsValid() {
			a.Reserve(v.Key.IP)
		}
	}
	return a
}

// retire marks the addresses of names that went (goneSince), clears the
// mark of names that came back, and frees those gone for longer than the
// grace period, with their reverse keys.
func (w *writer) retire(ctx context.Context, need map[nameFamily]netip.Addr, now time.Time) error {
	var units [][]clientv3.Op
	next := map[nameFamily]*allocValue{} // nil: freed
	for nf, av := range w.allocs {
		_, needed := need[nf]
		key := w.p.keys.allocName(nf.name, nf.v6)
		switch {
		case needed && !av.GoneSince.IsZero():
			av.GoneSince = time.Time{}
		case !needed && av.GoneSince.IsZero():
			av.GoneSince = now.UTC()
		case !needed && now.Sub(av.GoneSince) > w.p.grace:
			units = append(units, []clientv3.Op{clientv3.OpDelete(key), clientv3.OpDelete(w.p.keys.allocAddr(av.Addr))})
			next[nf] = nil
			continue
		default:
			continue
		}
		val, err := json.Marshal(av)
		if err != nil {
			return fmt.Errorf("encode allocation: %w", err)
		}
		units = append(units, []clientv3.Op{clientv3.OpPut(key, string(val))})
		next[nf] = &av
	}
	if len(units) == 0 {
		return nil
	}
	if err := w.commit(ctx, units); err != nil {
		return err
	}
	for nf, av := range next {
		if av == nil {
			delete(w.allocs, nf)
			w.p.log.Info("freed cluster vip address after its grace period", "vip", nf.name)
		} else {
			w.allocs[nf] = *av
		}
	}
	return nil
}

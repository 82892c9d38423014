// This file converges the nftables dataplane's tables to the wanted
// services: it diffs each service against the view and writes the
// difference in bounded transactions.

package lb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Bounds of one transaction. google/nftables v0.3.0 sends a transaction
// in one netlink send, limited by the socket's send buffer (about 200 kB),
// and reads one acknowledgement per message (ENOBUFS when too many:
// google/nftables#103, #350); a set element list is one attribute, whose
// length is a uint16 (#303). kube-proxy's cold-start fix bounds its
// transactions at 1000 operations (kubernetes#139328).
const (
	nftTxnServices = 100 // services per transaction
	nftMsgElems    = 256 // set elements per message
)

// txn collects one transaction's messages and the view updates that
// follow when it commits.
type txn struct {
	svcs   []serviceKey
	elems  int
	commit []func()
}

// flushTxn commits t, or records its error against its services.
func (x *NFTables) flushTxn(t *txn, op string) (int, error) {
	if len(t.commit) == 0 {
		return 0, nil
	}
	err := x.conn.Flush()
	x.met.ops.WithLabelValues(op).Inc()
	if err != nil {
		x.met.opErrors.WithLabelValues(op).Inc()
		for _, k := range t.svcs {
			x.errs[k] = err.Error()
		}
		n := len(t.svcs)
		*t = txn{}
		return 0, fmt.Errorf("%s (%d services): %w", op, n, err)
	}
	for _, f := range t.commit {
		f()
	}
	n := len(t.svcs)
	*t = txn{}
	return n, nil
}

// family returns the table of service k and its index in x.fams.
func (x *NFTables) family(k serviceKey) (*lbFamily, int) {
	i := shardOf(k)
	if k.Addr.Is6() {
		i += lbShards
	}
	return x.fams[i], i
}

// main returns the table of k's family that holds the nobackend set, and
// its index.
func (x *NFTables) main(k serviceKey) (*lbFamily, int) {
	if k.Addr.Is6() {
		return x.fams[lbShards], lbShards
	}
	return x.fams[0], 0
}

// sync reads the kernel if the view is unknown, rebuilds a family whose
// base is broken, then writes each service that differs from the table:
// changes to existing services (each atomic), new services' maps and
// chains, new services' dispatch elements (making them reachable), and
// last the chains and maps of removed services. It returns the number of
// services (and tables) written.
func (x *NFTables) sync(ctx context.Context, trig trigger) (int, error) {
	start := time.Now()
	defer func() { x.met.syncSeconds.WithLabelValues(string(trig)).Observe(time.Since(start).Seconds()) }()
	x.errs = map[serviceKey]string{}
	full := x.view == nil
	if full {
		v, err := x.readView()
		if err != nil {
			x.readErr = err.Error()
			return 0, err
		}
		x.view, x.readErr = v, ""
	}
	writes, err := x.rebuild()
	errs := []error{err}
	if err := ctx.Err(); err != nil {
		return writes, err
	}
	dirty := x.dirty
	if full {
		dirty = nil
	}
	n, err := x.writeServices(dirty)
	writes += n
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		x.view = nil // read again before the next sync
	}
	if len(x.flows) > 0 {
		x.flush(x.flows)
		x.flows = nil
	}
	m := 0
	if full || dirty == nil || x.addrsMoved {
		m, err = x.masq.sync(x.wantAddrs(), full)
		if m > 0 {
			x.met.ops.WithLabelValues("masquerade_set").Add(float64(m))
		}
		errs = append(errs, err)
	}
	x.clean = errors.Join(errs...) == nil
	if writes+m > 0 || full {
		if g, err := generation(x.cfg.NetNS); err == nil {
			x.gen = g
		}
		x.gauges()
	}
	if trig == trigRepair && writes+m > 0 {
		x.met.driftRepairs.Add(float64(writes + m))
		x.log.Info("repaired dataplane drift", "repairs", writes+m, "took", time.Since(start))
	}
	return writes, errors.Join(errs...)
}

// wantAddrs are the VIP addresses whose forwarded traffic is masqueraded.
func (x *NFTables) wantAddrs() map[netip.Addr]struct{} {
	out := make(map[netip.Addr]struct{}, len(x.want))
	for k := range x.want {
		out[k.Addr] = struct{}{}
	}
	return out
}

// rebuild creates each family's table whose base is missing or altered,
// with no service: the services are written again after it.
func (x *NFTables) rebuild() (int, error) {
	writes := 0
	var errs []error
	for i, f := range x.fams {
		if x.view.Intact[i] {
			continue
		}
		err := f.create(x.conn, x.view.Exists[i])
		if ferr := x.conn.Flush(); err == nil {
			err = ferr
		}
		x.met.ops.WithLabelValues("create_table").Inc()
		if err != nil {
			x.met.opErrors.WithLabelValues("create_table").Inc()
			errs = append(errs, fmt.Errorf("create nftables table %s %s: %w", familyName(f), f.table.Name, err))
			continue
		}
		if x.view.Exists[i] {
			x.log.Info("rebuilt nftables table", "family", familyName(f), "table", f.table.Name, "reason", "missing or altered base chains or sets")
		}
		x.view.Intact[i], x.view.Exists[i] = true, true
		maps.DeleteFunc(x.view.Svcs, func(k serviceKey, _ *lbService) bool { _, j := x.family(k); return j == i })
		if f.refuse != nil { // the nobackend set is empty now
			for k, s := range x.view.Svcs {
				if _, j := x.main(k); j == i {
					s.Refused = false
				}
			}
		}
		writes++
	}
	return writes, errors.Join(errs...)
}

func familyName(f *lbFamily) string {
	if f.v6 {
		return "ip6"
	}
	return "ip"
}

// writeServices writes every service that differs from the table, among
// those in dirty (nil: all).
func (x *NFTables) writeServices(dirty map[serviceKey]struct{}) (int, error) {
	var keys []serviceKey
	if dirty != nil {
		keys = slices.Collect(maps.Keys(dirty))
	} else {
		keys = slices.Collect(maps.Keys(x.want))
		for k := range x.view.Svcs {
			if x.want[k] == nil {
				keys = append(keys, k)
			}
		}
	}
	var (
		t          txn
		errs       []error
		writes     int
		fresh, old []serviceKey
	)
	flush := func(op string) {
		n, err := x.flushTxn(&t, op)
		writes += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range keys {
		_, i := x.family(k)
		if _, m := x.main(k); !x.view.Intact[i] || !x.view.Intact[m] {
			continue
		}
		switch x.planService(&t, k) {
		case planNew:
			fresh = append(fresh, k)
		case planGone:
			old = append(old, k)
		}
		if len(t.svcs) >= nftTxnServices {
			flush("write_services")
		}
	}
	flush("write_services")
	for _, k := range fresh {
		if x.view.Svcs[k] != nil && x.errs[k] == "" {
			x.planDispatch(&t, k)
		}
		if t.elems >= nftMsgElems*4 {
			flush("add_dispatch")
		}
	}
	flush("add_dispatch")
	for _, k := range old {
		if s := x.view.Svcs[k]; s != nil && !s.Live && !s.Refused && !s.Stray {
			x.planDelete(&t, k, s)
		}
		if len(t.svcs) >= nftTxnServices*4 {
			flush("delete_services")
		}
	}
	flush("delete_services")
	if n := x.deleteStrays(); n > 0 {
		writes += n
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return writes, errors.Join(errs...)
}

// deleteStrays deletes the objects found in the wrong table: dispatch
// elements first, then chains, then maps. It returns how many it deleted;
// a failure leaves them to the next read.
func (x *NFTables) deleteStrays() int {
	if len(x.view.Strays) == 0 {
		return 0
	}
	for pass := range 3 {
		for _, s := range x.view.Strays {
			f := x.fams[s.Table]
			switch {
			case pass == 0 && s.Key != nil:
				_ = x.conn.SetDeleteElements(f.vips, []nftables.SetElement{{Key: s.Key}})
			case pass == 1 && s.Chain != "":
				x.conn.FlushChain(&nftables.Chain{Name: s.Chain, Table: f.table})
				x.conn.DelChain(&nftables.Chain{Name: s.Chain, Table: f.table})
			case pass == 2 && s.Map != "":
				x.conn.DelSet(&nftables.Set{Name: s.Map, Table: f.table})
			}
		}
		x.met.ops.WithLabelValues("delete_strays").Inc()
		if err := x.conn.Flush(); err != nil {
			x.met.opErrors.WithLabelValues("delete_strays").Inc()
			x.log.Warn("nftables objects in the wrong table not deleted", "err", err)
			x.view = nil
			return 0
		}
	}
	n := len(x.view.Strays)
	x.view.Strays = nil
	return n
}

// planned says what planService did with a service.
type planned int

const (
	planNone    planned = iota // nothing to write
	planChanged                // written, reachable in the same transaction
	planNew                    // map and chain written; dispatch comes later
	planGone                   // made unreachable; chain and map go later
)

// planService adds to t the writes that make service k as the table
// wants it. All of a service's writes go in one transaction.
func (x *NFTables) planService(t *txn, k serviceKey) planned {
	f, _ := x.family(k)
	hs := x.view.Svcs[k]
	if hs == nil {
		hs = &lbService{}
	}
	ws := x.want[k]
	if ws == nil {
		return x.planRemove(t, k, f, hs)
	}
	if hs.Live && !hs.Stray && hs.Rules == 1 && hs.Elems == 2*len(hs.Slots) && hs.RuleMod == hs.Mod && slotsMatch(ws.Dests, hs.Slots, hs.Mod) {
		return planNone // the common case, without allocating
	}
	ss, mod := slots(ws.Dests)
	isNew := !hs.HasMap && !hs.HasChain && !hs.Live && !hs.Refused && !hs.Stray
	live := mod > 0
	done := &lbService{Slots: ss, Mod: mod, Elems: 2 * len(ss), HasMap: true, HasChain: true,
		RuleMod: mod, Rules: btoi(live), Live: live && !isNew, Refused: !live && !isNew}
	if done.equal(hs) {
		return planNone
	}
	m := f.serviceMap(k)
	switch {
	case !hs.HasMap:
		_ = x.conn.AddSet(m, nil)
		t.add(x.conn, m, slotElements(ss, mod))
	case !slices.Equal(hs.Slots, ss) || hs.Mod != mod || hs.Elems != done.Elems:
		x.conn.FlushSet(m)
		t.add(x.conn, m, slotElements(ss, mod))
	}
	ch := f.serviceChain(k)
	switch {
	case !hs.HasChain:
		x.conn.AddChain(ch)
		x.addRule(f, k, m, mod)
	case hs.RuleMod != mod || hs.Rules != done.Rules:
		x.conn.FlushChain(ch)
		x.addRule(f, k, m, mod)
	}
	if !isNew {
		x.planReach(f, k, hs, live)
	}
	t.svcs = append(t.svcs, k)
	t.commit = append(t.commit, func() { x.view.Svcs[k] = done })
	if isNew {
		return planNew
	}
	return planChanged
}

// planReach makes an existing service's dispatch elements match: in the
// vips map when some backend takes new connections, else in nobackend.
func (x *NFTables) planReach(f *lbFamily, k serviceKey, hs *lbService, live bool) {
	key := dispatchKey(k)
	refuse := x.refuseSet(k)
	if hs.Stray || (hs.Live && !live) {
		_ = x.conn.SetDeleteElements(f.vips, []nftables.SetElement{{Key: key}})
	}
	if live && (!hs.Live || hs.Stray) {
		_ = x.conn.SetAddElements(f.vips, []nftables.SetElement{dispatchElement(f, k)})
	}
	if !live && !hs.Refused {
		_ = x.conn.SetAddElements(refuse, []nftables.SetElement{{Key: key}})
	}
	if live && hs.Refused {
		_ = x.conn.SetDeleteElements(refuse, []nftables.SetElement{{Key: key}})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// add adds elements to map m in messages of nftMsgElems.
func (t *txn) add(c *nftables.Conn, m *nftables.Set, es []nftables.SetElement) {
	for len(es) > 0 {
		n := min(len(es), nftMsgElems)
		_ = c.SetAddElements(m, es[:n])
		es = es[n:]
		t.elems += n
	}
}

func (x *NFTables) addRule(f *lbFamily, k serviceKey, m *nftables.Set, mod uint32) {
	if mod > 0 {
		x.conn.AddRule(f.serviceRule(k, m, mod))
	}
}

func dispatchElement(f *lbFamily, k serviceKey) nftables.SetElement {
	return nftables.SetElement{Key: dispatchKey(k), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: serviceName(chainPrefix, k)}}
}

// planRemove makes a service the table no longer has unreachable: its
// dispatch elements go and its chain is flushed; planDelete deletes the
// chain and map in a later transaction (a kernel before 6.2 may still
// count the chain as used within the one that deleted the element).
func (x *NFTables) planRemove(t *txn, k serviceKey, f *lbFamily, hs *lbService) planned {
	if !hs.Live && !hs.Refused && !hs.Stray && hs.Rules == 0 {
		return planGone
	}
	key := []nftables.SetElement{{Key: dispatchKey(k)}}
	if hs.Live || hs.Stray {
		_ = x.conn.SetDeleteElements(f.vips, key)
	}
	if hs.Refused {
		_ = x.conn.SetDeleteElements(x.refuseSet(k), key)
	}
	if hs.HasChain {
		x.conn.FlushChain(f.serviceChain(k))
	}
	t.svcs = append(t.svcs, k)
	t.commit = append(t.commit, func() {
		s := *hs
		s.Live, s.Refused, s.Stray, s.Rules, s.RuleMod = false, false, false, 0, 0
		x.view.Svcs[k] = &s
	})
	return planGone
}

// refuseSet is the nobackend set of k's family.
func (x *NFTables) refuseSet(k serviceKey) *nftables.Set {
	m, _ := x.main(k)
	return m.refuse
}

// planDispatch makes a new service reachable.
func (x *NFTables) planDispatch(t *txn, k serviceKey) {
	f, _ := x.family(k)
	s := x.view.Svcs[k]
	if s.Mod > 0 {
		_ = x.conn.SetAddElements(f.vips, []nftables.SetElement{dispatchElement(f, k)})
	} else {
		_ = x.conn.SetAddElements(x.refuseSet(k), []nftables.SetElement{{Key: dispatchKey(k)}})
	}
	t.elems++
	t.svcs = append(t.svcs, k)
	t.commit = append(t.commit, func() {
		s.Live, s.Refused = s.Mod > 0, s.Mod == 0
	})
}

// planDelete deletes the chain and map of an unreachable service.
func (x *NFTables) planDelete(t *txn, k serviceKey, s *lbService) {
	f, _ := x.family(k)
	if s.HasChain {
		x.conn.DelChain(f.serviceChain(k))
	}
	if s.HasMap {
		x.conn.DelSet(f.serviceMap(k))
	}
	t.svcs = append(t.svcs, k)
	t.commit = append(t.commit, func() { delete(x.view.Svcs, k) })
}

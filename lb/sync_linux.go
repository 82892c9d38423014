package lb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// sync reads the kernel if the view is not valid (or to repair), diffs, and
// writes. fresh lists services whose connection counts were just read. It
// returns the number of writes.
func (x *IPVS) sync(ctx context.Context, trig trigger, fresh map[serviceKey]struct{}) (int, error) {
	start := time.Now()
	defer func() { x.met.syncSeconds.WithLabelValues(string(trig)).Observe(time.Since(start).Seconds()) }()
	full := trig == trigRepair || !x.valid
	drift := 0
	if full {
		if err := x.read(); err != nil {
			x.valid = false
			x.readErr = err.Error()
			return 0, err
		}
		if trig == trigRepair {
			n, err := x.sys.setSysctls()
			drift += n
			if err != nil {
				x.log.Warn("ipvs sysctls not set", "err", err)
			}
		}
	}
	p := diff(x.want, x.have, x.drains, drainPolicy{Now: x.now(), For: x.cfg.Drain, Fresh: full, FreshSvcs: fresh})
	x.errs, x.addrErrs = map[serviceKey]string{}, map[netip.Addr]string{}
	var errs []error

	// Addresses (and masquerade entries) come before their services and
	// go after them; they change only with the set of services.
	addrs := full || !x.addrsOK || slices.ContainsFunc(p.Ops, func(o op) bool {
		return o.Kind == opAddService || o.Kind == opDelService
	})
	writes := 0
	if addrs {
		n, err := x.syncAddrs(x.neededAddrs(), full)
		writes, drift = writes+n, drift+n
		errs = append(errs, err)
	}

	n, ipvsDrift, err := x.write(ctx, p)
	writes, drift = writes+n, drift+ipvsDrift
	errs = append(errs, err)
	x.drains = p.Drains

	if addrs {
		n, err := x.syncAddrs(x.neededAddrs(), false)
		writes, drift = writes+n, drift+n
		errs = append(errs, err)
		x.addrsOK = err == nil
	}

	if trig == trigRepair && drift > 0 {
		x.met.driftRepairs.Add(float64(drift))
		x.log.Info("repaired dataplane drift", "repairs", drift, "took", time.Since(start))
	}
	if full || writes > 0 {
		x.gauges()
	}
	x.releaseIPVIPs()
	return writes, errors.Join(errs...)
}

// neededAddrs returns the VIP addresses the interface needs: those of the
// table and of the services still in the view (draining). The result may
// be x.wantAddrs itself and must not be modified.
func (x *IPVS) neededAddrs() map[netip.Addr]struct{} {
	need := x.wantAddrs
	for k := range x.have {
		if _, ok := need[k.Addr]; ok {
			continue
		}
		if len(need) == len(x.wantAddrs) {
			need = maps.Clone(x.wantAddrs)
			if need == nil {
				need = map[netip.Addr]struct{}{}
			}
		}
		need[k.Addr] = struct{}{}
	}
	return need
}

// releaseIPVIPs forgets the IP VIP addresses that no table asks for and on
// which the kernel has no service left (drained and deleted), once the
// view matches the kernel: services on them are no longer vipbridge's.
func (x *IPVS) releaseIPVIPs() {
	if !x.valid {
		return
	}
	var gone map[netip.Addr]struct{}
	for a := range x.ipVIPs {
		if _, ok := x.wantAddrs[a]; !ok {
			if gone == nil {
				gone = map[netip.Addr]struct{}{}
			}
			gone[a] = struct{}{}
		}
	}
	if len(gone) == 0 {
		return
	}
	for k := range x.have {
		delete(gone, k.Addr)
	}
	for a := range gone {
		delete(x.ipVIPs, a)
	}
}

// read replaces the view with the kernel's owned services and addresses.
func (x *IPVS) read() error {
	svcs, err := x.k.GetServices()
	if err != nil {
		return fmt.Errorf("list ipvs services: %w", err)
	}
	h := make(have, len(x.want))
	for _, s := range svcs {
		k, hs, ok := fromService(s)
		if !ok || !x.owns(k) {
			continue
		}
		if hs.Dests, err = readDests(x.k, k); err != nil {
			return fmt.Errorf("list destinations of %s: %w", k, err)
		}
		h[k] = hs
	}
	as, err := x.sys.addrs()
	if err != nil {
		return err
	}
	addrs := make(map[netip.Addr]struct{}, len(as))
	for _, a := range as {
		addrs[a] = struct{}{}
	}
	x.have, x.addrs, x.valid, x.readErr = h, addrs, true, ""
	return nil
}

func (x *IPVS) inRanges(a netip.Addr) bool {
	for _, p := range x.cfg.Ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// owns reports whether service k is vipbridge's: on its ranges or IP VIP
// addresses, asked for by the table, or already in the view.
func (x *IPVS) owns(k serviceKey) bool {
	_, mine := x.ipVIPs[k.Addr]
	return mine || x.inRanges(k.Addr) || x.want[k] != nil || x.have[k] != nil
}

// write makes the plan's writes in order, keeping the view up to date. It
// returns the number of writes and of those that were not expected drain
// deletions (drift, when repairing).
func (x *IPVS) write(ctx context.Context, p plan) (writes, drift int, _ error) {
	if len(p.Ops) == 0 {
		return 0, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	var results []error
	if b, ok := x.k.(batchWriter); ok {
		results = b.writeBatch(p.Ops)
	} else {
		results = make([]error, len(p.Ops))
		for i, o := range p.Ops {
			results[i] = write(x.k, o)
		}
	}
	var errs []error
	var flows []flow
	for i, o := range p.Ops {
		x.met.ops.WithLabelValues(o.Kind.String()).Inc()
		if err := results[i]; err != nil {
			x.met.opErrors.WithLabelValues(o.Kind.String()).Inc()
			x.errs[o.Svc] = err.Error()
			x.valid = false
			errs = append(errs, fmt.Errorf("%s %s: %w", o.Kind, o.describe(), err))
			continue
		}
		writes++
		if !o.Drained {
			drift++
		}
		flows = append(flows, o.flows()...)
		x.have.apply(o)
	}
	if len(flows) > 0 {
		x.met.ops.WithLabelValues("flush_conntrack").Inc()
		if err := x.sys.flushFlows(flows); err != nil {
			// IPVS expires the entries itself (expire_nodest_conn); a
			// stale NAT binding costs a flow its next datagrams at most.
			x.met.opErrors.WithLabelValues("flush_conntrack").Inc()
			x.log.Warn("conntrack entries of removed udp backends not flushed", "backends", len(flows), "err", err)
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return writes, drift, errors.Join(errs...)
}

// syncAddrs makes the owned interface addresses and the masquerade set
// equal to need and returns the number of changes.
func (x *IPVS) syncAddrs(need map[netip.Addr]struct{}, verify bool) (int, error) {
	var add, del []netip.Addr
	for a := range need {
		if _, ok := x.addrs[a]; !ok {
			add = append(add, a)
		}
	}
	for a := range x.addrs {
		if _, ok := need[a]; !ok {
			del = append(del, a)
		}
	}
	var errs []error
	n := 0
	if len(add)+len(del) > 0 {
		failed := x.sys.setAddrs(add, del)
		for i, a := range append(add, del...) {
			op := "add_address"
			if i >= len(add) {
				op = "del_address"
			}
			x.met.ops.WithLabelValues(op).Inc()
			if err := failed[a]; err != nil {
				x.met.opErrors.WithLabelValues(op).Inc()
				x.addrErrs[a] = err.Error()
				x.valid = false
				errs = append(errs, err)
				continue
			}
			if op == "add_address" {
				x.addrs[a] = struct{}{}
			} else {
				delete(x.addrs, a)
			}
			n++
		}
	}
	m, err := x.sys.masquerade(need, verify)
	if m > 0 {
		x.met.ops.WithLabelValues("masquerade_set").Add(float64(m))
	}
	if err != nil {
		x.met.opErrors.WithLabelValues("masquerade_set").Inc()
		errs = append(errs, err)
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return n + m, errors.Join(errs...)
}

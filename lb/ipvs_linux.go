package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

var _ discovery.Dataplane = (*IPVS)(nil)

// system is the host setup besides IPVS that the dataplane keeps; netHost
// implements it, fakeSystem in tests.
type system interface {
	// addrs lists the VIP addresses made local by this dataplane (in
	// this run or an earlier one), creating the interface if needed.
	addrs() ([]netip.Addr, error)
	// setAddrs makes addresses local or not any more and returns those
	// it could not change, with the reason.
	setAddrs(add, del []netip.Addr) map[netip.Addr]error
	// masquerade makes the masquerade set hold exactly vips, reading the
	// kernel first if verify; it returns how many changes that took.
	masquerade(vips map[netip.Addr]struct{}, verify bool) (int, error)
	// setSysctls sets the IPVS sysctls and returns how many it changed.
	setSysctls() (int, error)
	// flushFlows deletes the conntrack entries of removed UDP backends.
	flushFlows([]flow) error
}

// trigger says why a sync runs, for metrics.
type trigger string

const (
	trigApply  trigger = "apply"
	trigRepair trigger = "repair"
	trigDrain  trigger = "drain"
)

// defaultDrainPoll is how often the connection counts of draining backends
// are read.
const defaultDrainPoll = time.Second

// IPVS is the dataplane that programs Linux IPVS: one virtual service per
// (protocol, VIP address, port) with NAT forwarding to the VIP's backends,
// each VIP address made local through a dummy interface, and an nftables
// masquerade rule for the forwarded traffic (DESIGN.md "Dataplane").
//
// Apply converges the kernel to a table. Between full reads of the kernel
// it diffs against its own view of the kernel (the last read plus its own
// writes): IPVS cannot dump every destination at once, so a full read costs
// one request per service, and an Apply that changes one backend should not
// cost that. The view is read again on start, after any failed write (Apply
// then retries once at once) and by Run every RepairInterval, which repairs
// any drift (a service deleted by hand, a lost address). A sync with
// nothing to change writes nothing.
//
// It owns only the services on addresses in its Ranges, in Owned(), or in
// the tables it is given, and the local routes it marked as its own
// (netHost), and never touches others. Calls are serialised.
type IPVS struct {
	cfg       IPVSConfig
	log       *slog.Logger
	met       *ipvsMetrics
	k         kernel
	sys       system
	now       func() time.Time
	drainPoll time.Duration
	closeFn   func()
	closeOnce sync.Once

	mu        sync.Mutex // serialises syncs and guards the fields below
	applied   bool       // Apply ran: want is authoritative
	want      want
	wantAddrs map[netip.Addr]struct{}
	table     *discovery.Table        // the last applied
	have      have                    // kernel view, owned services only
	addrs     map[netip.Addr]struct{} // VIP addresses made local
	valid     bool                    // have and addrs match the kernel as far as known
	addrsOK   bool                    // addrs and the masquerade set match neededAddrs()
	drains    map[drainKey]time.Time  // draining TCP backends → deadline
	errs      map[serviceKey]string   // failed writes of the last sync
	addrErrs  map[netip.Addr]string
	readErr   string // why the last read of the kernel failed

	stateMu   sync.Mutex // guards lastState
	lastState map[discovery.VIPKey][]ServiceState
}

// NewIPVS checks that the kernel has IPVS, sets the IPVS sysctls and
// creates the VIP interface. It programs no service before the first Apply,
// so that a restart leaves the kernel as it is until the stored table is
// applied.
func NewIPVS(cfg IPVSConfig) (*IPVS, error) {
	k, err := newNetlinkKernel()
	if err != nil {
		return nil, fmt.Errorf("ipvs dataplane: %w", err)
	}
	host, err := newNetHost(cfg.withDefaults().Interface)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("ipvs dataplane: %w", err)
	}
	x, err := newIPVS(cfg, k, host)
	if err != nil {
		k.close()
		host.close()
		return nil, err
	}
	x.closeFn = func() {
		k.close()
		host.close()
	}
	return x, nil
}

func newIPVS(cfg IPVSConfig, k kernel, sys system) (*IPVS, error) {
	cfg = cfg.withDefaults()
	if _, err := sys.setSysctls(); err != nil {
		return nil, fmt.Errorf("ipvs dataplane: %w", err)
	}
	if _, err := sys.addrs(); err != nil {
		return nil, fmt.Errorf("ipvs dataplane: %w", err)
	}
	x := &IPVS{
		cfg:       cfg,
		log:       cfg.Logger,
		met:       newIPVSMetrics(),
		k:         k,
		sys:       sys,
		now:       time.Now,
		drainPoll: defaultDrainPoll,
		have:      have{},
		addrs:     map[netip.Addr]struct{}{},
		drains:    map[drainKey]time.Time{},
	}
	if err := registerMetrics(cfg.Registerer, x.met.collectors()...); err != nil {
		return nil, fmt.Errorf("ipvs dataplane: register metrics: %w", err)
	}
	return x, nil
}

// Close releases the netlink sockets. It leaves the kernel programmed, so
// that traffic flows on while vipbridge restarts.
func (x *IPVS) Close() {
	if x.closeFn != nil {
		x.closeOnce.Do(x.closeFn)
	}
}

// Apply converges the kernel to t: it implements discovery.Dataplane. It
// returns an error if any write failed; the services that did program stay
// programmed, and the next Apply or repair retries the rest.
func (x *IPVS) Apply(ctx context.Context, t *discovery.Table) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.want, x.table = desired(t, x.cfg.Scheduler), t
	wantAddrs := make(map[netip.Addr]struct{}, len(x.want))
	for k := range x.want {
		wantAddrs[k.Addr] = struct{}{}
	}
	if !maps.Equal(wantAddrs, x.wantAddrs) {
		x.wantAddrs, x.addrsOK = wantAddrs, false
	}
	x.applied = true
	cached := x.valid
	writes, err := x.sync(ctx, trigApply, nil)
	if err != nil && cached && ctx.Err() == nil {
		// The view may be stale (a service deleted by hand): read the
		// kernel and try once more.
		x.log.Debug("ipvs apply failed on the cached view, reading the kernel", "generation", t.Generation, "err", err)
		var more int
		more, err = x.sync(ctx, trigApply, nil)
		writes += more
	}
	if err != nil {
		return fmt.Errorf("program ipvs: %w", err)
	}
	if writes > 0 && !t.Built.IsZero() {
		x.met.tableToKernel.Observe(time.Since(t.Built).Seconds())
	}
	x.log.Debug("applied table", "generation", t.Generation, "services", len(x.want), "writes", writes)
	return nil
}

// Run repairs drift every RepairInterval and deletes draining backends once
// they have no connection or their time is over, until ctx ends. It does
// nothing before the first Apply. It returns nil when ctx is cancelled.
func (x *IPVS) Run(ctx context.Context) error {
	repair := time.NewTicker(x.cfg.RepairInterval)
	defer repair.Stop()
	drain := time.NewTicker(x.drainPoll)
	defer drain.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-repair.C:
			x.repair(ctx)
		case <-drain.C:
			x.drainPass(ctx)
		}
	}
}

func (x *IPVS) repair(ctx context.Context) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.applied {
		return
	}
	if _, err := x.sync(ctx, trigRepair, nil); err != nil && ctx.Err() == nil {
		x.log.Warn("ipvs repair failed, retrying at the next repair", "err", err)
	}
}

// drainPass reads the destinations of the services with draining backends
// and deletes those that are done.
func (x *IPVS) drainPass(ctx context.Context) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.applied || len(x.drains) == 0 {
		return
	}
	fresh := make(map[serviceKey]struct{})
	for dk := range x.drains {
		fresh[dk.Svc] = struct{}{}
	}
	for k := range fresh {
		if !x.valid {
			break
		}
		ds, err := readDests(x.k, k)
		if err != nil {
			x.valid = false // a full read follows
			break
		}
		if hs := x.have[k]; hs != nil {
			hs.Dests = ds
		}
	}
	if _, err := x.sync(ctx, trigDrain, fresh); err != nil && ctx.Err() == nil {
		x.log.Warn("ipvs drain failed, retrying", "err", err)
	}
}

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

// read replaces the view with the kernel's owned services and addresses.
func (x *IPVS) read() error {
	owned := x.ownedSet()
	svcs, err := x.k.GetServices()
	if err != nil {
		return fmt.Errorf("list ipvs services: %w", err)
	}
	h := make(have, len(x.want))
	for _, s := range svcs {
		k, hs, ok := fromService(s)
		if !ok || !x.owns(k, owned) {
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

func (x *IPVS) ownedSet() map[netip.Addr]struct{} {
	if x.cfg.Owned == nil {
		return nil
	}
	as := x.cfg.Owned()
	out := make(map[netip.Addr]struct{}, len(as))
	for _, a := range as {
		out[a.Unmap()] = struct{}{}
	}
	return out
}

func (x *IPVS) inRanges(a netip.Addr) bool {
	for _, p := range x.cfg.Ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// owns reports whether service k is vipbridge's: on its addresses, asked
// for by the table, or already in the view.
func (x *IPVS) owns(k serviceKey, owned map[netip.Addr]struct{}) bool {
	_, mine := owned[k.Addr]
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

func (x *IPVS) gauges() {
	var active, idle, draining int
	for k, hs := range x.have {
		for _, hd := range hs.Dests {
			switch _, d := x.drains[drainKey{Svc: k, Dest: hd.Key}]; {
			case d:
				draining++
			case hd.Weight > 0:
				active++
			default:
				idle++
			}
		}
	}
	x.met.services.Set(float64(len(x.have)))
	x.met.backends.WithLabelValues("active").Set(float64(active))
	x.met.backends.WithLabelValues("idle").Set(float64(idle))
	x.met.backends.WithLabelValues("draining").Set(float64(draining))
}

// State returns the dataplane state of every VIP of the last applied
// table, one ServiceState per VIP address (IPv4 first). While a sync runs
// (a full read of a large table takes a while) it returns the state its
// previous call returned instead of waiting. Callers must not modify the
// result.
func (x *IPVS) State() map[discovery.VIPKey][]ServiceState {
	x.stateMu.Lock()
	last := x.lastState
	x.stateMu.Unlock()
	if last != nil && !x.mu.TryLock() {
		return last
	}
	if last == nil {
		x.mu.Lock()
	}
	defer x.mu.Unlock()
	st := x.state()
	x.stateMu.Lock()
	x.lastState = st
	x.stateMu.Unlock()
	return st
}

func (x *IPVS) state() map[discovery.VIPKey][]ServiceState {
	if x.table == nil {
		return nil
	}
	out := make(map[discovery.VIPKey][]ServiceState, len(x.table.VIPs))
	for i := range x.table.VIPs {
		v := &x.table.VIPs[i]
		var states []ServiceState
		for _, k := range serviceKeys(v) {
			states = append(states, x.serviceState(k))
		}
		out[v.Key] = states
	}
	return out
}

func (x *IPVS) serviceState(k serviceKey) ServiceState {
	s := ServiceState{Protocol: discovery.Protocol(k.Proto), Addr: netip.AddrPortFrom(k.Addr, k.Port)}
	hs := x.have[k]
	switch {
	case x.errs[k] != "":
		s.Status, s.Reason = StatusError, x.errs[k]
	case x.addrErrs[k.Addr] != "":
		s.Status, s.Reason = StatusError, x.addrErrs[k.Addr]
	case programmed(x.want[k], hs):
		s.Status = StatusProgrammed
	default:
		s.Status, s.Reason = StatusPending, x.readErr
	}
	if hs == nil {
		return s
	}
	s.Backends = make([]BackendState, len(hs.Dests))
	for i, hd := range hs.Dests {
		_, draining := x.drains[drainKey{Svc: k, Dest: hd.Key}]
		s.Backends[i] = BackendState{
			Addr: netip.AddrPortFrom(hd.Key.Addr, hd.Key.Port), Weight: hd.Weight,
			ActiveConns: hd.Active, InactiveConns: hd.Inactive, Draining: draining,
		}
	}
	return s
}

// programmed reports whether hs has every backend of ws at its weight.
func programmed(ws *wantService, hs *haveService) bool {
	if ws == nil || hs == nil || hs.Sched != ws.Sched {
		return false
	}
	for _, wd := range ws.Dests {
		if hd, ok := hs.dest(wd.Key); !ok || hd.Weight != wd.Weight {
			return false
		}
	}
	return true
}

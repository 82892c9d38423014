package lb

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
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
// It owns only the services on addresses in its Ranges or on the IP VIP
// addresses of the tables it is given, and the local routes it marked as
// its own (netHost), and never touches others. An IP VIP address (one
// outside the Ranges) is owned from the first table that asks for it,
// the first table included (the one discovery loaded from its store,
// which is how a restarted daemon cleans its leftovers on such an
// address), until no table asks for it and the kernel has no service on
// it any more: then the address may serve another process. Calls are
// serialised.
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
	ipVIPs    map[netip.Addr]struct{} // owned addresses outside Ranges (see IPVS)
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
	// The nftables dataplane's tables, left by an earlier run with --lb
	// nftables, would DNAT the VIPs' connections before IPVS saw them.
	if n, err := removeLBTables(0); err != nil {
		x.log.Warn("tables of the nftables dataplane not removed", "err", err)
	} else if n > 0 {
		x.log.Info("removed the nftables dataplane's tables", "tables", n)
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
		log:       cfg.Logger.With("component", "lb"),
		met:       newIPVSMetrics(),
		k:         k,
		sys:       sys,
		now:       time.Now,
		drainPoll: defaultDrainPoll,
		have:      have{},
		addrs:     map[netip.Addr]struct{}{},
		ipVIPs:    map[netip.Addr]struct{}{},
		drains:    map[drainKey]time.Time{},
	}
	if err := metrics.Register(cfg.Registerer, x.met.collectors()...); err != nil {
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
		for a := range wantAddrs {
			if !x.inRanges(a) {
				x.ipVIPs[a] = struct{}{}
			}
		}
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
	x.met.applied(t, writes)
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

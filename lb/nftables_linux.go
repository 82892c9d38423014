// This file is the nftables dataplane: its lifecycle (New, Apply, Run,
// Close). The ruleset is in nftruleset_linux.go, the sync in
// nftsync_linux.go.

package lb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
)

var _ discovery.Dataplane = (*NFTables)(nil)

// fullReadEvery forces a full read of the tables every that many repairs
// even when the ruleset generation did not move (a foreign commit racing
// the dataplane's own could hide behind the generation it read).
const fullReadEvery = 10

// NFTables is the dataplane that load-balances with nftables, for kernels
// without IPVS (kube-proxy's nftables mode, with weights): per address
// family one table "vipbridge_lb" in which a verdict map keyed by address
// · protocol · port sends the first packet of a connection to its
// service's chain (the services are spread over lbShards such tables per
// family), whose one rule picks a backend by numgen random over a
// weighted interval map and DNATs to it. Conntrack carries the rest of the
// connection, so a backend taken out of the map (weight 0, or gone) gets
// no new connection while its established ones go on; a TCP backend that
// left keeps them for Drain, a UDP one loses them at once (its conntrack
// entries are deleted). A service with no backend is refused at once: a
// TCP reset or an ICMP port unreachable. Forwarded traffic to the VIPs is
// masqueraded by the table "inet vipbridge", as with IPVS (nftMasq).
//
// A change to one service is one nftables transaction. A build of many
// goes in bounded transactions, with the services made reachable (their
// dispatch elements added) last, so no client sees a half-built service;
// a sync with nothing to change writes nothing. Drift (a table flushed or
// edited by hand) is found by Run every RepairInterval, first by the
// ruleset generation, and repaired; a family whose table lost its base is
// rebuilt whole. Only its own tables are ever touched. Calls are
// serialised.
type NFTables struct {
	cfg     NFTConfig
	log     *slog.Logger
	met     *ipvsMetrics
	conn    *nftables.Conn
	fams    []*lbFamily // IPv4's lbShards tables, then IPv6's
	masq    *nftMasq
	ct      *netlink.Handle // conntrack
	now     func() time.Time
	repairs int

	mu      sync.Mutex // serialises syncs and guards the fields below
	applied bool
	want    want
	table   *discovery.Table
	view    *lbView                             // the kernel as last read plus our writes; nil: unknown
	gen     uint32                              // the ruleset generation after our last sync
	drains  map[drainKey]time.Time              // TCP backends that left → end of drain
	flows   []flow                              // of UDP backends that left, deleted after the next sync
	vips    map[discovery.VIPKey]*discovery.VIP // of the last applied table
	dirty   map[serviceKey]struct{}             // the services Apply's sync must compare; nil: all
	// addrsMoved: the VIP addresses may have changed since the last sync.
	addrsMoved bool
	clean      bool // the last sync made every write
	errs       map[serviceKey]string
	readErr    string

	stateMu   sync.Mutex
	lastState map[discovery.VIPKey][]ServiceState
}

// NewNFTables opens nftables and conntrack netlink in the configured
// namespace. It checks the kernel's features with the same probe as
// ProbeNFTables and programs nothing before the first Apply.
func NewNFTables(cfg NFTConfig) (*NFTables, error) {
	cfg = cfg.withDefaults()
	if err := probeNFTables(cfg.NetNS); err != nil {
		return nil, fmt.Errorf("nftables dataplane: %w", err)
	}
	conn, err := newNFTConn(cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("nftables dataplane: open nftables netlink: %w", err)
	}
	masq, err := newNFTMasq(cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("nftables dataplane: %w", err)
	}
	ct, err := netlink.NewHandleAt(netns.NsHandle(nsOrSelf(cfg.NetNS)))
	if err != nil {
		masq.close()
		return nil, fmt.Errorf("nftables dataplane: open conntrack netlink: %w", err)
	}
	x := &NFTables{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "lb"),
		met:    newIPVSMetrics(),
		conn:   conn,
		masq:   masq,
		ct:     ct,
		now:    time.Now,
		drains: map[drainKey]time.Time{},
	}
	for _, v6 := range []bool{false, true} {
		for i := range lbShards {
			x.fams = append(x.fams, newLBFamily(v6, i))
		}
	}
	if err := metrics.Register(cfg.Registerer, x.met.collectors()...); err != nil {
		x.Close()
		return nil, fmt.Errorf("nftables dataplane: register metrics: %w", err)
	}
	return x, nil
}

// nsOrSelf is fd, or with 0 (the caller's namespace) the handle
// netlink.NewHandleAt takes for "this namespace".
func nsOrSelf(fd int) int {
	if fd == 0 {
		return int(netns.None())
	}
	return fd
}

// Close releases the netlink sockets and leaves the kernel programmed, so
// that traffic flows on while vipbridge restarts.
func (x *NFTables) Close() {
	x.masq.close()
	x.ct.Close()
}

// Apply converges the kernel to t: it implements discovery.Dataplane. On
// an error the services that did program stay programmed, and the next
// Apply or repair retries the rest (after reading the kernel again).
func (x *NFTables) Apply(ctx context.Context, t *discovery.Table) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	writes, err := x.apply(ctx, t)
	if err != nil {
		return fmt.Errorf("program nftables: %w", err)
	}
	x.met.applied(t, writes)
	x.log.Debug("applied table", "generation", t.Generation, "services", len(x.want), "writes", writes)
	return nil
}

// Run repairs drift every RepairInterval and ends the drain of TCP
// backends whose time is over, until ctx ends; it returns nil then.
//
// Between repairs it follows nftables notifications: a commit that touched
// its tables triggers a repair at once, which reads the tables back only
// if the ruleset generation moved since its own last sync.
func (x *NFTables) Run(ctx context.Context) error {
	repair := time.NewTicker(x.cfg.RepairInterval)
	defer repair.Stop()
	drain := time.NewTicker(defaultDrainPoll)
	defer drain.Stop()
	touched := make(chan struct{}, 1)
	go func() {
		if err := watch(ctx, x.cfg.NetNS, touched); err != nil {
			x.log.Warn("nftables notifications not followed, drift is repaired every repair interval", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-repair.C:
			x.repair(ctx, true)
		case <-touched:
			x.repair(ctx, false)
		case <-drain.C:
			x.endDrains()
		}
	}
}

// repair reads the tables back and repairs drift if the ruleset
// generation moved since the last sync (or, when periodic, every
// fullReadEvery-th time regardless).
func (x *NFTables) repair(ctx context.Context, periodic bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.applied {
		return
	}
	if periodic {
		x.repairs++
	}
	if (!periodic || x.repairs%fullReadEvery != 0) && x.view != nil {
		if g, err := generation(x.cfg.NetNS); err == nil && g == x.gen {
			return
		}
	}
	x.view = nil
	if _, err := x.sync(ctx, trigRepair); err != nil && ctx.Err() == nil {
		x.log.Warn("nftables repair failed, retrying at the next repair", "err", err)
	}
}

// apply takes t as the wanted table and syncs, comparing only the services
// of the VIPs that changed when it can; it returns the services written.
func (x *NFTables) apply(ctx context.Context, t *discovery.Table) (int, error) {
	if !x.applied && x.view == nil {
		// The first table since start: read what an earlier run
		// programmed first, so that its backends this table no longer
		// has drain (TCP) or lose their flows (UDP) as any other that
		// leaves (leaving). A failed read is retried by sync.
		if v, err := x.readView(); err == nil {
			x.view = v
		}
	}
	w := desired(t, "")
	dirty := x.changed(t)
	x.leaving(w, dirty)
	x.addrsMoved = dirty == nil
	for k := range dirty {
		x.addrsMoved = x.addrsMoved || (x.want[k] == nil) != (w[k] == nil)
	}
	x.want, x.table, x.applied, x.dirty = w, t, true, dirty
	defer func() { x.dirty, x.addrsMoved = nil, true }()
	return x.sync(ctx, trigApply)
}

// changed returns the services of the VIPs that differ between the last
// applied table and t, or nil when every service must be compared (the
// first table, or the last sync failed or had to read the kernel).
// Consecutive tables share the VIPs that did not change (discovery's
// VIPList keeps untouched chunks), so a VIP at the same address is the
// same VIP; others are compared.
func (x *NFTables) changed(t *discovery.Table) map[serviceKey]struct{} {
	ptrs := make(map[discovery.VIPKey]*discovery.VIP, t.VIPs.Len())
	dirty := map[serviceKey]struct{}{}
	mark := func(v *discovery.VIP) {
		for _, k := range serviceKeys(v) {
			dirty[k] = struct{}{}
		}
	}
	for v := range t.VIPs.All() {
		ptrs[v.Key] = v
		if old := x.vips[v.Key]; old != v && !sameVIP(old, v) {
			mark(v)
			if old != nil {
				mark(old)
			}
		}
	}
	for key, old := range x.vips {
		if ptrs[key] == nil {
			mark(old)
		}
	}
	full := x.vips == nil || x.view == nil || !x.clean
	x.vips = ptrs
	if full {
		return nil
	}
	return dirty
}

// sameVIP reports whether old (nil: none) and v ask the dataplane for the
// same services.
func sameVIP(old, v *discovery.VIP) bool {
	return old != nil && old.Addr4 == v.Addr4 && old.Addr6 == v.Addr6 && slices.Equal(old.Backends, v.Backends)
}

// leaving starts the drain of the backends that w no longer has: a UDP
// one's flows are deleted at once, a TCP one's when Drain is over. A
// backend back in w stops draining. Only the services in dirty can have
// changed (nil: any).
func (x *NFTables) leaving(w want, dirty map[serviceKey]struct{}) {
	var flows []flow
	now := x.now()
	gone := func(k serviceKey, d destKey) {
		if ws := w[k]; ws != nil && hasDest(ws.Dests, d) {
			return
		}
		if k.Proto == protoUDP {
			flows = append(flows, flow{Proto: protoUDP, VIP: netip.AddrPortFrom(k.Addr, k.Port), Backend: d.Addr})
			return
		}
		dk := drainKey{Svc: k, Dest: d}
		if _, ok := x.drains[dk]; !ok {
			x.drains[dk] = now.Add(x.cfg.Drain)
		}
	}
	for k, ws := range x.want {
		if _, ok := dirty[k]; dirty != nil && !ok {
			continue
		}
		if nw := w[k]; nw != nil && slices.Equal(nw.Dests, ws.Dests) {
			continue
		}
		for _, d := range ws.Dests {
			gone(k, d.Key)
		}
	}
	if x.view != nil { // after a restart: what an earlier run programmed
		for k, s := range x.view.Svcs {
			if x.want[k] != nil {
				continue
			}
			for _, sl := range s.Slots {
				gone(k, sl.Dest)
			}
		}
	}
	for dk := range x.drains {
		if ws := w[dk.Svc]; ws != nil && hasDest(ws.Dests, dk.Dest) {
			delete(x.drains, dk)
		}
	}
	x.flows = append(x.flows, flows...)
}

func hasDest(ds []wantDest, d destKey) bool {
	for _, wd := range ds {
		if wd.Key == d {
			return true
		}
	}
	return false
}

// endDrains deletes the conntrack entries of TCP backends whose drain is
// over.
func (x *NFTables) endDrains() {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	var flows []flow
	for dk, deadline := range x.drains {
		if now.Before(deadline) {
			continue
		}
		flows = append(flows, flow{Proto: protoTCP, VIP: netip.AddrPortFrom(dk.Svc.Addr, dk.Svc.Port), Backend: dk.Dest.Addr})
		delete(x.drains, dk)
	}
	if len(flows) == 0 {
		return
	}
	x.flush(flows)
}

// flush deletes the conntrack entries of flows, logging a failure: a
// stale binding costs a flow its next packets at most.
func (x *NFTables) flush(flows []flow) {
	x.met.ops.WithLabelValues("flush_conntrack").Inc()
	if err := deleteFlows(x.ct, flows); err != nil {
		x.met.opErrors.WithLabelValues("flush_conntrack").Inc()
		x.log.Warn("conntrack entries of removed backends not deleted", "backends", len(flows), "err", err)
	}
}

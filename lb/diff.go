package lb

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// IP protocol numbers as IPVS uses them.
const (
	protoTCP = uint16(discovery.TCP)
	protoUDP = uint16(discovery.UDP)
)

// IPVS service flags (linux/ip_vs.h). The kernel reports its internal
// IP_VS_SVC_F_HASHED bit in dumps; every other bit must be clear on ours
// (no persistence, no one-packet scheduling).
const svcFlagHashed = 0x0002

// Forwarding methods (linux/ip_vs.h IP_VS_CONN_F_FWD_MASK); ours are all
// masquerade (NAT), which is 0.
const (
	fwdMask = 0x0007
	fwdMasq = 0x0000
)

// serviceKey identifies an IPVS virtual service.
type serviceKey struct {
	Proto uint16 // IPPROTO_TCP or IPPROTO_UDP
	Addr  netip.Addr
	Port  uint16
}

// destKey identifies an IPVS destination (a backend) within its service.
type destKey struct {
	Addr netip.Addr
	Port uint16
}

// drainKey identifies a destination across services.
type drainKey struct {
	Svc  serviceKey
	Dest destKey
}

func (k serviceKey) String() string {
	return discovery.Protocol(k.Proto).String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func compareServiceKey(a, b serviceKey) int {
	if c := cmp.Compare(a.Proto, b.Proto); c != 0 {
		return c
	}
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

func compareDestKey(a, b destKey) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

// netmask is the IPVS netmask of a service on addr: /32 or /128.
func netmask(addr netip.Addr) uint32 {
	if addr.Is4() {
		return 0xffffffff
	}
	return 128
}

// flow selects the connection-tracking entries of one removed UDP backend:
// those addressed to VIP and answered by Backend.
type flow struct {
	Proto   uint16
	VIP     netip.AddrPort
	Backend netip.Addr
}

// wantService is a service as the table wants it.
type wantService struct {
	Sched string
	// Dests maps each backend to its weight (1, or 0 while unhealthy or
	// killing).
	Dests map[destKey]int
}

// want is the desired IPVS state.
type want map[serviceKey]*wantService

// haveService is a service as the kernel has it.
type haveService struct {
	Sched   string
	Flags   uint32
	Timeout uint32
	Netmask uint32
	Dests   map[destKey]haveDest
}

// haveDest is a destination as the kernel has it.
type haveDest struct {
	Weight   int
	Fwd      uint32
	Active   int
	Inactive int
}

// have is the kernel's IPVS state, restricted to the services lb owns.
type have map[serviceKey]*haveService

// desired turns a table into the IPVS services it needs: one per VIP
// address (Addr4, Addr6) with the backends of that address's family, all
// with scheduler sched. It also returns which services each VIP gave. A
// backend of the other family is skipped: IPVS cannot masquerade across
// families.
func desired(t *discovery.Table, sched string) (want, map[discovery.VIPKey][]serviceKey) {
	w := make(want, len(t.VIPs))
	keys := make(map[discovery.VIPKey][]serviceKey, len(t.VIPs))
	for i := range t.VIPs {
		v := &t.VIPs[i]
		for _, addr := range [2]netip.Addr{v.Addr4, v.Addr6} {
			if !addr.IsValid() {
				continue
			}
			addr = addr.Unmap()
			k := serviceKey{Proto: uint16(v.Key.Protocol), Addr: addr, Port: v.Key.Port}
			keys[v.Key] = append(keys[v.Key], k)
			ws := w[k]
			if ws == nil {
				ws = &wantService{Sched: sched, Dests: make(map[destKey]int, len(v.Backends))}
				w[k] = ws
			}
			for _, b := range v.Backends {
				ba := b.Addr.Addr().Unmap()
				if ba.Is4() != addr.Is4() {
					continue
				}
				dk := destKey{Addr: ba, Port: b.Addr.Port()}
				ws.Dests[dk] = max(ws.Dests[dk], int(b.Weight))
			}
		}
	}
	return w, keys
}

// opKind is one kind of IPVS write.
type opKind uint8

// The op kinds in the order a plan runs them: services appear before their
// destinations, draining weights drop before anything is deleted.
const (
	opAddService opKind = iota + 1
	opUpdateService
	opAddDest
	opUpdateDest
	opDelDest
	opDelService
)

var opNames = [...]string{
	opAddService:    "add_service",
	opUpdateService: "update_service",
	opAddDest:       "add_backend",
	opUpdateDest:    "update_backend",
	opDelDest:       "del_backend",
	opDelService:    "del_service",
}

func (k opKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return "unknown"
}

// op is one IPVS write.
type op struct {
	Kind opKind
	Svc  serviceKey
	// Sched is the scheduler of an added or updated service.
	Sched string
	// Dest and Weight are the destination of a destination op.
	Dest   destKey
	Weight int
	// Dests lists the destinations a deleted service still had, whose
	// connection-tracking entries go with it (UDP).
	Dests []destKey
	// Drained marks the deletion of a backend (or of a service with only
	// such backends) that left the table earlier and finished draining:
	// expected work, not drift.
	Drained bool
}

// describe names what o writes, for errors.
func (o op) describe() string {
	switch o.Kind {
	case opAddDest, opUpdateDest, opDelDest:
		return o.Svc.String() + " -> " + netip.AddrPortFrom(o.Dest.Addr, o.Dest.Port).String()
	}
	return o.Svc.String()
}

// flows returns the connection-tracking flows that a successful o leaves
// behind: those of the UDP backends it deleted.
func (o op) flows() []flow {
	if o.Svc.Proto != protoUDP {
		return nil
	}
	vip := netip.AddrPortFrom(o.Svc.Addr, o.Svc.Port)
	switch o.Kind {
	case opDelDest:
		return []flow{{Proto: protoUDP, VIP: vip, Backend: o.Dest.Addr}}
	case opDelService:
		out := make([]flow, len(o.Dests))
		for i, d := range o.Dests {
			out[i] = flow{Proto: protoUDP, VIP: vip, Backend: d.Addr}
		}
		return out
	}
	return nil
}

func compareOp(a, b op) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := compareServiceKey(a.Svc, b.Svc); c != 0 {
		return c
	}
	return compareDestKey(a.Dest, b.Dest)
}

// plan is the outcome of diff: the writes to make, in order, and the TCP
// backends that are draining once they are made.
type plan struct {
	Ops    []op
	Drains map[drainKey]time.Time
}

// drainPolicy says how backends that leave the table go.
type drainPolicy struct {
	// Now is the current time.
	Now time.Time
	// For is how long a TCP backend may drain before it is deleted with
	// its connections.
	For time.Duration
	// Fresh is true when have's connection counts were just read from the
	// kernel, FreshSvcs when those of the listed services were; only then
	// does a count of zero let a backend go at once.
	Fresh     bool
	FreshSvcs map[serviceKey]struct{}
}

func (pol drainPolicy) fresh(k serviceKey) bool {
	_, ok := pol.FreshSvcs[k]
	return pol.Fresh || ok
}

// diff computes the writes that turn h into w. drains holds the TCP
// backends draining so far (with their deadlines); diff does not modify it.
//
// A backend that is in h but not in w leaves: a UDP backend is deleted at
// once (its flows are flushed by the caller); a TCP backend is deleted
// once it has no active connection or its deadline has passed, and is set
// to weight 0 meanwhile. A service not in w is deleted when none of its
// backends still drains. A backend in w stops draining.
func diff(w want, h have, drains map[drainKey]time.Time, pol drainPolicy) plan {
	p := plan{Drains: make(map[drainKey]time.Time, len(drains))}
	for k, ws := range w {
		hs := h[k]
		if hs == nil {
			p.Ops = append(p.Ops, op{Kind: opAddService, Svc: k, Sched: ws.Sched})
			for dk, weight := range ws.Dests {
				p.Ops = append(p.Ops, op{Kind: opAddDest, Svc: k, Dest: dk, Weight: weight})
			}
			continue
		}
		if !serviceMatches(k, hs, ws) {
			p.Ops = append(p.Ops, op{Kind: opUpdateService, Svc: k, Sched: ws.Sched})
		}
		for dk, weight := range ws.Dests {
			hd, ok := hs.Dests[dk]
			switch {
			case !ok:
				p.Ops = append(p.Ops, op{Kind: opAddDest, Svc: k, Dest: dk, Weight: weight})
			case hd.Weight != weight || hd.Fwd&fwdMask != fwdMasq:
				p.Ops = append(p.Ops, op{Kind: opUpdateDest, Svc: k, Dest: dk, Weight: weight})
			}
		}
		for dk, hd := range hs.Dests {
			if _, ok := ws.Dests[dk]; !ok {
				p.leave(k, dk, hd, drains, pol)
			}
		}
	}
	for k, hs := range h {
		if w[k] == nil {
			p.leaveService(k, hs, drains, pol)
		}
	}
	slices.SortFunc(p.Ops, compareOp)
	return p
}

func serviceMatches(k serviceKey, hs *haveService, ws *wantService) bool {
	return hs.Sched == ws.Sched && hs.Flags&^svcFlagHashed == 0 && hs.Timeout == 0 && hs.Netmask == netmask(k.Addr)
}

// leaveDecision says what becomes of one leaving backend.
func leaveDecision(k serviceKey, dk destKey, hd haveDest, drains map[drainKey]time.Time, pol drainPolicy) (gone bool, deadline time.Time, tracked bool) {
	if k.Proto != protoTCP {
		return true, time.Time{}, false
	}
	deadline, tracked = drains[drainKey{Svc: k, Dest: dk}]
	if pol.fresh(k) && hd.Active == 0 {
		return true, deadline, tracked
	}
	if !tracked {
		return false, pol.Now.Add(pol.For), false
	}
	return !pol.Now.Before(deadline), deadline, true
}

// leave plans one backend that left service k.
func (p *plan) leave(k serviceKey, dk destKey, hd haveDest, drains map[drainKey]time.Time, pol drainPolicy) {
	gone, deadline, tracked := leaveDecision(k, dk, hd, drains, pol)
	if gone {
		p.Ops = append(p.Ops, op{Kind: opDelDest, Svc: k, Dest: dk, Drained: tracked})
		return
	}
	p.Drains[drainKey{Svc: k, Dest: dk}] = deadline
	if hd.Weight != 0 {
		p.Ops = append(p.Ops, op{Kind: opUpdateDest, Svc: k, Dest: dk, Weight: 0})
	}
}

// leaveService plans a service that left the table: one deletion when no
// backend still drains, else the backends one by one.
func (p *plan) leaveService(k serviceKey, hs *haveService, drains map[drainKey]time.Time, pol drainPolicy) {
	draining := false
	drained := len(hs.Dests) > 0
	for dk, hd := range hs.Dests {
		gone, _, tracked := leaveDecision(k, dk, hd, drains, pol)
		draining = draining || !gone
		drained = drained && tracked
	}
	if !draining {
		dests := make([]destKey, 0, len(hs.Dests))
		for dk := range hs.Dests {
			dests = append(dests, dk)
		}
		slices.SortFunc(dests, compareDestKey)
		p.Ops = append(p.Ops, op{Kind: opDelService, Svc: k, Dests: dests, Drained: drained})
		return
	}
	for dk, hd := range hs.Dests {
		p.leave(k, dk, hd, drains, pol)
	}
}

// apply records the successful write o in h, so that h keeps matching the
// kernel between dumps.
func (h have) apply(o op) {
	switch o.Kind {
	case opAddService, opUpdateService:
		hs := h[o.Svc]
		if hs == nil {
			hs = &haveService{Dests: map[destKey]haveDest{}}
			h[o.Svc] = hs
		}
		hs.Sched, hs.Flags, hs.Timeout, hs.Netmask = o.Sched, 0, 0, netmask(o.Svc.Addr)
	case opAddDest, opUpdateDest:
		if hs := h[o.Svc]; hs != nil {
			hd := hs.Dests[o.Dest]
			hd.Weight, hd.Fwd = o.Weight, fwdMasq
			hs.Dests[o.Dest] = hd
		}
	case opDelDest:
		if hs := h[o.Svc]; hs != nil {
			delete(hs.Dests, o.Dest)
		}
	case opDelService:
		delete(h, o.Svc)
	}
}

// addrs returns the VIP addresses the interface needs: those of every
// wanted service and of every service still in h (draining).
func addrs(w want, h have) map[netip.Addr]struct{} {
	out := make(map[netip.Addr]struct{}, len(w))
	for k := range w {
		out[k.Addr] = struct{}{}
	}
	for k := range h {
		out[k.Addr] = struct{}{}
	}
	return out
}

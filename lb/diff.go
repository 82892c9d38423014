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
	// Dests are the backends sorted by key, each once.
	Dests []wantDest
}

// wantDest is a backend with its weight: 1, or 0 while unhealthy or
// killing.
type wantDest struct {
	Key    destKey
	Weight int
}

// want is the desired IPVS state.
type want map[serviceKey]*wantService

// haveService is a service as the kernel has it.
type haveService struct {
	Sched   string
	Flags   uint32
	Timeout uint32
	Netmask uint32
	// Dests are sorted by key.
	Dests []haveDest
}

// haveDest is a destination as the kernel has it.
type haveDest struct {
	Key      destKey
	Weight   int
	Fwd      uint32
	Active   int
	Inactive int
}

func compareHaveDest(d haveDest, k destKey) int { return compareDestKey(d.Key, k) }

// dest returns the destination k of hs and whether it exists.
func (hs *haveService) dest(k destKey) (haveDest, bool) {
	i, ok := slices.BinarySearchFunc(hs.Dests, k, compareHaveDest)
	if !ok {
		return haveDest{}, false
	}
	return hs.Dests[i], true
}

// have is the kernel's IPVS state, restricted to the services lb owns.
type have map[serviceKey]*haveService

// serviceKeys returns the services of VIP v: one per address, IPv4 first.
func serviceKeys(v *discovery.VIP) []serviceKey {
	var out []serviceKey
	for _, addr := range [2]netip.Addr{v.Addr4, v.Addr6} {
		if addr.IsValid() {
			out = append(out, serviceKey{Proto: uint16(v.Key.Protocol), Addr: addr.Unmap(), Port: v.Key.Port})
		}
	}
	return out
}

// desired turns a table into the IPVS services it needs: one per VIP
// address (Addr4, Addr6) with the backends of that address's family, all
// with scheduler sched. A backend of the other family is skipped: IPVS
// cannot masquerade across families.
func desired(t *discovery.Table, sched string) want {
	w := make(want, t.VIPs.Len())
	for v := range t.VIPs.All() {
		for _, addr := range [2]netip.Addr{v.Addr4, v.Addr6} {
			if !addr.IsValid() {
				continue
			}
			addr = addr.Unmap()
			k := serviceKey{Proto: uint16(v.Key.Protocol), Addr: addr, Port: v.Key.Port}
			ws := w[k]
			if ws == nil {
				ws = &wantService{Sched: sched, Dests: make([]wantDest, 0, len(v.Backends))}
				w[k] = ws
			}
			n := len(ws.Dests)
			for _, b := range v.Backends {
				if ba := b.Addr.Addr().Unmap(); ba.Is4() == addr.Is4() {
					ws.Dests = append(ws.Dests, wantDest{Key: destKey{Addr: ba, Port: b.Addr.Port()}, Weight: int(b.Weight)})
				}
			}
			ws.Dests = sortDests(ws.Dests, n > 0)
		}
	}
	return w
}

func compareWantDest(a, b wantDest) int {
	if c := compareDestKey(a.Key, b.Key); c != 0 {
		return c
	}
	return cmp.Compare(b.Weight, a.Weight)
}

// sortDests sorts ds by key, if needed (backends come sorted by address,
// except IPv4-mapped ones and when VIPs share a service), and keeps one per
// key, the highest weight.
func sortDests(ds []wantDest, merged bool) []wantDest {
	if merged || !slices.IsSortedFunc(ds, compareWantDest) {
		slices.SortFunc(ds, compareWantDest)
	}
	return slices.CompactFunc(ds, func(a, b wantDest) bool { return a.Key == b.Key })
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
			for _, wd := range ws.Dests {
				p.Ops = append(p.Ops, op{Kind: opAddDest, Svc: k, Dest: wd.Key, Weight: wd.Weight})
			}
			continue
		}
		if !serviceMatches(k, hs, ws) {
			p.Ops = append(p.Ops, op{Kind: opUpdateService, Svc: k, Sched: ws.Sched})
		}
		p.diffDests(k, ws.Dests, hs.Dests, drains, pol)
	}
	for k, hs := range h {
		if w[k] == nil {
			p.leaveService(k, hs, drains, pol)
		}
	}
	p.Ops = byKind(p.Ops)
	return p
}

// byKind orders ops by kind, keeping their order within a kind: a
// service is added before its destinations, and so on.
func byKind(ops []op) []op {
	if slices.IsSortedFunc(ops, func(a, b op) int { return cmp.Compare(a.Kind, b.Kind) }) {
		return ops
	}
	out := make([]op, 0, len(ops))
	for k := opAddService; k <= opDelService; k++ {
		for _, o := range ops {
			if o.Kind == k {
				out = append(out, o)
			}
		}
	}
	return out
}

// diffDests merges the sorted destinations of service k.
func (p *plan) diffDests(k serviceKey, ws []wantDest, hs []haveDest, drains map[drainKey]time.Time, pol drainPolicy) {
	for len(ws) > 0 || len(hs) > 0 {
		c := -1 // only ws left
		if len(ws) == 0 {
			c = 1
		} else if len(hs) > 0 {
			c = compareDestKey(ws[0].Key, hs[0].Key)
		}
		switch {
		case c < 0:
			p.Ops = append(p.Ops, op{Kind: opAddDest, Svc: k, Dest: ws[0].Key, Weight: ws[0].Weight})
			ws = ws[1:]
		case c > 0:
			p.leave(k, hs[0], drains, pol)
			hs = hs[1:]
		default:
			if hs[0].Weight != ws[0].Weight || hs[0].Fwd&fwdMask != fwdMasq {
				p.Ops = append(p.Ops, op{Kind: opUpdateDest, Svc: k, Dest: ws[0].Key, Weight: ws[0].Weight})
			}
			ws, hs = ws[1:], hs[1:]
		}
	}
}

func serviceMatches(k serviceKey, hs *haveService, ws *wantService) bool {
	return hs.Sched == ws.Sched && hs.Flags&^svcFlagHashed == 0 && hs.Timeout == 0 && hs.Netmask == netmask(k.Addr)
}

// leaveDecision says what becomes of one leaving backend.
func leaveDecision(k serviceKey, hd haveDest, drains map[drainKey]time.Time, pol drainPolicy) (gone bool, deadline time.Time, tracked bool) {
	if k.Proto != protoTCP {
		return true, time.Time{}, false
	}
	deadline, tracked = drains[drainKey{Svc: k, Dest: hd.Key}]
	if pol.fresh(k) && hd.Active == 0 {
		return true, deadline, tracked
	}
	if !tracked {
		return false, pol.Now.Add(pol.For), false
	}
	return !pol.Now.Before(deadline), deadline, true
}

// leave plans one backend that left service k.
func (p *plan) leave(k serviceKey, hd haveDest, drains map[drainKey]time.Time, pol drainPolicy) {
	gone, deadline, tracked := leaveDecision(k, hd, drains, pol)
	if gone {
		p.Ops = append(p.Ops, op{Kind: opDelDest, Svc: k, Dest: hd.Key, Drained: tracked})
		return
	}
	p.Drains[drainKey{Svc: k, Dest: hd.Key}] = deadline
	if hd.Weight != 0 {
		p.Ops = append(p.Ops, op{Kind: opUpdateDest, Svc: k, Dest: hd.Key, Weight: 0})
	}
}

// leaveService plans a service that left the table: one deletion when no
// backend still drains, else the backends one by one.
func (p *plan) leaveService(k serviceKey, hs *haveService, drains map[drainKey]time.Time, pol drainPolicy) {
	draining := false
	drained := len(hs.Dests) > 0
	for _, hd := range hs.Dests {
		gone, _, tracked := leaveDecision(k, hd, drains, pol)
		draining = draining || !gone
		drained = drained && tracked
	}
	if !draining {
		dests := make([]destKey, len(hs.Dests))
		for i, hd := range hs.Dests {
			dests[i] = hd.Key
		}
		p.Ops = append(p.Ops, op{Kind: opDelService, Svc: k, Dests: dests, Drained: drained})
		return
	}
	for _, hd := range hs.Dests {
		p.leave(k, hd, drains, pol)
	}
}

// apply records the successful write o in h, so that h keeps matching the
// kernel between dumps.
func (h have) apply(o op) {
	switch o.Kind {
	case opAddService, opUpdateService:
		hs := h[o.Svc]
		if hs == nil {
			hs = &haveService{}
			h[o.Svc] = hs
		}
		hs.Sched, hs.Flags, hs.Timeout, hs.Netmask = o.Sched, 0, 0, netmask(o.Svc.Addr)
	case opAddDest, opUpdateDest, opDelDest:
		hs := h[o.Svc]
		if hs == nil {
			return
		}
		i, ok := slices.BinarySearchFunc(hs.Dests, o.Dest, compareHaveDest)
		switch {
		case o.Kind == opDelDest && ok:
			hs.Dests = slices.Delete(hs.Dests, i, i+1)
		case o.Kind == opDelDest:
		case ok:
			hs.Dests[i].Weight, hs.Dests[i].Fwd = o.Weight, fwdMasq
		default:
			hs.Dests = slices.Insert(hs.Dests, i, haveDest{Key: o.Dest, Weight: o.Weight, Fwd: fwdMasq})
		}
	case opDelService:
		delete(h, o.Svc)
	}
}

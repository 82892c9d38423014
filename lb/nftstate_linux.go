// This file reports the nftables dataplane's state per VIP, for the HTTP
// API, and its gauges.

package lb

import (
	"net/netip"
	"slices"

	"github.com/vipbridge/vipbridge/discovery"
)

// State returns the dataplane state of every VIP of the last applied
// table, one ServiceState per VIP address (IPv4 first), as IPVS.State
// does. A backend's Weight is its share of the service's map (its width),
// 0 while drained; backends that left the table and still drain TCP
// connections are listed with Draining. Connection counts are not read
// (they stay 0). While a sync runs it returns its previous result instead
// of waiting. Callers must not modify the result.
func (x *NFTables) State() map[discovery.VIPKey][]ServiceState {
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
	if x.table == nil {
		return nil
	}
	out := make(map[discovery.VIPKey][]ServiceState, x.table.VIPs.Len())
	for v := range x.table.VIPs.All() {
		var states []ServiceState
		for _, k := range serviceKeys(v) {
			states = append(states, x.serviceState(k))
		}
		out[v.Key] = states
	}
	x.stateMu.Lock()
	x.lastState = out
	x.stateMu.Unlock()
	return out
}

func (x *NFTables) serviceState(k serviceKey) ServiceState {
	s := ServiceState{Protocol: discovery.Protocol(k.Proto), Addr: netip.AddrPortFrom(k.Addr, k.Port)}
	var hs *lbService
	if x.view != nil {
		hs = x.view.Svcs[k]
	}
	ws := x.want[k]
	switch {
	case x.errs[k] != "":
		s.Status, s.Reason = StatusError, x.errs[k]
	case lbProgrammed(ws, hs):
		s.Status = StatusProgrammed
	default:
		s.Status, s.Reason = StatusPending, x.readErr
	}
	widths := map[destKey]int{}
	if hs != nil {
		for _, d := range slotDests(hs.Slots, hs.Mod) {
			widths[d.Key] = d.Weight
		}
	}
	if ws != nil {
		for _, d := range ws.Dests {
			s.Backends = append(s.Backends, BackendState{Addr: netip.AddrPortFrom(d.Key.Addr, d.Key.Port), Weight: widths[d.Key]})
		}
	}
	for dk := range x.drains {
		if dk.Svc == k {
			s.Backends = append(s.Backends, BackendState{Addr: netip.AddrPortFrom(dk.Dest.Addr, dk.Dest.Port), Draining: true})
		}
	}
	slices.SortFunc(s.Backends, func(a, b BackendState) int { return a.Addr.Compare(b.Addr) })
	return s
}

// lbProgrammed reports whether the kernel has service ws as wanted.
func lbProgrammed(ws *wantService, hs *lbService) bool {
	if ws == nil || hs == nil {
		return false
	}
	ss, mod := slots(ws.Dests)
	return slices.Equal(hs.Slots, ss) && hs.Mod == mod && hs.RuleMod == mod && hs.Live == (mod > 0) && hs.Refused == (mod == 0) && !hs.Stray
}

// gauges sets the service and backend gauges.
func (x *NFTables) gauges() {
	if x.view == nil {
		return
	}
	active, idle := 0, 0
	for _, ws := range x.want {
		for _, d := range ws.Dests {
			if d.Weight > 0 {
				active++
			} else {
				idle++
			}
		}
	}
	x.met.services.Set(float64(len(x.view.Svcs)))
	x.met.backends.WithLabelValues("active").Set(float64(active))
	x.met.backends.WithLabelValues("idle").Set(float64(idle))
	x.met.backends.WithLabelValues("draining").Set(float64(len(x.drains)))
}

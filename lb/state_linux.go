package lb

import (
	"net/netip"

	"github.com/vipbridge/vipbridge/discovery"
)

// gauges sets the service and backend gauges from the view.
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
	out := make(map[discovery.VIPKey][]ServiceState, x.table.VIPs.Len())
	for v := range x.table.VIPs.All() {
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
	s.Scheduler = hs.Sched
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

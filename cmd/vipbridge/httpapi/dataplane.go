package httpapi

import (
	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// Dataplane reports where each VIP stands in the kernel; *lb.IPVS
// satisfies it. With the "none" dataplane there is nothing to report.
type Dataplane interface {
	State() map[discovery.VIPKey][]lb.ServiceState
}

// dataplaneDoc is the kernel side of a VIP in /records and /v1/vips:
// Status is the worst of its services' (error, pending, programmed).
type dataplaneDoc struct {
	Status   lb.Status         `json:"status"`
	Reason   string            `json:"reason,omitempty"`
	Services []lb.ServiceState `json:"services,omitempty"`
}

// states returns the dataplane's state of every VIP, or nil without one.
func (a *api) states() map[discovery.VIPKey][]lb.ServiceState {
	if a.dataplane == nil {
		return nil
	}
	return a.dataplane.State()
}

// dataplaneDoc summarises the services of key; nil when there is no
// dataplane. A VIP the dataplane has not taken up yet is pending.
func dataplaneOf(states map[discovery.VIPKey][]lb.ServiceState, key discovery.VIPKey, withServices bool) *dataplaneDoc {
	if states == nil {
		return nil
	}
	ss, ok := states[key]
	if !ok || len(ss) == 0 {
		return &dataplaneDoc{Status: lb.StatusPending, Reason: "not applied yet"}
	}
	d := &dataplaneDoc{Status: lb.StatusProgrammed}
	for _, s := range ss {
		if rank(s.Status) > rank(d.Status) {
			d.Status, d.Reason = s.Status, s.Reason
		}
	}
	if withServices {
		d.Services = ss
	}
	return d
}

func rank(s lb.Status) int {
	switch s {
	case lb.StatusError:
		return 2
	case lb.StatusPending:
		return 1
	}
	return 0
}

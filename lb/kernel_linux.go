package lb

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// kernel is the part of *ipvs.Handle that lb uses; fakeKernel implements it
// in tests. Flush is deliberately absent: lb never touches services it does
// not own.
type kernel interface {
	GetServices() ([]*ipvs.Service, error)
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
	NewService(*ipvs.Service) error
	UpdateService(*ipvs.Service) error
	DelService(*ipvs.Service) error
	NewDestination(*ipvs.Service, *ipvs.Destination) error
	UpdateDestination(*ipvs.Service, *ipvs.Destination) error
	DelDestination(*ipvs.Service, *ipvs.Destination) error
}

// batchWriter is implemented by kernels that take many writes at once
// (netlinkKernel); the others get one call per write.
type batchWriter interface {
	writeBatch(ops []op) []error
}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// toService is the kernel form of service k: NAT services have no flags,
// no persistence timeout and a host netmask (UPSTREAM.md §1.7).
func toService(k serviceKey, sched string) *ipvs.Service {
	return &ipvs.Service{
		Address:       net.IP(k.Addr.AsSlice()),
		Protocol:      k.Proto,
		Port:          k.Port,
		SchedName:     sched,
		Netmask:       netmask(k.Addr),
		AddressFamily: family(k.Addr),
	}
}

// toDest is the kernel form of a masquerading destination.
func toDest(d destKey, weight int) *ipvs.Destination {
	return &ipvs.Destination{
		Address:         net.IP(d.Addr.AsSlice()),
		Port:            d.Port,
		Weight:          weight,
		ConnectionFlags: ipvs.ConnFwdMasq,
		AddressFamily:   family(d.Addr),
	}
}

// fromService reads a dumped service; ok is false for services lb cannot
// own (firewall-mark services).
func fromService(s *ipvs.Service) (serviceKey, *haveService, bool) {
	addr, ok := netip.AddrFromSlice(s.Address)
	if !ok || s.FWMark != 0 {
		return serviceKey{}, nil, false
	}
	k := serviceKey{Proto: s.Protocol, Addr: addr.Unmap(), Port: s.Port}
	return k, &haveService{Sched: s.SchedName, Flags: s.Flags, Timeout: s.Timeout, Netmask: s.Netmask}, true
}

func fromDest(d *ipvs.Destination) (haveDest, bool) {
	addr, ok := netip.AddrFromSlice(d.Address)
	if !ok {
		return haveDest{}, false
	}
	return haveDest{
		Key:    destKey{Addr: addr.Unmap(), Port: d.Port},
		Weight: d.Weight, Fwd: d.ConnectionFlags, Active: d.ActiveConnections, Inactive: d.InactiveConnections,
	}, true
}

// readDests reads the destinations of service k, sorted.
func readDests(k kernel, key serviceKey) ([]haveDest, error) {
	ds, err := k.GetDestinations(toService(key, ""))
	if err != nil {
		return nil, err
	}
	out := make([]haveDest, 0, len(ds))
	for _, d := range ds {
		if hd, ok := fromDest(d); ok {
			out = append(out, hd)
		}
	}
	slices.SortFunc(out, func(a, b haveDest) int { return compareDestKey(a.Key, b.Key) })
	return out, nil
}

// write makes one planned write.
func write(k kernel, o op) error {
	switch o.Kind {
	case opAddService:
		return k.NewService(toService(o.Svc, o.Sched))
	case opUpdateService:
		return k.UpdateService(toService(o.Svc, o.Sched))
	case opDelService:
		return k.DelService(toService(o.Svc, ""))
	case opAddDest:
		return k.NewDestination(toService(o.Svc, ""), toDest(o.Dest, o.Weight))
	case opUpdateDest:
		return k.UpdateDestination(toService(o.Svc, ""), toDest(o.Dest, o.Weight))
	case opDelDest:
		return k.DelDestination(toService(o.Svc, ""), toDest(o.Dest, 0))
	}
	return fmt.Errorf("unknown operation %d", o.Kind)
}

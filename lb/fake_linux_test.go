package lb

import (
	"maps"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/moby/ipvs"
)

// fakeKernel is an in-memory IPVS behind kernel, with the kernel's errors
// (EEXIST, ESRCH, ENOENT); it counts dumps and writes.
type fakeKernel struct {
	mu            sync.Mutex
	svcs          map[serviceKey]*ipvs.Service
	dests         map[serviceKey]map[destKey]ipvs.Destination
	dumps, writes int
	fail          error // returned by every write while set
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{svcs: map[serviceKey]*ipvs.Service{}, dests: map[serviceKey]map[destKey]ipvs.Destination{}}
}

// change writes service s, or its destination d if not nil, with fn; the
// target must exist, or must not if isNew.
func (f *fakeKernel) change(s *ipvs.Service, d *ipvs.Destination, isNew bool, fn func(serviceKey, destKey)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, hd, missing := fkeyOf(s), haveDest{}, syscall.ESRCH
	ds, has := f.dests[k]
	if d != nil && has {
		hd, _ = fromDest(d)
		_, has = ds[hd.Key]
		missing = syscall.ENOENT
	}
	switch {
	case f.fail != nil:
		return f.fail
	case d != nil && ds == nil:
		return syscall.ESRCH
	case has && isNew:
		return syscall.EEXIST
	case !has && !isNew:
		return missing
	}
	f.writes++
	fn(k, hd.Key)
	return nil
}

func (f *fakeKernel) NewService(s *ipvs.Service) error {
	return f.change(s, nil, true, func(k serviceKey, _ destKey) { f.svcs[k], f.dests[k] = s, map[destKey]ipvs.Destination{} })
}
func (f *fakeKernel) UpdateService(s *ipvs.Service) error {
	return f.change(s, nil, false, func(k serviceKey, _ destKey) { f.svcs[k] = s })
}
func (f *fakeKernel) DelService(s *ipvs.Service) error {
	return f.change(s, nil, false, func(k serviceKey, _ destKey) { delete(f.svcs, k); delete(f.dests, k) })
}
func (f *fakeKernel) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	return f.change(s, d, true, func(k serviceKey, dk destKey) { f.dests[k][dk] = *d })
}
func (f *fakeKernel) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error { // keeps the counters
	return f.change(s, d, false, func(k serviceKey, dk destKey) { f.dests[k][dk] = withConns(*d, f.dests[k][dk]) })
}
func (f *fakeKernel) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	return f.change(s, d, false, func(k serviceKey, dk destKey) { delete(f.dests[k], dk) })
}

func (f *fakeKernel) GetServices() ([]*ipvs.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dumps++
	return slices.Collect(maps.Values(f.svcs)), nil
}

func (f *fakeKernel) GetDestinations(s *ipvs.Service) (out []*ipvs.Destination, _ error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ds, ok := f.dests[fkeyOf(s)]
	for _, d := range ds {
		out = append(out, &d)
	}
	return out, map[bool]error{false: syscall.ESRCH}[ok]
}

func withConns(d, old ipvs.Destination) ipvs.Destination {
	d.ActiveConnections, d.InactiveConnections = old.ActiveConnections, old.InactiveConnections
	return d
}

// fakeSystem is the host setup in memory.
type fakeSystem struct {
	mu      sync.Mutex
	ifAddrs map[netip.Addr]struct{}
	masq    map[netip.Addr]struct{}
	flows   []flow
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{ifAddrs: map[netip.Addr]struct{}{}, masq: map[netip.Addr]struct{}{}}
}

func (s *fakeSystem) addrs() (out []netip.Addr, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.ifAddrs {
		out = append(out, a)
	}
	return out, nil
}

func (s *fakeSystem) setAddrs(add, del []netip.Addr) map[netip.Addr]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range add {
		s.ifAddrs[a] = struct{}{}
	}
	for _, a := range del {
		delete(s.ifAddrs, a)
	}
	return nil
}

func (s *fakeSystem) setSysctls() (int, error) { return 0, nil }

func (s *fakeSystem) masquerade(vips map[netip.Addr]struct{}, _ bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if !maps.Equal(vips, s.masq) {
		n, s.masq = 1, maps.Clone(vips)
	}
	return n, nil
}

func (s *fakeSystem) flushFlows(fs []flow) error {
	s.mu.Lock()
	s.flows = append(s.flows, fs...)
	s.mu.Unlock()
	return nil
}

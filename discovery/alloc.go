package discovery

// VIP address allocation: the Allocator gives each named VIP a stable
// address from the configured ranges (a hash of the name first, then the
// next free one), keeps it for a grace period after the VIP goes, and
// reports the assignments that changed, for the store.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"
)

// ErrOutOfAddresses means every address of a VIP range is taken.
var ErrOutOfAddresses = errors.New("out of VIP addresses")

// Default VIP ranges and grace period, the same ranges as DC/OS
// (dcos/dcos-net: apps/dcos_l4lb/src/dcos_l4lb_config.erl).
var (
	defaultV4 = netip.MustParsePrefix("11.0.0.0/8")
	defaultV6 = netip.MustParsePrefix("fd01:c::/64")
)

const defaultGrace = 24 * time.Hour

// AllocConfig configures an Allocator.
type AllocConfig struct {
	// V4 is the IPv4 range for named VIPs; zero means 11.0.0.0/8. Its
	// network and broadcast addresses are never handed out.
	V4 netip.Prefix
	// V6 is the IPv6 range for named VIPs; zero means fd01:c::/64. Its
	// first address (the subnet-router anycast address) is never handed
	// out, and of a prefix shorter than /64 only the first 2^64 addresses
	// are used.
	V6 netip.Prefix
	// Grace is how long an assignment outlives the last Assign of its name;
	// zero means 24h.
	Grace time.Duration
}

// Assignment is one persisted VIP address of a name. Its key (in the store,
// and as returned by Allocator.Expire) is the name plus "/4" or "/6" after
// the address family, so a name holds at most one address per family.
type Assignment struct {
	// Name is "<name>.<framework>", both normalised (NormaliseName).
	Name string     `json:"name"`
	Addr netip.Addr `json:"addr"`
	// LastSeen is when the name last had backends of Addr's family.
	LastSeen time.Time `json:"lastSeen"`
}

// allocKey identifies an assignment: a name and an address family.
type allocKey struct {
	name string
	v6   bool
}

// String is the assignment key: name plus "/4" or "/6".
func (k allocKey) String() string {
	if k.v6 {
		return k.name + "/6"
	}
	return k.name + "/4"
}

type assignment struct {
	addr     netip.Addr
	lastSeen time.Time
	// persisted is the LastSeen the store last got from Dirty (or loaded).
	persisted time.Time
}

// pool is one address family's range: usable offsets are first,
// first+1, …, first+size-1 from the prefix's base address.
type pool struct {
	prefix netip.Prefix
	first  uint64
	size   uint64
}

// Allocator hands out stable VIP addresses to names (DESIGN.md "VIP
// addresses"): the first candidate is FNV-1a 64 of the name into the range,
// then the next free address, wrapping at the end. Assignments survive
// restarts through Dirty (persist) and NewAllocator (reload), and expire
// Grace after the name was last assigned.
//
// An Allocator is not safe for concurrent use; the reconciler owns it.
type Allocator struct {
	v4, v6   pool
	grace    time.Duration
	refresh  time.Duration
	byKey    map[allocKey]*assignment
	byAddr   map[netip.Addr]allocKey
	reserved map[netip.Addr]struct{}
	dirty    map[allocKey]struct{}
	// dropped are keys of loaded assignments that were unusable (outside
	// the configured ranges, or an address held by another name); the
	// next Expire reports them so that the store forgets them.
	dropped []string
}

// NewAllocator returns an Allocator holding the existing (persisted)
// assignments. An assignment outside the configured ranges, or on an
// address a more recently seen assignment holds, is dropped and reported by
// the next Expire.
func NewAllocator(cfg AllocConfig, existing []Assignment) *Allocator {
	v4, v6 := cfg.V4, cfg.V6
	if !v4.IsValid() {
		v4 = defaultV4
	}
	if !v6.IsValid() {
		v6 = defaultV6
	}
	grace := cmp.Or(cfg.Grace, defaultGrace)
	a := &Allocator{
		v4:       newPool(v4, false),
		v6:       newPool(v6, true),
		grace:    grace,
		refresh:  grace / 24,
		byKey:    make(map[allocKey]*assignment, len(existing)),
		byAddr:   make(map[netip.Addr]allocKey, len(existing)),
		reserved: map[netip.Addr]struct{}{},
		dirty:    map[allocKey]struct{}{},
	}
	sorted := slices.Clone(existing)
	slices.SortFunc(sorted, func(x, y Assignment) int {
		return cmp.Or(y.LastSeen.Compare(x.LastSeen), cmp.Compare(x.Name, y.Name), x.Addr.Compare(y.Addr))
	})
	for _, as := range sorted {
		if as.Name == "" || !as.Addr.IsValid() {
			continue
		}
		k := allocKey{as.Name, !as.Addr.Is4()}
		if _, ok := a.byKey[k]; ok {
			continue
		}
		if _, taken := a.byAddr[as.Addr]; taken || !a.pool(k.v6).contains(as.Addr) {
			a.dropped = append(a.dropped, k.String())
			continue
		}
		a.byKey[k] = &assignment{addr: as.Addr, lastSeen: as.LastSeen, persisted: as.LastSeen}
		a.byAddr[as.Addr] = k
	}
	return a
}

func newPool(p netip.Prefix, v6 bool) pool {
	p = p.Masked()
	if p.Addr().Is4() == v6 {
		return pool{prefix: p}
	}
	hostBits := p.Addr().BitLen() - p.Bits()
	if !v6 {
		if hostBits < 2 {
			return pool{prefix: p}
		}
		return pool{prefix: p, first: 1, size: 1<<hostBits - 2}
	}
	if hostBits >= 64 {
		return pool{prefix: p, first: 1, size: ^uint64(0)}
	}
	return pool{prefix: p, first: 1, size: 1<<hostBits - 1}
}

// at returns the address at offset off from the prefix's base.
func (p pool) at(off uint64) netip.Addr {
	if p.prefix.Addr().Is4() {
		b := p.prefix.Addr().As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(off))
		return netip.AddrFrom4(b)
	}
	b := p.prefix.Addr().As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])|off)
	return netip.AddrFrom16(b)
}

// contains reports whether ip is a usable address of p.
func (p pool) contains(ip netip.Addr) bool {
	if p.size == 0 || !p.prefix.Contains(ip) {
		return false
	}
	var off uint64
	if ip.Is4() {
		b, base := ip.As4(), p.prefix.Addr().As4()
		off = uint64(binary.BigEndian.Uint32(b[:]) - binary.BigEndian.Uint32(base[:]))
	} else {
		b, base := ip.As16(), p.prefix.Addr().As16()
		if [8]byte(b[:8]) != [8]byte(base[:8]) {
			return false
		}
		off = binary.BigEndian.Uint64(b[8:]) - binary.BigEndian.Uint64(base[8:])
	}
	return off >= p.first && off-p.first < p.size
}

func (a *Allocator) pool(v6 bool) *pool {
	if v6 {
		return &a.v6
	}
	return &a.v4
}

// Assign returns the address of name ("<name>.<framework>") in the IPv6
// range if v6, else the IPv4 range, allocating one if the name has none,
// and records now as the name's LastSeen. A name keeps its address for as
// long as it is assigned at least every Grace, unless a Reserve takes the
// address for an IP VIP, in which case the name moves to a new one.
func (a *Allocator) Assign(name string, v6 bool, now time.Time) (netip.Addr, error) {
	if name == "" {
		return netip.Addr{}, errors.New("assign address: empty name")
	}
	k := allocKey{name, v6}
	if as, ok := a.byKey[k]; ok {
		if _, lost := a.reserved[as.addr]; !lost {
			if now.After(as.lastSeen) {
				as.lastSeen = now
			}
			if as.lastSeen.Sub(as.persisted) >= a.refresh {
				a.dirty[k] = struct{}{}
			}
			return as.addr, nil
		}
		delete(a.byAddr, as.addr)
		delete(a.byKey, k)
	}
	ip, err := a.probe(name, a.pool(v6))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("assign %s address to %s: %w", family(v6), name, err)
	}
	a.byKey[k] = &assignment{addr: ip, lastSeen: now}
	a.byAddr[ip] = k
	a.dirty[k] = struct{}{}
	return ip, nil
}

// probe finds the first free address of p from the hash of name on.
func (a *Allocator) probe(name string, p *pool) (netip.Addr, error) {
	if p.size == 0 {
		return netip.Addr{}, fmt.Errorf("no usable range in %s", p.prefix)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	off := h.Sum64() % p.size
	// Among taken+1 distinct candidates at least one is free, so the
	// probe is bounded even in a huge IPv6 range.
	tries := min(p.size, uint64(len(a.byAddr)+len(a.reserved))+1)
	for range tries {
		ip := p.at(p.first + off)
		_, taken := a.byAddr[ip]
		_, reserved := a.reserved[ip]
		if !taken && !reserved {
			return ip, nil
		}
		off++
		if off == p.size {
			off = 0
		}
	}
	return netip.Addr{}, ErrOutOfAddresses
}

// Reserve marks ip, the address of an IP VIP, as never to be handed out to
// a name. Addresses outside both ranges are ignored. Reservations last for
// the Allocator's lifetime and are not persisted: the reconciler reserves
// every IP VIP before assigning names (Build does).
func (a *Allocator) Reserve(ip netip.Addr) {
	if a.v4.prefix.Contains(ip) || a.v6.prefix.Contains(ip) {
		a.reserved[ip] = struct{}{}
	}
}

// Expire drops the assignments not assigned for more than Grace before now
// and returns their keys (name plus "/4" or "/6"), sorted, together with
// the keys of unusable assignments dropped by NewAllocator.
func (a *Allocator) Expire(now time.Time) []string {
	out := a.dropped
	a.dropped = nil
	for k, as := range a.byKey {
		if now.Sub(as.lastSeen) > a.grace {
			delete(a.byKey, k)
			delete(a.byAddr, as.addr)
			delete(a.dirty, k)
			out = append(out, k.String())
		}
	}
	slices.Sort(out)
	return out
}

// Dirty returns the assignments created since the last call, and those
// whose LastSeen moved by Grace/24 or more since they were last returned
// (or loaded), sorted by name then address; the caller persists them.
// Refreshing LastSeen coarsely keeps steady-state builds from rewriting
// every assignment.
func (a *Allocator) Dirty() []Assignment {
	if len(a.dirty) == 0 {
		return nil
	}
	out := make([]Assignment, 0, len(a.dirty))
	for k := range a.dirty {
		as := a.byKey[k]
		as.persisted = as.lastSeen
		out = append(out, Assignment{Name: k.name, Addr: as.addr, LastSeen: as.lastSeen})
	}
	clear(a.dirty)
	slices.SortFunc(out, func(x, y Assignment) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), x.Addr.Compare(y.Addr))
	})
	return out
}

// Len returns how many assignments the Allocator holds.
func (a *Allocator) Len() int { return len(a.byKey) }

func family(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

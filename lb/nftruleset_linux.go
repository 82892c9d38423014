// This file builds the nftables objects of the nftables dataplane: the
// per-family table with its dispatch map and base chains, and each
// service's chain and interval map.

package lb

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names in the tables that the nftables dataplane owns.
const (
	lbTable     = "vipbridge_lb"
	lbVIPs      = "vips"      // dispatch: addr . proto . port : goto vip-…
	lbRefuse    = "nobackend" // addr . proto . port of services with no backend
	lbNATPre    = "nat-prerouting"
	lbNATOut    = "nat-output"
	lbFilterPre = "filter-prerouting"
	lbFilterOut = "filter-output"
)

// Register numbers (linux/netfilter/nf_tables.h): NFT_REG_1 is 16 bytes
// wide and aliases NFT_REG32_00..03; a concatenation is loaded into
// consecutive 32-bit registers, each part padded to 4 bytes.
const (
	reg1    = 1
	reg32At = 8 // NFT_REG32_00
)

// lbFamily is one of the two tables ("ip vipbridge_lb", "ip6
// vipbridge_lb"): nftables has no type that holds an IPv4 or an IPv6
// address, so kube-proxy keeps one table per family too.
//
//	table ip vipbridge_lb {   # and vipbridge_lb_01 … _15, without nobackend and the filter chains
//		map vips { type ipv4_addr . inet_proto . inet_service : verdict }
//		set nobackend { type ipv4_addr . inet_proto . inet_service }
//		chain nat-prerouting { type nat hook prerouting priority dstnat; ip daddr . meta l4proto . th dport vmap @vips }
//		chain nat-output     { type nat hook output priority dstnat;     ip daddr . meta l4proto . th dport vmap @vips }
//		chain filter-prerouting { type filter hook prerouting priority dstnat - 10;
//			ct state new ip daddr . meta l4proto . th dport @nobackend meta l4proto tcp reject with tcp reset
//			ct state new ip daddr . meta l4proto . th dport @nobackend reject with icmp port-unreachable }
//		chain filter-output { type filter hook output priority dstnat - 10; the same two rules }
//		map be-tcp-11.0.0.1-80 { type integer : ipv4_addr . inet_service; flags interval;
//			elements = { 0 : 192.0.2.2 . 31000, 1 : 192.0.2.6 . 31001 } }
//		chain vip-tcp-11.0.0.1-80 { numgen random mod 2 map @be-tcp-11.0.0.1-80 → dnat ip addr . port }
//	}
type lbFamily struct {
	v6     bool
	table  *nftables.Table
	vips   *nftables.Set
	refuse *nftables.Set
}

// lbShards is the number of tables per family over which the services are
// spread (by a hash of protocol, address and port). The kernel finds a set
// by name by walking its table's list of sets, and validates a table's
// chains on commit, so both grow with the services of one table: at 10,000
// services in one table a full build took 8.6 s and a one-service
// transaction 10-45 ms, against 2.6 s in 16 tables. The price is one
// dispatch lookup per table for the first packet of a connection (nat
// chains see no other).
const lbShards = 16

// newLBFamily returns table shard of a family: "vipbridge_lb" for shard 0,
// which also holds the nobackend set and the filter chains, else
// "vipbridge_lb_01" and so on.
func newLBFamily(v6 bool, shard int) *lbFamily {
	fam, addr := nftables.TableFamilyIPv4, nftables.TypeIPAddr
	if v6 {
		fam, addr = nftables.TableFamilyIPv6, nftables.TypeIP6Addr
	}
	name := lbTable
	if shard > 0 {
		name = fmt.Sprintf("%s_%02d", lbTable, shard)
	}
	t := &nftables.Table{Name: name, Family: fam}
	key, _ := nftables.ConcatSetType(addr, nftables.TypeInetProto, nftables.TypeInetService)
	f := &lbFamily{
		v6:    v6,
		table: t,
		vips:  &nftables.Set{Table: t, Name: lbVIPs, IsMap: true, Concatenation: true, KeyType: key, DataType: nftables.TypeVerdict},
	}
	if shard == 0 {
		f.refuse = &nftables.Set{Table: t, Name: lbRefuse, Concatenation: true, KeyType: key}
	}
	return f
}

// shardOf returns the shard of service k.
func shardOf(k serviceKey) int {
	h := fnv.New32a()
	h.Write(dispatchKey(k))
	return int(h.Sum32() % lbShards)
}

// sets returns the family's own sets: vips, and nobackend in shard 0.
func (f *lbFamily) sets() []*nftables.Set {
	if f.refuse == nil {
		return []*nftables.Set{f.vips}
	}
	return []*nftables.Set{f.vips, f.refuse}
}

// chains returns the base chains of the family's table: the filter chains
// only in shard 0.
func (f *lbFamily) chains() []baseChain {
	if f.refuse == nil {
		return baseChains[:2]
	}
	return baseChains
}

// addrLen is the length of an address of the family, in bytes.
func (f *lbFamily) addrLen() uint32 {
	if f.v6 {
		return 16
	}
	return 4
}

// nfproto is the NFPROTO_* of the family.
func (f *lbFamily) nfproto() uint32 {
	if f.v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// baseChain describes one base chain and the rules it holds.
type baseChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
	rules    func(f *lbFamily) [][]expr.Any
}

var (
	prioFilter = nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest - 10)
	baseChains = []baseChain{
		{lbNATPre, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, (*lbFamily).dispatchRules},
		{lbNATOut, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest, (*lbFamily).dispatchRules},
		{lbFilterPre, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, prioFilter, (*lbFamily).refuseRules},
		{lbFilterOut, nftables.ChainTypeFilter, nftables.ChainHookOutput, prioFilter, (*lbFamily).refuseRules},
	}
)

// create adds the table, its sets and base chains with their rules to
// the batch of c, deleting the table first if it exists (a rebuild).
func (f *lbFamily) create(c *nftables.Conn, exists bool) error {
	if exists {
		c.DelTable(f.table)
	}
	c.AddTable(f.table)
	for _, s := range f.sets() {
		s.ID = 0 // a new transaction ID for the rules' lookups
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	for _, bc := range f.chains() {
		ch := c.AddChain(&nftables.Chain{Name: bc.name, Table: f.table, Type: bc.typ, Hooknum: bc.hook, Priority: bc.priority})
		for _, r := range bc.rules(f) {
			c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: r})
		}
	}
	return nil
}

// loadKey loads daddr . l4proto . dport into registers from NFT_REG_1 on,
// as nft compiles "ip daddr . meta l4proto . th dport".
func (f *lbFamily) loadKey() []expr.Any {
	off := uint32(16) // daddr in the IPv4 header
	if f.v6 {
		off = 24
	}
	words := f.addrLen() / 4
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32At + words},
		&expr.Payload{DestRegister: reg32At + words + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func (f *lbFamily) dispatchRules() [][]expr.Any {
	r := append(f.loadKey(), &expr.Lookup{SourceRegister: reg1, SetName: f.vips.Name, SetID: f.vips.ID, IsDestRegSet: true, DestRegister: 0})
	return [][]expr.Any{r}
}

// refuseRules reject new connections to a service without backend at
// once (kube-proxy's no-endpoint-services): a TCP reset, else an ICMP
// port unreachable. Established flows of draining backends are not new.
func (f *lbFamily) refuseRules() [][]expr.Any {
	match := func() []expr.Any {
		return append([]expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: reg1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
		}, append(f.loadKey(), &expr.Lookup{SourceRegister: reg1, SetName: f.refuse.Name, SetID: f.refuse.ID})...)
	}
	port := uint8(3) // ICMP_PORT_UNREACH
	if f.v6 {
		port = 4 // ICMPV6_PORT_UNREACH
	}
	tcp := append(match(),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	)
	other := append(match(), &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: port})
	return [][]expr.Any{tcp, other}
}

// dispatchKey is the key of service k in the vips map and nobackend set.
func dispatchKey(k serviceKey) []byte {
	b := append(make([]byte, 0, 24), k.Addr.AsSlice()...)
	b = append(b, byte(k.Proto), 0, 0, 0)
	return append(binary.BigEndian.AppendUint16(b, k.Port), 0, 0)
}

// serviceMap is the interval map of service k: integer : addr . port.
func (f *lbFamily) serviceMap(k serviceKey) *nftables.Set {
	addr := nftables.TypeIPAddr
	if f.v6 {
		addr = nftables.TypeIP6Addr
	}
	val, _ := nftables.ConcatSetType(addr, nftables.TypeInetService)
	return &nftables.Set{Table: f.table, Name: serviceName(mapPrefix, k), IsMap: true, Interval: true,
		KeyType: nftables.TypeInteger, DataType: val}
}

func (f *lbFamily) serviceChain(k serviceKey) *nftables.Chain {
	return &nftables.Chain{Name: serviceName(chainPrefix, k), Table: f.table}
}

// serviceRule picks a slot with numgen random mod mod and DNATs to the
// address and port the map holds for it. numgen writes host byte order
// and interval maps compare big-endian, hence the byteorder (nftables
// tests/py/ip/numgen.t.payload; without it every lookup misses).
func (f *lbFamily) serviceRule(k serviceKey, m *nftables.Set, mod uint32) *nftables.Rule {
	return &nftables.Rule{Table: f.table, Chain: f.serviceChain(k), Exprs: []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: mod, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Lookup{SourceRegister: reg1, DestRegister: reg1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.nfproto(), RegAddrMin: reg1, RegProtoMin: reg32At + f.addrLen()/4},
	}}
}

// slotElements are the map elements of ss with modulus mod: a start and
// an end per slot. Adjacent intervals need both: a start following a start
// is an overlap to the kernel's interval tree (EEXIST), and nft writes
// them so too.
func slotElements(ss []slot, mod uint32) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(ss))
	for i, s := range ss {
		end := mod
		if i+1 < len(ss) {
			end = ss[i+1].Start
		}
		v := binary.BigEndian.AppendUint16(append(make([]byte, 0, 20), s.Dest.Addr.AsSlice()...), s.Dest.Port)
		out = append(out,
			nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, s.Start), Val: append(v, 0, 0)},
			nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, end), IntervalEnd: true})
	}
	return out
}

// elementSlots reads map elements back into slots and the modulus; ok is
// false when they are not a layout slotElements writes.
func elementSlots(es []nftables.SetElement, addrLen int) (ss []slot, mod uint32, ok bool) {
	ends := 0
	for _, e := range es {
		if len(e.Key) != 4 {
			return nil, 0, false
		}
		start := binary.BigEndian.Uint32(e.Key)
		if e.IntervalEnd {
			ends++
			mod = max(mod, start)
			continue
		}
		if len(e.Val) < addrLen+2 {
			return nil, 0, false
		}
		a, _ := netip.AddrFromSlice(e.Val[:addrLen])
		ss = append(ss, slot{Start: start, Dest: destKey{Addr: a, Port: binary.BigEndian.Uint16(e.Val[addrLen:])}})
	}
	sortSlots(ss)
	if ends == 0 || len(ss) == 0 || ss[len(ss)-1].Start >= mod {
		return nil, 0, false
	}
	return ss, mod, true
}

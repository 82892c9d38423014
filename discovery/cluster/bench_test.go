package cluster

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// BenchmarkNodeOneChange: a node's cost for one changed group at 10,000
// VIPs of 5 backends: decode the group, rebuild the Table.
func BenchmarkNodeOneChange(b *testing.B) {
	vips := vipsOf(10000, nil)
	for i := range vips {
		for len(vips[i].Backends) < 5 {
			bk := vips[i].Backends[0]
			bk.TaskID += fmt.Sprint(len(vips[i].Backends))
			bk.Addr = netipAddrPortNext(bk.Addr, len(vips[i].Backends))
			vips[i].Backends = append(vips[i].Backends, bk)
		}
	}
	v := newView()
	for i := range vips {
		head, _, _ := encodeGroup(vips[i : i+1])
		v.set(relVIPs+groupID(vips[i].Key), head)
	}
	v.build()
	heads := make([][]byte, 2)
	for w := range heads {
		one := vips[:1:1]
		one[0].Backends = one[0].Backends[:4+w]
		heads[w], _, _ = encodeGroup(one)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v.set(relVIPs+groupID(vips[0].Key), heads[i%2])
		v.build()
		_ = v.table()
		i++
	}
}

// BenchmarkPublisherDiff: the leader's diff of a 10,000-VIP Table against
// the mirror after one VIP changed (encoding every group).
func BenchmarkPublisherDiff(b *testing.B) {
	vips := vipsOf(10000, nil)
	w := &writer{p: &Publisher{keys: newKeys(""), met: newPublisherMetrics()}, vals: map[string]string{}, allocs: map[nameFamily]allocValue{}}
	t := discovery.NewTable(vips, nil, nil)
	groups := func() map[string][]discovery.VIP {
		g := map[string][]discovery.VIP{}
		for v := range t.VIPs.All() {
			g[groupID(v.Key)] = append(g[groupID(v.Key)], *v)
		}
		return g
	}
	_, next, _ := w.groupWrites(groups())
	w.vals = next
	b.ReportAllocs()
	for b.Loop() {
		units, _, err := w.groupWrites(groups())
		if err != nil || len(units) != 0 {
			b.Fatalf("groupWrites: %d units, %v", len(units), err)
		}
	}
}

func netipAddrPortNext(a netip.AddrPort, n int) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr(), a.Port()+uint16(n)*1000)
}

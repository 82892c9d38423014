package lb

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipbridge/vipbridge/discovery"
)

// Benchmarks of the IPVS dataplane at 10,000 VIPs × 5 backends, natively
// against fakeKernel (Benchmark*) and in the kvm-run VM against the real
// kernel (BenchmarkKernel*, skipped without IPVS):
//
//	go test -run '^$' -bench . -benchtime 1x ./lb
//	CGO_ENABLED=0 go test -c -o /tmp/lb.test ./lb
//	../shared/tools/kvm-run --timeout 900 /tmp/lb.test -test.run '^$' -test.bench Kernel -test.benchtime 1x

const (
	benchVIPs     = 10000
	benchBackends = 5
)

// benchTable has n VIPs on 11.0.0.0/8 with per backends each in
// 198.18.0.0/15 (RFC 2544's benchmark range); change != 0 moves one
// backend of VIP 0 to another port.
func benchTable(n, per, change int) *discovery.Table {
	vips := make([]discovery.VIP, n)
	for i := range vips {
		v := &vips[i]
		v.Key = discovery.VIPKey{Protocol: discovery.TCP, Name: "app" + string(rune('a'+i%26)) + ".marathon", Port: uint16(1000 + i/26)}
		v.Addr4 = netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		for j := range per {
			k := i*per + j
			port := uint16(31000)
			if i == 0 && j == 0 {
				port += uint16(change)
			}
			v.Backends = append(v.Backends, discovery.Backend{
				Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18 + byte(k>>16), byte(k >> 8), byte(k)}), port), Weight: 1,
			})
		}
	}
	t := discovery.NewTable(vips, nil, nil)
	t.Built = time.Now()
	return t
}

// bencher builds a dataplane for a benchmark and clears the kernel.
type bencher struct {
	new   func(b *testing.B) *IPVS
	reset func(b *testing.B)
}

func fakeBencher() bencher {
	var k *fakeKernel
	var sys *fakeSystem
	return bencher{
		new: func(b *testing.B) *IPVS {
			if k == nil {
				k, sys = newFakeKernel(), newFakeSystem()
			}
			return newFakes(b, IPVSConfig{}, k, sys).x
		},
		reset: func(*testing.B) { k, sys = nil, nil },
	}
}

func kernelBencher(b *testing.B) bencher {
	requireKernel(b, "IPVS", checkIPVS())
	return bencher{
		new: func(b *testing.B) *IPVS {
			x, err := NewIPVS(IPVSConfig{Interface: testIface, Ranges: testRanges})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(x.Close)
			return x
		},
		reset: func(b *testing.B) { cleanKernel(b) },
	}
}

// benchFromEmpty measures one Apply of the whole table on an empty kernel.
func benchFromEmpty(b *testing.B, be bencher) {
	tb := benchTable(benchVIPs, benchBackends, 0)
	for b.Loop() {
		b.StopTimer()
		be.reset(b)
		x := be.new(b)
		b.StartTimer()
		apply(b, x, tb)
	}
	b.StopTimer()
	be.reset(b)
}

// benchOneChange measures Apply of a table that moves one backend (a
// deletion and an addition) on a programmed kernel, with p50 and p99.
func benchOneChange(b *testing.B, be bencher) {
	be.reset(b)
	x := be.new(b)
	tables := []*discovery.Table{benchTable(benchVIPs, benchBackends, 0), benchTable(benchVIPs, benchBackends, 1)}
	apply(b, x, tables[0])
	var took []time.Duration
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		apply(b, x, tables[i%2])
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.StopTimer()
	be.reset(b)
}

// benchNoop measures a sync that finds nothing to do: an Apply of the same
// table (from the view) or a repair (one full read of the kernel).
func benchNoop(b *testing.B, be bencher, repair bool) {
	be.reset(b)
	x := be.new(b)
	tb := benchTable(benchVIPs, benchBackends, 0)
	apply(b, x, tb)
	bw, _ := x.k.(batchWriter)
	ck := &countingKernel{kernel: x.k, batch: bw}
	x.k = ck
	for b.Loop() {
		if repair {
			x.repair(context.Background())
		} else {
			apply(b, x, tb)
		}
	}
	b.ReportMetric(float64(ck.writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(ck.dumps)/float64(b.N), "dumps/op")
	b.StopTimer()
	be.reset(b)
}

func BenchmarkApplyFromEmpty10k(b *testing.B)       { benchFromEmpty(b, fakeBencher()) }
func BenchmarkApplyOneChange10k(b *testing.B)       { benchOneChange(b, fakeBencher()) }
func BenchmarkApplyNoop10k(b *testing.B)            { benchNoop(b, fakeBencher(), false) }
func BenchmarkRepairNoop10k(b *testing.B)           { benchNoop(b, fakeBencher(), true) }
func BenchmarkKernelApplyFromEmpty10k(b *testing.B) { benchFromEmpty(b, kernelBencher(b)) }
func BenchmarkKernelApplyOneChange10k(b *testing.B) { benchOneChange(b, kernelBencher(b)) }
func BenchmarkKernelApplyNoop10k(b *testing.B)      { benchNoop(b, kernelBencher(b), false) }
func BenchmarkKernelRepairNoop10k(b *testing.B)     { benchNoop(b, kernelBencher(b), true) }

// BenchmarkLocalRoutes10k adds and deletes 10,000 local routes in batches
// through a veth in a fresh network namespace: the same netlink path as the
// VIP addresses, on a kernel feature this machine has too, so that it
// measures the VM's slowdown on kernel work.
func BenchmarkLocalRoutes10k(b *testing.B) {
	ns := newNetns(b)
	var s *nlSocket
	idx := 0
	(&backendNet{ns: ns}).in(b, func() (err error) {
		if s, err = newNLSocket(unix.NETLINK_ROUTE); err != nil {
			return err
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vbbench0"}, PeerName: "vbbench1"}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		l, err := netlink.LinkByName("vbbench0")
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		return netlink.LinkSetUp(l)
	})
	b.Cleanup(s.close)
	addrs := make([]netip.Addr, benchVIPs)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	for b.Loop() {
		for _, del := range []bool{false, true} {
			for i, err := range s.run(len(addrs), func(i int) request { return routeRequest(idx, addrs[i], del) }) {
				if err != nil {
					b.Fatalf("route %s (delete %v): %v", addrs[i], del, err)
				}
			}
		}
	}
}

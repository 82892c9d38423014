package lb

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// Benchmarks of the nftables dataplane at 10,000 VIPs × 5 backends,
// natively, each in a fresh network namespace (root and nf_tables, else
// skipped); make bench-nft runs them:
//
//	go test -run '^$' -bench NFT -benchtime 1x ./lb

// newBenchNFT returns an nftables dataplane on a fresh network namespace.
func newBenchNFT(b *testing.B) *NFTables {
	b.Helper()
	ns := newNetns(b)
	requireNFT(b, "nftables features", probeNFTables(int(ns)))
	x, err := NewNFTables(NFTConfig{NetNS: int(ns)})
	if err != nil {
		b.Fatalf("NewNFTables() = %v", err)
	}
	b.Cleanup(x.Close)
	return x
}

// applyWrites is Apply, returning the number of services written.
func applyWrites(b *testing.B, x *NFTables, tb *discovery.Table) int {
	b.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	n, err := x.apply(context.Background(), tb)
	if err != nil {
		b.Fatalf("Apply() = %v", err)
	}
	return n
}

// heapMiB is the live heap after a collection, in MiB.
func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkNFTBuild10k measures one Apply of the whole table on
// an empty namespace, and the heap the dataplane keeps for it.
func BenchmarkNFTBuild10k(b *testing.B) {
	tb := benchTable(benchVIPs, benchBackends, 0)
	var heap float64
	for b.Loop() {
		b.StopTimer()
		x := newBenchNFT(b)
		before := heapMiB()
		b.StartTimer()
		applyWrites(b, x, tb)
		b.StopTimer()
		heap = heapMiB() - before
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(heap, "heap-MiB")
}

// BenchmarkNFTOneChange10k measures Apply of a table that moves one
// backend of one VIP on a programmed namespace, with p50 and p99.
func BenchmarkNFTOneChange10k(b *testing.B) {
	x := newBenchNFT(b)
	tables := []*discovery.Table{benchTable(benchVIPs, benchBackends, 0), benchTable(benchVIPs, benchBackends, 1)}
	applyWrites(b, x, tables[0])
	var took []time.Duration
	writes, i := 0, 0
	for b.Loop() {
		i++
		t0 := time.Now()
		writes += applyWrites(b, x, tables[i%2])
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(writes)/float64(b.N), "services-written/op")
}

// BenchmarkNFTNoop10k measures an Apply of the table already
// programmed: it must write nothing.
func BenchmarkNFTNoop10k(b *testing.B) {
	x := newBenchNFT(b)
	tb := benchTable(benchVIPs, benchBackends, 0)
	applyWrites(b, x, tb)
	writes := 0
	for b.Loop() {
		writes += applyWrites(b, x, tb)
	}
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

// BenchmarkNFTRepairFull10k measures a repair that reads both tables back
// whole (as after a foreign commit) and finds nothing to change.
func BenchmarkNFTRepairFull10k(b *testing.B) {
	x := newBenchNFT(b)
	tb := benchTable(benchVIPs, benchBackends, 0)
	applyWrites(b, x, tb)
	writes := 0
	for b.Loop() {
		x.mu.Lock()
		x.view = nil
		n, err := x.sync(context.Background(), trigRepair)
		x.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		writes += n
	}
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

// BenchmarkNFTRepairUnchanged10k measures a repair when no commit
// happened since the last sync: one read of the ruleset generation.
func BenchmarkNFTRepairUnchanged10k(b *testing.B) {
	x := newBenchNFT(b)
	applyWrites(b, x, benchTable(benchVIPs, benchBackends, 0))
	for b.Loop() {
		x.repairs = 0 // never the periodic full read
		x.repair(context.Background(), true)
	}
}

package main

// TestBenchCluster (make bench-cluster; VIPBRIDGE_BENCH_CLUSTER=1): a real
// three-member etcd, two publisher daemons on the Marathon simulator and
// 100 then 500 node daemons in this process. It measures event → all
// nodes DNS-visible (a node's Table is what its DNS server answers from),
// etcd writes and bytes per change, Marathon's event streams, and the
// failover after the leader resigns. Figures, not assertions.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

func TestBenchCluster(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_CLUSTER") == "" {
		t.Skip("set VIPBRIDGE_BENCH_CLUSTER=1 (make bench-cluster)")
	}
	sizes := []int{100, 500}
	if s := os.Getenv("VIPBRIDGE_BENCH_CLUSTER_NODES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("VIPBRIDGE_BENCH_CLUSTER_NODES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	changes := 100
	t.Logf("%-6s %-8s %-8s %-8s %-8s %-8s %-9s %-9s %-8s %-14s %-14s", "nodes", "changes", "p50", "p99", "max", "node-p50",
		"puts/chg", "bytes/chg", "streams", "resign→leader", "resign→all")
	for _, n := range sizes {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) { benchCluster(t, n, changes) })
	}
}

func benchCluster(t *testing.T, nodes, changes int) {
	ec := etcdtest.Start(t, 3)
	sim := startSim(t, "small")
	rig := startClusterRig(t, ec, sim.URL(), sim.MesosURL(), 2, nodes)
	want := 2
	allSee := func(k int) {
		everyNode(t, rig.nodes, fmt.Sprintf("%d web backends", k), func(_ int, d *daemon) bool { return backendsOn(d, "web.marathon", 80) == k })
	}
	allSee(want)

	lat := newFanoutLatency(rig.nodes)
	defer lat.stop()
	putsBefore, bytesBefore := rig.publisherCounters(t)
	for i := range changes {
		k := 2 + (i+1)%4 // 3, 4, 5, 2, 3, …
		lat.expect(k)
		if err := sim.ScaleApp("/web", k); err != nil {
			t.Fatal(err)
		}
		lat.wait(t)
		time.Sleep(100 * time.Millisecond) // about 5 changes a second
	}
	putsAfter, bytesAfter := rig.publisherCounters(t)
	all, each := lat.results()
	streams := sim.Streams() // before a publisher stops

	// Resign: the leader stops; the other leads and a change made at once
	// reaches every node.
	leader := rig.nodes[0].addrs.Node.Leader()
	var other string
	var stopping *daemon
	for i, p := range rig.pubs {
		if id := fmt.Sprintf("pub-%d", i); id == leader {
			stopping = p
		} else {
			other = id
		}
	}
	t0 := time.Now()
	stopping.stop()
	if err := sim.ScaleApp("/web", 6); err != nil {
		t.Fatal(err)
	}
	everyNode(t, rig.nodes, "the other publisher to lead", func(_ int, d *daemon) bool { return d.addrs.Node.Leader() == other })
	toLeader := time.Since(t0)
	allSee(6)
	toAll := time.Since(t0)

	t.Logf("%-6d %-8d %-8s %-8s %-8s %-8s %-9.1f %-9.0f %-8d %-14s %-14s", nodes, len(all), ms(pctDur(all, 50)), ms(pctDur(all, 99)), ms(pctDur(all, 100)),
		ms(pctDur(each, 50)), (putsAfter-putsBefore)/float64(changes), (bytesAfter-bytesBefore)/float64(changes), streams,
		ms(toLeader), ms(toAll))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

func pctDur(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

// publisherCounters sums the publishers' keys and bytes written (from
// their /metrics).
func (r *clusterRig) publisherCounters(t testing.TB) (puts, bytes float64) {
	for _, p := range r.pubs {
		resp, err := http.Get("http://" + p.addrs.HTTP.String() + "/metrics")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			name, val, _ := strings.Cut(sc.Text(), " ")
			v, _ := strconv.ParseFloat(val, 64)
			switch name {
			case "vipbridge_cluster_publisher_puts_total":
				puts += v
			case "vipbridge_cluster_publisher_bytes_total":
				bytes += v
			}
		}
		resp.Body.Close()
	}
	return puts, bytes
}

// fanoutLatency records, per change, when each node first serves the
// expected backend count of web:80.
type fanoutLatency struct {
	mu     sync.Mutex
	target int
	start  time.Time
	seen   map[int]time.Time // node → when it served target
	all    []time.Duration   // per change: the last node's latency
	each   []time.Duration   // per change and node
	done   chan struct{}
	wg     sync.WaitGroup
	nodes  int
	filled chan struct{}
}

func newFanoutLatency(nodes []*daemon) *fanoutLatency {
	f := &fanoutLatency{done: make(chan struct{}), nodes: len(nodes)}
	for i, d := range nodes {
		ch, unsubscribe := d.addrs.Node.Subscribe()
		f.wg.Go(func() {
			defer unsubscribe()
			for {
				select {
				case <-f.done:
					return
				case <-ch:
				}
				k := backendsOn(d, "web.marathon", 80)
				now := time.Now()
				f.mu.Lock()
				if f.seen != nil && k == f.target {
					if _, ok := f.seen[i]; !ok {
						f.seen[i] = now
						f.each = append(f.each, now.Sub(f.start))
						if len(f.seen) == f.nodes {
							close(f.filled)
						}
					}
				}
				f.mu.Unlock()
			}
		})
	}
	return f
}

// expect starts a change whose nodes should serve k backends.
func (f *fanoutLatency) expect(k int) {
	f.mu.Lock()
	f.target, f.start, f.seen, f.filled = k, time.Now(), map[int]time.Time{}, make(chan struct{})
	f.mu.Unlock()
}

// wait waits until every node served the change (at most a minute).
func (f *fanoutLatency) wait(t testing.TB) {
	f.mu.Lock()
	filled := f.filled
	f.mu.Unlock()
	select {
	case <-filled:
	case <-time.After(time.Minute):
		f.mu.Lock()
		t.Fatalf("%d of %d nodes served the change within a minute", len(f.seen), f.nodes)
	}
	f.mu.Lock()
	var last time.Time
	for _, at := range f.seen {
		if at.After(last) {
			last = at
		}
	}
	f.all = append(f.all, last.Sub(f.start))
	f.seen = nil
	f.mu.Unlock()
}

func (f *fanoutLatency) results() (all, each []time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.all), slices.Clone(f.each)
}

func (f *fanoutLatency) stop() {
	close(f.done)
	f.wg.Wait()
}

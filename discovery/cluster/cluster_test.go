package cluster

// Publishers and nodes against a real three-member etcd cluster on
// loopback (etcdtest): convergence, slicing, no-op writes, failover,
// fencing, compaction and an etcd outage. The publishers' tables come
// from tableFeed, a stand-in for the reconciler; cmd/vipbridge's cluster
// tests run the real reconciler on the Marathon simulator.

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

// tableFeed is a TableSource whose Table the test sets.
type tableFeed struct {
	mu    sync.Mutex
	table *discovery.Table
	stale []string
	subs  map[chan struct{}]struct{}
}

func newFeed(vips []discovery.VIP) *tableFeed {
	f := &tableFeed{subs: map[chan struct{}]struct{}{}}
	f.set(vips)
	return f
}

func (f *tableFeed) set(vips []discovery.VIP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = discovery.NewTable(vips, nil, nil)
	f.notify()
}

// setStale says which upstream sources are unreachable, as a reconciler's
// Status does (and publishes, which notifies).
func (f *tableFeed) setStale(sources ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stale = sources
	f.notify()
}

func (f *tableFeed) notify() {
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *tableFeed) Table() *discovery.Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.table
}

func (f *tableFeed) Status() discovery.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return discovery.Status{Loaded: true, Synced: true, Stale: len(f.stale) > 0, StaleSources: f.stale}
}

func (f *tableFeed) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() { f.mu.Lock(); delete(f.subs, ch); f.mu.Unlock() }
}

// vipsOf makes n named VIPs "app<i>.marathon" tcp:80 with backends[i]
// backends each (1 when backends is short), plus one IP VIP.
func vipsOf(n int, backends map[int]int) []discovery.VIP {
	var out []discovery.VIP
	for i := range n {
		v := discovery.VIP{Key: discovery.VIPKey{Protocol: discovery.TCP, Name: fmt.Sprintf("app%d.marathon", i), Port: 80},
			Addr4: netip.AddrFrom4([4]byte{11, 0, 0, byte(i + 1)}), Labels: []string{fmt.Sprintf("/app%d:80", i)}, Apps: []string{fmt.Sprintf("/app%d", i)}}
		bn := max(backends[i], 1)
		for j := range bn {
			v.Backends = append(v.Backends, discovery.Backend{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(j >> 8), byte(j)}), uint16(31000+i)),
				Weight: 1, TaskID: fmt.Sprintf("app%d.t%d", i, j), AppID: fmt.Sprintf("/app%d", i)})
		}
		out = append(out, v)
	}
	ip := netip.MustParseAddr("10.99.0.1")
	out = append(out, discovery.VIP{Key: discovery.VIPKey{Protocol: discovery.TCP, IP: ip, Port: 443}, Addr4: ip,
		Backends: []discovery.Backend{{Addr: netip.MustParseAddrPort("10.1.0.9:8443"), Weight: 1, TaskID: "ip.t0", AppID: "/ip"}}})
	return out
}

type testPublisher struct {
	*Publisher
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the publisher: a resign, or a crash (abandon: no resign, the
// lease left to expire).
func (p *testPublisher) stop(crash bool) {
	p.abandon.Store(crash)
	p.cancel()
	<-p.done
}

func startPublisher(t *testing.T, ec *etcdtest.Cluster, feed TableSource, id string, hook func(*Publisher)) *testPublisher {
	t.Helper()
	cli, err := NewClient(ClientConfig{Endpoints: ec.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	p, err := NewPublisher(PublisherConfig{Client: cli, ID: id, Tables: feed, SessionTTL: 2 * time.Second, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp := &testPublisher{Publisher: p, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(tp.done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-tp.done })
	return tp
}

type testNode struct {
	*Node
	cli    *clientv3.Client
	path   string
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, ec *etcdtest.Cluster, cache string) *testNode {
	t.Helper()
	cli, err := NewClient(ClientConfig{Endpoints: ec.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	n, err := NewNode(NodeConfig{Client: cli, CachePath: cache, CacheNoSync: true, CacheEvery: 100 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{Node: n, cli: cli, path: cache, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(tn.done); n.Run(ctx) }()
	t.Cleanup(tn.stop)
	return tn
}

func (n *testNode) stop() {
	n.cancel()
	<-n.done
}

// waitFor polls cond until it holds, for up to two minutes (the machine
// is shared and loaded: no duration is asserted).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shape is a Table without its addresses: what the nodes must agree with
// the publisher on (the addresses are the cluster's, checked apart).
func shape(t *discovery.Table) string {
	var vips []discovery.VIP
	for v := range t.VIPs.All() {
		c := *v
		if c.Key.Name != "" {
			c.Addr4, c.Addr6 = netip.Addr{}, netip.Addr{}
		}
		vips = append(vips, c)
	}
	return discovery.NewTable(vips, nil, nil).String()
}

// addrBook checks, across every table it sees, that no name ever maps to
// two addresses and no address to two names.
type addrBook struct {
	mu     sync.Mutex
	byName map[string]netip.Addr
	byAddr map[netip.Addr]string
}

func newAddrBook() *addrBook {
	return &addrBook{byName: map[string]netip.Addr{}, byAddr: map[netip.Addr]string{}}
}

func (b *addrBook) check(t *testing.T, where string, tb *discovery.Table) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for v := range tb.VIPs.All() {
		if v.Key.Name == "" {
			continue
		}
		for _, a := range []netip.Addr{v.Addr4, v.Addr6} {
			if !a.IsValid() {
				continue
			}
			fam := v.Key.Name + map[bool]string{true: "/4", false: "/6"}[a.Is4()]
			if old, ok := b.byName[fam]; ok && old != a {
				t.Errorf("%s: %s maps to %s and %s", where, fam, old, a)
			}
			if old, ok := b.byAddr[a]; ok && old != fam {
				t.Errorf("%s: %s maps to %s and %s", where, a, old, fam)
			}
			b.byName[fam], b.byAddr[a] = a, fam
		}
	}
}

// converged waits until every node serves want's shape, fresh.
func converged(t *testing.T, book *addrBook, nodes []*testNode, want *discovery.Table) {
	t.Helper()
	ws := shape(want)
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to converge", i), func() bool {
			tb := n.Table()
			book.check(t, fmt.Sprintf("node %d", i), tb)
			return !tb.Stale && shape(tb) == ws
		})
	}
}

func TestPublisherNodesConverge(t *testing.T) {
	testPublisherNodesConverge(t, etcdtest.Start(t, 3))
}

// testPublisherNodesConverge: two publishers and ten nodes on ec converge,
// through a stale upstream, a change, a resign, a crash and a node's
// restart from its cache.
func testPublisherNodesConverge(t *testing.T, ec *etcdtest.Cluster) {
	feed := newFeed(vipsOf(20, map[int]int{3: 250}))
	book := newAddrBook()
	p1 := startPublisher(t, ec, feed, "p1", nil)
	waitFor(t, "p1 to lead", p1.Leading)
	p2 := startPublisher(t, ec, feed, "p2", nil)
	var nodes []*testNode
	for i := range 10 {
		nodes = append(nodes, startNode(t, ec, filepath.Join(t.TempDir(), fmt.Sprintf("n%d.db", i))))
	}
	converged(t, book, nodes, feed.Table())
	if p2.Leading() {
		t.Fatalf("p1 and p2 both lead")
	}
	tb := nodes[0].Table()
	v, ok := tb.VIP(discovery.VIPKey{Protocol: discovery.TCP, Name: "app3.marathon", Port: 80})
	if !ok || len(v.Backends) != 250 || !v.Addr4.IsValid() {
		t.Fatalf("sliced vip on a node = %+v, %v; want 250 backends and an address", v, ok)
	}
	if got := nodes[0].Leader(); got != "p1" {
		t.Errorf("node's leader = %q, want p1", got)
	}

	// Marathon unreachable from the leader: every node says so, stale.
	feed.setStale("marathon")
	waitFor(t, "nodes to see the leader's stale upstream", func() bool {
		st := nodes[9].Status()
		return nodes[9].Table().Stale && slices.Equal(st.StaleSources, []string{"publisher:marathon"})
	})
	feed.setStale()
	converged(t, book, nodes, feed.Table())

	// A change flows; the same table again writes nothing.
	puts := testutil.ToFloat64(p1.met.puts)
	feed.set(vipsOf(21, map[int]int{3: 251}))
	converged(t, book, nodes, feed.Table())
	if got := testutil.ToFloat64(p1.met.puts) - puts; got > 5 {
		t.Errorf("one new vip and one new backend wrote %v keys, want ≤ 5", got)
	}
	puts = testutil.ToFloat64(p1.met.puts)
	feed.set(vipsOf(21, map[int]int{3: 251}))
	time.Sleep(300 * time.Millisecond)
	if got := testutil.ToFloat64(p1.met.puts) - puts; got != 0 {
		t.Errorf("an unchanged table wrote %v keys, want 0", got)
	}

	// Resign: p2 takes over and changes keep flowing.
	p1.stop(false)
	waitFor(t, "p2 to lead after a resign", p2.Leading)
	feed.set(vipsOf(22, nil))
	converged(t, book, nodes, feed.Table())
	waitFor(t, "nodes to see p2 lead", func() bool { return nodes[0].Leader() == "p2" })

	// Crash (no resign): a new publisher takes over after the lease.
	p3 := startPublisher(t, ec, feed, "p3", nil)
	p2.stop(true)
	waitFor(t, "p3 to lead after a crash", p3.Leading)
	feed.set(vipsOf(23, map[int]int{0: 3}))
	converged(t, book, nodes, feed.Table())

	// A node restarted from its cache serves at once, then catches up.
	n0 := nodes[0]
	n0.stop()
	cached := feed.Table().VIPs.Len()
	feed.set(vipsOf(30, nil))
	restarted := startNode(t, ec, n0.path)
	if got := restarted.Table().VIPs.Len(); got != cached {
		t.Errorf("restarted node serves %d vips from its cache, want %d", got, cached)
	}
	nodes[0] = restarted
	converged(t, book, nodes, feed.Table())
}

// A table larger than a page: the node lists it in pages, and a new leader
// reads it in pages and finds nothing to write.
func TestLargeTableInPages(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	vips := vipsOf(2500, nil)
	for i := range vips {
		if vips[i].Key.Name != "" {
			vips[i].Addr4 = netip.AddrFrom4([4]byte{11, 1, byte(i >> 8), byte(i)})
		}
	}
	feed := newFeed(vips)
	p1 := startPublisher(t, ec, feed, "p1", nil)
	waitFor(t, "p1 to lead", p1.Leading)
	book := newAddrBook()
	n := startNode(t, ec, "")
	converged(t, book, []*testNode{n}, feed.Table())
	p2 := startPublisher(t, ec, feed, "p2", nil)
	p1.stop(false)
	waitFor(t, "p2 to lead", p2.Leading)
	waitFor(t, "p2 to write its leader key", func() bool { return n.Leader() == "p2" })
	time.Sleep(500 * time.Millisecond)
	if got := testutil.ToFloat64(p2.met.puts); got != 1 {
		t.Errorf("a new leader over an unchanged table wrote %v keys, want 1 (status/leader)", got)
	}
	if got := testutil.ToFloat64(p2.met.allocs); got != 0 {
		t.Errorf("a new leader allocated %v addresses, want 0", got)
	}
}

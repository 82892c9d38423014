// Package embedtest runs cluster mode against the current etcd server
// (go.etcd.io/etcd/server/v3 v3.7, embedded in this test binary only; the
// other tests use the etcd binary, 3.4): a publisher writes, a node
// converges, a compaction makes a restarted node relist.
package embedtest

import (
	"context"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster"
)

// feed is the publisher's table source.
type feed struct {
	mu    sync.Mutex
	table *discovery.Table
	subs  []chan struct{}
}

func (f *feed) set(n int) {
	var vips []discovery.VIP
	for i := range n {
		vips = append(vips, discovery.VIP{Key: discovery.VIPKey{Protocol: discovery.TCP, Name: "app" + string(rune('a'+i)) + ".marathon", Port: 80},
			Addr4:    netip.AddrFrom4([4]byte{11, 0, 0, byte(i + 1)}),
			Backends: []discovery.Backend{{Addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)), Weight: 1}}})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = discovery.NewTable(vips, nil, nil)
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *feed) Table() *discovery.Table  { f.mu.Lock(); defer f.mu.Unlock(); return f.table }
func (f *feed) Status() discovery.Status { return discovery.Status{Loaded: true, Synced: true} }
func (f *feed) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}

func startEtcd(t *testing.T) []string {
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = true
	lc, _ := url.Parse("http://127.0.0.1:0")
	lp, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*lc}, []url.URL{*lc}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*lp}, []url.URL{*lp}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("embedded etcd not ready")
	}
	return []string{"http://" + e.Clients[0].Addr().String()}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func run(t *testing.T, r interface{ Run(context.Context) error }) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCurrentEtcd(t *testing.T) {
	endpoints := startEtcd(t)
	client := func() *cluster.ClientConfig { return &cluster.ClientConfig{Endpoints: endpoints} }
	pcli, err := cluster.NewClient(*client())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pcli.Close() })
	f := &feed{}
	f.set(3)
	pub, err := cluster.NewPublisher(cluster.PublisherConfig{Client: pcli, ID: "p", Tables: f, SessionTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run(t, pub)
	ncli, err := cluster.NewClient(*client())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ncli.Close() })
	cache := t.TempDir() + "/node.db"
	node, err := cluster.NewNode(cluster.NodeConfig{Client: ncli, CachePath: cache, CacheNoSync: true, CacheEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopNode := context.WithCancel(context.Background())
	nodeDone := make(chan struct{})
	go func() { defer close(nodeDone); node.Run(ctx) }()
	waitFor(t, "the node to serve 3 vips", func() bool { return node.Table().VIPs.Len() == 3 && !node.Table().Stale })
	stopNode()
	<-nodeDone

	// Offline past a compaction: the restarted node relists.
	for i := 4; i <= 8; i++ {
		f.set(i)
		time.Sleep(150 * time.Millisecond)
	}
	resp, err := pcli.Get(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pcli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	node, err = cluster.NewNode(cluster.NodeConfig{Client: ncli, CachePath: cache, CacheNoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	run(t, node)
	waitFor(t, "the restarted node to serve 8 vips", func() bool { return node.Table().VIPs.Len() == 8 && !node.Table().Stale })
	if node.Leader() != "p" {
		t.Errorf("leader = %q, want p", node.Leader())
	}
}

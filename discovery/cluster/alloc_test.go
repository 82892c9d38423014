package cluster

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

// fakeClock is a settable clock for the addresses' grace period.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestClusterAddresses(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	clock := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	feed := newFeed(vipsOf(5, nil))
	p1 := startPublisher(t, ec, feed, "p1", func(p *Publisher) { p.now = clock.Now })
	waitFor(t, "p1 to lead", p1.Leading)
	n := startNode(t, ec, "")
	book := newAddrBook()
	converged(t, book, []*testNode{n}, feed.Table())
	cli := ec.Client()
	keys := newKeys("")
	alloc := func(name string) (allocValue, bool) {
		resp, err := cli.Get(context.Background(), keys.allocName(name, false))
		if err != nil || len(resp.Kvs) == 0 {
			return allocValue{}, false
		}
		var av allocValue
		if err := json.Unmarshal(resp.Kvs[0].Value, &av); err != nil {
			t.Fatalf("alloc value of %s: %v", name, err)
		}
		return av, true
	}

	// The first leader brings its own (single-node) addresses in.
	for i, v := range feed.Table().VIPs.Slice() {
		if v.Key.Name == "" {
			continue
		}
		if av, ok := alloc(v.Key.Name); !ok || av.Addr != v.Addr4 {
			t.Errorf("vip %d: cluster address %v, %v; want its own %s", i, av.Addr, ok, v.Addr4)
		}
	}

	// A joining publisher whose own address of app0 is app4's gets the
	// cluster's, which never changes.
	p1.stop(false)
	joined := vipsOf(5, nil)
	joined[0].Addr4 = joined[4].Addr4
	feed2 := newFeed(joined)
	p2 := startPublisher(t, ec, feed2, "p2", func(p *Publisher) { p.now = clock.Now })
	waitFor(t, "p2 to lead", p2.Leading)
	feed2.set(vipsOf(6, nil))
	converged(t, book, []*testNode{n}, feed2.Table())

	// A name that goes keeps its address for the grace period, then it is
	// freed with its reverse key.
	before, _ := alloc("app5.marathon")
	feed2.set(vipsOf(5, nil))
	converged(t, book, []*testNode{n}, feed2.Table())
	waitFor(t, "app5 to be marked gone", func() bool { av, _ := alloc("app5.marathon"); return !av.GoneSince.IsZero() })
	clock.Add(23 * time.Hour)
	feed2.set(vipsOf(6, nil))
	converged(t, book, []*testNode{n}, feed2.Table())
	if av, ok := alloc("app5.marathon"); !ok || av.Addr != before.Addr || !av.GoneSince.IsZero() {
		t.Fatalf("app5 back within the grace period: %+v, %v; want %s again", av, ok, before.Addr)
	}
	feed2.set(vipsOf(5, nil))
	waitFor(t, "app5 to be marked gone", func() bool { av, _ := alloc("app5.marathon"); return !av.GoneSince.IsZero() })
	clock.Add(25 * time.Hour)
	feed2.set(vipsOf(5, map[int]int{0: 2}))
	waitFor(t, "app5's address to be freed", func() bool { _, ok := alloc("app5.marathon"); return !ok })
	resp, err := cli.Get(context.Background(), keys.allocAddr(before.Addr))
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("reverse key of a freed address: %v, %v", resp, err)
	}
}

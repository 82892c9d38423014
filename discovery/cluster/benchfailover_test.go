package cluster

// TestBenchFailover (make bench-cluster; VIPBRIDGE_BENCH_CLUSTER=1): how
// long the standby takes to lead after the leader crashes (its lease left
// to expire, the default 5 s session) and after it resigns, and how long
// until a change written by the new leader reaches a node. Figures, not
// assertions.

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

func TestBenchFailover(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_CLUSTER") == "" {
		t.Skip("set VIPBRIDGE_BENCH_CLUSTER=1 (make bench-cluster)")
	}
	ec := etcdtest.Start(t, 3)
	feed := newFeed(vipsOf(10, nil))
	ttl5 := func(p *Publisher) { p.ttl = 5 }
	n := startNode(t, ec, "")
	book := newAddrBook()
	t.Logf("%-8s %-6s %-14s %-14s", "ending", "round", "→new leader", "→node sees")
	size := 10
	for round := range 3 {
		for _, crash := range []bool{true, false} {
			a := startPublisher(t, ec, feed, fmt.Sprintf("a%d%v", round, crash), ttl5)
			waitFor(t, "a to lead", a.Leading)
			b := startPublisher(t, ec, feed, fmt.Sprintf("b%d%v", round, crash), ttl5)
			converged(t, book, []*testNode{n}, feed.Table())
			t0 := time.Now()
			a.stop(crash)
			size++
			feed.set(vipsOf(size, nil))
			waitFor(t, "b to lead", b.Leading)
			toLeader := time.Since(t0)
			converged(t, book, []*testNode{n}, feed.Table())
			toNode := time.Since(t0)
			ending := "resign"
			if crash {
				ending = "crash"
			}
			t.Logf("%-8s %-6d %-14s %-14s", ending, round, toLeader.Round(time.Millisecond), toNode.Round(time.Millisecond))
			b.stop(false)
		}
	}
}

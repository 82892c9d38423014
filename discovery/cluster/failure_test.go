package cluster

// The failures a cluster must survive, against real etcd: a publisher
// paused past its lease cannot write (fencing), a node offline past a
// compaction relists, and nodes keep serving through a full etcd outage,
// then catch up.

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

func TestPausedPublisherIsFenced(t *testing.T) {
	testPausedPublisherIsFenced(t, etcdtest.Start(t, 3))
}

// testPausedPublisherIsFenced: a publisher paused past its lease on ec
// cannot write when it resumes.
func testPausedPublisherIsFenced(t *testing.T, ec *etcdtest.Cluster) {
	feedA, feedB := newFeed(vipsOf(5, nil)), newFeed(vipsOf(7, nil))
	var paused atomic.Bool
	blocked, release := make(chan struct{}, 1), make(chan struct{})
	var mu sync.Mutex
	var terms []*writer
	var once sync.Once
	resume := func() { once.Do(func() { close(release) }) }
	p1 := startPublisher(t, ec, feedA, "p1", func(p *Publisher) {
		p.onLead = func(w *writer) { mu.Lock(); terms = append(terms, w); mu.Unlock() }
		p.beforeWrite = func() {
			if paused.Load() {
				select {
				case blocked <- struct{}{}:
				default:
				}
				<-release
			}
		}
	})
	t.Cleanup(resume) // before p1's own cleanup, which waits for it
	waitFor(t, "p1 to lead", p1.Leading)
	book := newAddrBook()
	nodes := []*testNode{startNode(t, ec, ""), startNode(t, ec, "")}
	converged(t, book, nodes, feedA.Table())

	// p1 stops in the middle of a write; its lease expires meanwhile
	// (revoked here, as etcd does when keepalives stop).
	paused.Store(true)
	feedA.set(vipsOf(6, nil))
	<-blocked
	mu.Lock()
	w := terms[0]
	mu.Unlock()
	lease, err := strconv.ParseInt(w.fenceKey[strings.LastIndex(w.fenceKey, "/")+1:], 16, 64)
	if err != nil {
		t.Fatalf("lease of %s: %v", w.fenceKey, err)
	}
	admin := ec.Client()
	if _, err := admin.Revoke(context.Background(), clientv3.LeaseID(lease)); err != nil {
		t.Fatalf("revoke p1's lease: %v", err)
	}
	p2 := startPublisher(t, ec, feedB, "p2", nil)
	waitFor(t, "p2 to lead", p2.Leading)
	converged(t, book, nodes, feedB.Table())
	resume()

	// Whatever p1's blocked write did, and whatever it tries with its old
	// term, etcd keeps p2's table.
	err = w.txn(context.Background(), []clientv3.Op{clientv3.OpPut(w.p.keys.group("n/app5.marathon"), "{}")}, nil)
	if err != errFenced {
		t.Fatalf("write of a deposed term = %v, want errFenced", err)
	}
	if testutil.ToFloat64(p1.met.fenced) < 1 {
		t.Errorf("fenced writes not counted")
	}
	time.Sleep(500 * time.Millisecond)
	for i, n := range nodes {
		if shape(n.Table()) != shape(feedB.Table()) {
			t.Errorf("node %d left p2's table after the paused publisher resumed", i)
		}
	}
}

func TestNodeOfflinePastCompactionRelists(t *testing.T) {
	testNodeRelists(t, etcdtest.Start(t, 3))
}

// testNodeRelists: a node offline past a compaction of ec relists once
// and converges.
func testNodeRelists(t *testing.T, ec *etcdtest.Cluster) {
	feed := newFeed(vipsOf(5, nil))
	startPublisher(t, ec, feed, "p1", nil)
	book := newAddrBook()
	path := filepath.Join(t.TempDir(), "node.db")
	n := startNode(t, ec, path)
	other := startNode(t, ec, "")
	converged(t, book, []*testNode{n, other}, feed.Table())
	n.stop()
	for i := range 20 {
		feed.set(vipsOf(6+i, map[int]int{0: i + 2}))
		converged(t, book, []*testNode{other}, feed.Table())
	}
	ec.Compact(ec.Client())
	n = startNode(t, ec, path)
	converged(t, book, []*testNode{n, other}, feed.Table())
	if got := testutil.ToFloat64(n.met.relists); got != 1 {
		t.Errorf("relists after a compaction = %v, want 1", got)
	}
}

func TestEtcdOutageNodesKeepServing(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s etcd outage")
	}
	ec := etcdtest.Start(t, 3)
	feed := newFeed(vipsOf(8, nil))
	startPublisher(t, ec, feed, "p1", nil)
	book := newAddrBook()
	var nodes []*testNode
	for i := range 5 {
		nodes = append(nodes, startNode(t, ec, filepath.Join(t.TempDir(), fmt.Sprintf("n%d.db", i))))
	}
	converged(t, book, nodes, feed.Table())
	names := liveNames(feed.Table())

	for i := range 3 {
		ec.StopMember(i)
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to mark its table stale", i), func() bool { return n.Table().Stale })
	}
	feed.set(vipsOf(9, nil)) // a change the publisher cannot write yet
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		for i, n := range nodes {
			tb := n.Table()
			for _, name := range names {
				if _, err := tb.Lookup(name); err != nil {
					t.Fatalf("node %d lost %s during the outage: %v", i, name, err)
				}
			}
		}
	}
	for i := range 3 {
		ec.StartMember(i)
	}
	converged(t, book, nodes, feed.Table())
	feed.set(vipsOf(10, nil))
	converged(t, book, nodes, feed.Table())
}

func liveNames(tb *discovery.Table) []string {
	var out []string
	for name := range tb.NameEntries() {
		out = append(out, name)
	}
	return out
}

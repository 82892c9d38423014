package main

// What a cluster publisher serves: the VIPs and addresses etcd holds, as
// every node does, with the task zones (.mesos, mesos. and
// dcos.thisdcos.directory) and label errors of its own reconciler, which
// follows Marathon and Mesos. Nodes forward the mesos domain to the
// publishers (--forward-zone), as DC/OS's agents forward it to the
// masters' mesos-dns.

import (
	"sync"
	"sync/atomic"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster"
)

// publisherTables merges the node's and the reconciler's Tables; the
// merged Table is made once per pair, so DNS's packed replies, keyed by
// the Table, are built once per change.
type publisherTables struct {
	node *cluster.Node
	rec  *discovery.Reconciler
	last atomic.Pointer[mergedTable]
}

// mergedTable is the merge of one pair of Tables.
type mergedTable struct{ node, rec, out *discovery.Table }

// Table returns the node's Table with the reconciler's task zones.
func (p *publisherTables) Table() *discovery.Table {
	n, r := p.node.Table(), p.rec.Table()
	if m := p.last.Load(); m != nil && m.node == n && m.rec == r {
		return m.out
	}
	m := &mergedTable{node: n, rec: r, out: n.WithTaskZonesOf(r)}
	p.last.Store(m) // a racing caller may store its own merge of the same pair: equal
	return m.out
}

// Status is the node's: how fresh what etcd holds is (a leader that
// cannot reach Marathon or Mesos marks it stale).
func (p *publisherTables) Status() discovery.Status { return p.node.Status() }

// Subscribe wakes the subscriber when either Table is published.
func (p *publisherTables) Subscribe() (<-chan struct{}, func()) {
	nc, nstop := p.node.Subscribe()
	rc, rstop := p.rec.Subscribe()
	out, done := make(chan struct{}, 1), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-nc:
			case <-rc:
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	})
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			nstop()
			rstop()
		})
	}
}

package cluster

// How a node's new Table takes effect, in the reconciler's order
// (discovery/publish.go): the names that go away are withdrawn from DNS,
// the dataplane gets the new Table, then the new Table is published. A
// failed Apply keeps the withdrawn Table and is retried with backoff.

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/vipbridge/vipbridge/discovery"
)

// effects makes the Tables offered through n.want take effect until ctx
// ends; a nil offer republishes the current Table if its staleness moved.
func (n *Node) effects(ctx context.Context) {
	delay := newBackoff(500*time.Millisecond, 30*time.Second)
	var next *discovery.Table
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-n.want:
			if t != nil {
				next = t
			}
		case <-retry:
			retry = nil
		}
		if next == nil {
			n.restale()
			continue
		}
		if retry != nil {
			continue
		}
		if err := n.takeEffect(ctx, next); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.met.applyErrors.Inc()
			n.log.Warn("dataplane apply failed, keeping previous table", "err", err)
			retry = time.After(delay.next())
			continue
		}
		next = nil
		delay.reset()
	}
}

// takeEffect withdraws, applies and publishes next.
func (n *Node) takeEffect(ctx context.Context, next *discovery.Table) error {
	if n.dp != nil {
		prev := n.table.Load()
		gone := false
		discovery.ChangedNames(prev, next, func(_ string, _, cur *discovery.NameEntry) { gone = gone || cur == nil })
		if gone {
			w := prev.WithAnnounced(func(v *discovery.VIP) bool {
				if len(v.Backends) == 0 {
					return false
				}
				_, err := next.Lookup(v.Key.Name)
				return v.Key.Name == "" || err == nil
			})
			n.publish(w)
		}
		if err := n.dp.Apply(ctx, next); err != nil {
			return err
		}
	}
	n.publish(next)
	return nil
}

// publish makes a copy of t the Table readers see, with the current
// staleness (t itself may be published already: never mutated).
func (n *Node) publish(next *discovery.Table) {
	t := new(discovery.Table)
	*t = *next
	n.mu.Lock()
	t.Stale = n.staleLocked()
	t.Generation = n.table.Load().Generation + 1
	n.table.Store(t)
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	n.mu.Unlock()
	n.met.vips.Set(float64(t.VIPs.Len()))
}

// restale republishes the current Table when its staleness moved.
func (n *Node) restale() {
	cur := n.table.Load()
	n.mu.Lock()
	stale := n.staleLocked()
	n.mu.Unlock()
	if cur.Stale != stale {
		n.publish(cur)
	}
}

// watchConnection follows the etcd client's connection state: a node is
// connected while its gRPC connection is ready. While connected it asks
// for a progress notification every progressEvery, which tells the watch
// that its revision is still current (the revision's age).
func (n *Node) watchConnection(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastProgress time.Time // at once: a watch from the cache learns it is current
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		up := n.cli.ActiveConnection().GetState() == connectivity.Ready
		n.mu.Lock()
		changed := n.connected != up
		n.connected = up
		n.mu.Unlock()
		if changed {
			n.met.connected.Set(b2f(up))
			if up {
				n.log.Info("etcd connected")
			} else {
				n.log.Warn("etcd unreachable, serving the last table as stale")
			}
			n.offer(nil)
		}
		if up && time.Since(lastProgress) >= progressEvery {
			lastProgress = time.Now()
			rctx, cancel := context.WithTimeout(ctx, progressEvery)
			_ = n.cli.RequestProgress(clientv3.WithRequireLeader(rctx)) // a failure shows as lost connectivity
			cancel()
		}
	}
}

// progressEvery is how often a connected node asks etcd to confirm its
// watch is current.
const progressEvery = 5 * time.Second

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

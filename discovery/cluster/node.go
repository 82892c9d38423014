package cluster

// The node role: a Table source fed from etcd instead of Marathon and
// Mesos. It starts from its bbolt cache, lists the watched range at one
// revision, watches from the next, relists on compaction, and programs the
// dataplane and publishes each new Table as the reconciler does (withdraw,
// apply, publish). While etcd is unreachable it keeps its last Table,
// marked stale, and flushes nothing.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
)

// NodeConfig configures a Node.
type NodeConfig struct {
	// Client is the etcd client; required. The Node does not close it.
	Client *clientv3.Client
	// Prefix is where vipbridge's keys are; "" means DefaultPrefix.
	Prefix string
	// CachePath is the node's bbolt cache file; "" keeps none.
	CachePath string
	// CacheNoSync skips fsync on cache writes (tests, benchmarks).
	CacheNoSync bool
	// CacheEvery is how often changes are written to the cache; zero
	// means one second.
	CacheEvery time.Duration
	// Dataplane, if not nil, gets every new Table before it is published.
	Dataplane discovery.Dataplane
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs state changes; nil discards.
	Logger *slog.Logger
}

// errRegressed means etcd's revision is below the node's: etcd was
// restored from a backup or replaced, and is listed again.
var errRegressed = errors.New("etcd revision went back")

// listPage is how many keys one list request returns.
const listPage = 1000

// Node serves the VIP table the elected publisher wrote to etcd. Its
// Table and Status methods make it a table source for dnsserver and the
// HTTP API, as *discovery.Reconciler is in single-node mode.
type Node struct {
	cli   *clientv3.Client
	keys  keys
	dp    discovery.Dataplane
	log   *slog.Logger
	met   *nodeMetrics
	cache *cache
	every time.Duration

	table atomic.Pointer[discovery.Table]
	want  chan *discovery.Table // cap 1: the latest Table to make take effect
	view  *view                 // owned by the sync loop

	mu        sync.Mutex // guards the fields below
	loaded    bool       // the cache or a list filled the view
	synced    bool       // listed or watched etcd at least once
	connected bool
	leader    string
	stale     []string // the upstream sources the leader finds stale
	rev       int64
	appliedAt time.Time // when rev was last confirmed current
	lastErr   string
	pending   cacheBatch // not yet written to the cache
	subs      map[chan struct{}]struct{}
}

// NewNode loads the cache, if any, and publishes its Table at once,
// marked stale until etcd is listed.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Client == nil {
		return nil, errors.New("new node: no etcd client")
	}
	n := &Node{
		cli: cfg.Client, keys: newKeys(cfg.Prefix), dp: cfg.Dataplane, log: cfg.Logger,
		met: newNodeMetrics(), every: cfg.CacheEvery, want: make(chan *discovery.Table, 1),
		view: newView(), pending: cacheBatch{kv: map[string][]byte{}},
		subs: map[chan struct{}]struct{}{},
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "cluster-node")
	if n.every <= 0 {
		n.every = time.Second
	}
	if err := metrics.Register(cfg.Registerer, n.met.collectors(n)...); err != nil {
		return nil, fmt.Errorf("new node: register metrics: %w", err)
	}
	t := discovery.NewTable(nil, nil, nil)
	if cfg.CachePath != "" {
		c, err := openCache(cfg.CachePath, cfg.CacheNoSync)
		if err != nil {
			return nil, fmt.Errorf("new node: %w", err)
		}
		kv, rev, err := c.load()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("new node: %w", err)
		}
		n.cache = c
		if rev > 0 {
			n.view.replace(kv, rev)
			n.view.build()
			t = n.view.table()
			n.loaded, n.rev, n.leader, n.stale = true, rev, n.view.leader, n.view.stale
			n.log.Info("loaded cluster cache", "revision", rev, "vips", t.VIPs.Len())
		}
	}
	t.Stale = true
	t.Generation = 1
	n.table.Store(t)
	return n, nil
}

// Table returns the published Table; never nil.
func (n *Node) Table() *discovery.Table { return n.table.Load() }

// Status reports how fresh the published Table is: the source is "etcd".
func (n *Node) Status() discovery.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := discovery.Status{Loaded: n.loaded, Synced: n.synced, LastSync: map[string]time.Time{}, LastError: map[string]string{},
		Generation: n.table.Load().Generation}
	if !n.appliedAt.IsZero() {
		st.LastSync["etcd"] = n.appliedAt
	}
	if n.lastErr != "" {
		st.LastError["etcd"] = n.lastErr
	}
	if !n.connected || !n.synced || n.leader == "" {
		st.StaleSources = []string{"etcd"}
	}
	for _, s := range n.stale {
		st.StaleSources = append(st.StaleSources, "publisher:"+s)
	}
	st.Stale = len(st.StaleSources) > 0
	return st
}

// staleLocked: etcd unreachable, never listed, no publisher leads, or the
// leader's upstream is unreachable.
func (n *Node) staleLocked() bool {
	return !n.connected || !n.synced || n.leader == "" || len(n.stale) > 0
}

// Subscribe returns a channel that receives a value (coalesced, capacity
// one) after every publish, and a function that ends the subscription.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Leader returns the ID of the leading publisher as etcd last said, ""
// when none leads.
func (n *Node) Leader() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// Revision returns the etcd revision the published Table is at.
func (n *Node) Revision() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rev
}

// Run syncs from etcd, makes every new Table take effect and writes the
// cache until ctx ends; it returns nil then. On the way out it writes the
// cache once more and closes it.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	n.want <- n.table.Load() // the cached Table goes to the dataplane first
	wg.Go(func() { n.effects(ctx) })
	wg.Go(func() { n.sync(ctx) })
	wg.Go(func() { n.watchConnection(ctx) })
	if n.cache != nil {
		wg.Go(func() { n.writeCache(ctx) })
	}
	wg.Wait()
	if n.cache != nil {
		n.flushCache()
		if err := n.cache.close(); err != nil {
			return fmt.Errorf("close cluster cache: %w", err)
		}
	}
	return nil
}

// sync lists and watches until ctx ends. A node with a cache watches from
// the cached revision + 1; a compaction (or an etcd whose revision is
// below the cache's: restored or replaced) relists at once; other failures
// resume the watch from the last applied revision after a jittered
// backoff.
func (n *Node) sync(ctx context.Context) {
	relist := n.view.rev == 0
	delay := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		var err error
		if relist {
			if err = n.list(ctx); err == nil {
				relist = false
			}
		}
		if err == nil {
			err = n.watch(ctx)
			if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, errRegressed) {
				n.met.relists.Inc()
				n.log.Info("watch revision compacted, relisting", "revision", n.view.rev)
				relist = true
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		n.failed(err)
		if !delay.wait(ctx) {
			return
		}
	}
}

func (n *Node) failed(err error) {
	n.mu.Lock()
	n.lastErr = err.Error()
	n.mu.Unlock()
	n.log.Warn("etcd sync failed, serving the last table", "err", err)
}

// list reads the watched range at one revision, paged, and replaces the
// view with it.
func (n *Node) list(ctx context.Context) error {
	start, end := n.keys.watchRange()
	kv := map[string][]byte{}
	var rev int64
	from := start
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := n.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("list %s: %w", start, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, e := range resp.Kvs {
			kv[string(e.Key[len(n.keys.prefix):])] = e.Value
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	n.view.replace(kv, rev)
	n.applied(true, func(b *cacheBatch) { b.replace, b.kv = true, kv })
	n.mu.Lock()
	n.synced = true
	n.mu.Unlock()
	n.log.Info("listed etcd", "revision", rev, "keys", len(kv), "vips", n.table.Load().VIPs.Len())
	return nil
}

// watch follows the range from the view's revision + 1 until ctx ends or
// the watch fails (rpctypes.ErrCompacted after a compaction). Responses
// already queued are applied together.
func (n *Node) watch(ctx context.Context) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	start, end := n.keys.watchRange()
	wch := n.cli.Watch(wctx, start, clientv3.WithRange(end), clientv3.WithRev(n.view.rev+1), clientv3.WithProgressNotify())
	first := true
	for resp := range wch {
		changed := map[string][]byte{}
		err := n.take(resp, &first, changed)
		for more := err == nil; more; {
			select {
			case r, ok := <-wch:
				if more = ok; ok {
					err = n.take(r, &first, changed)
					more = err == nil
				}
			default:
				more = false
			}
		}
		n.applied(false, func(b *cacheBatch) {
			for k, v := range changed {
				b.kv[k] = v
			}
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", start, err)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watch %s: closed", start)
}

// take puts one watch response's events into the view and changed. The
// first response of a watch checks that etcd did not go back in time.
func (n *Node) take(resp clientv3.WatchResponse, first *bool, changed map[string][]byte) error {
	if err := resp.Err(); err != nil {
		return err
	}
	if *first {
		if resp.Header.Revision < n.view.rev {
			return fmt.Errorf("%w: %d < %d", errRegressed, resp.Header.Revision, n.view.rev)
		}
		*first = false
		n.mu.Lock()
		n.synced = true
		n.mu.Unlock()
		n.offer(nil)
	}
	for _, ev := range resp.Events {
		rel := string(ev.Kv.Key[len(n.keys.prefix):])
		val := ev.Kv.Value
		if ev.Type == clientv3.EventTypeDelete {
			val = nil
		}
		n.view.set(rel, val)
		changed[rel] = val
		// Resume after the last event delivered: a progress
		// notification's revision is not trusted for that (etcd#15220,
		// fixed in 3.4.25).
		n.view.rev = max(n.view.rev, ev.Kv.ModRevision)
	}
	return nil
}

// applied rebuilds the Table when the view changed (or always), hands it
// to effects, records the revision and queues the changes for the cache.
func (n *Node) applied(always bool, toCache func(*cacheBatch)) {
	if n.view.build() || always {
		for _, id := range n.view.newBad {
			n.log.Warn("unusable vip group in etcd, serving its last good value", "group", id, "err", n.view.bad[id])
		}
		n.met.bad.Set(float64(len(n.view.bad)))
		n.offer(n.view.table())
	}
	n.mu.Lock()
	n.rev, n.appliedAt, n.lastErr, n.loaded = n.view.rev, time.Now(), "", true
	leaderChanged := n.leader != n.view.leader || !slices.Equal(n.stale, n.view.stale)
	n.leader, n.stale = n.view.leader, n.view.stale
	toCache(&n.pending)
	n.pending.rev = n.view.rev
	n.mu.Unlock()
	if leaderChanged {
		n.log.Info("publisher leader changed", "leader", n.view.leader, "stale_upstreams", n.view.stale)
		n.offer(nil)
	}
}

// offer hands t (nil: the published Table again, for its Stale flag) to
// effects, replacing a Table not taken yet.
func (n *Node) offer(t *discovery.Table) {
	for {
		select {
		case n.want <- t:
			return
		default:
		}
		select {
		case old := <-n.want:
			if t == nil {
				t = old
			}
		default:
		}
	}
}

// writeCache writes the queued changes to the cache every n.every.
func (n *Node) writeCache(ctx context.Context) {
	tick := time.NewTicker(n.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.flushCache()
		}
	}
}

// flushCache writes the queued changes; on failure they stay queued
// under any newer ones.
func (n *Node) flushCache() {
	n.mu.Lock()
	b := n.pending
	n.pending = cacheBatch{kv: map[string][]byte{}}
	n.mu.Unlock()
	if len(b.kv) == 0 && !b.replace {
		return
	}
	if err := n.cache.write(b); err != nil {
		n.log.Warn("cluster cache write failed", "err", err)
		n.mu.Lock()
		for k, v := range n.pending.kv {
			b.kv[k] = v
		}
		b.rev = max(b.rev, n.pending.rev)
		n.pending = cacheBatch{replace: b.replace || n.pending.replace, kv: b.kv, rev: b.rev}
		n.mu.Unlock()
	}
}

// NodeState is where a Node stands, for the API.
type NodeState struct {
	Leader    string    // the leading publisher's ID; "" while none leads
	Revision  int64     // the etcd revision of the published Table
	AppliedAt time.Time // when that revision was last confirmed current
	Connected bool      // etcd answers
}

// State returns where the node stands.
func (n *Node) State() NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return NodeState{Leader: n.leader, Revision: n.rev, AppliedAt: n.appliedAt, Connected: n.connected}
}

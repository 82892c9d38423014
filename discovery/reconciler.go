package discovery

// The Reconciler: its configuration, its construction, its public API
// (Table, Update, Resync, Subscribe; Status is in status.go) and Run, which
// starts and owns its goroutines: the loop (loop.go), one sync per source
// (sourcesync.go) and the store's writer (persist.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/internal/metrics"
)

// Source is where full snapshots come from (Marathon's /v2/apps, Mesos
// state). Snapshot returns everything the source knows now.
type Source interface {
	Snapshot(ctx context.Context) (State, error)
}

// Dataplane programs the kernel (IPVS, nftables) to match a Table. Apply is
// called with every new Table before DNS announces its new names, and must
// converge: a later Apply repairs what an earlier failed one left.
type Dataplane interface {
	Apply(ctx context.Context, t *Table) error
}

// SourceConfig is one source of full snapshots.
type SourceConfig struct {
	// Name identifies the source in the store, logs and metrics. Updates
	// apply to the source their Source names ("" is "marathon", the
	// Marathon event stream).
	Name   string
	Source Source
	// Interval is the period of full resyncs; zero means five minutes.
	Interval time.Duration
}

// Config configures a Reconciler.
type Config struct {
	// Store persists the model; nil keeps it in memory only. The
	// reconciler is its only writer and flushes it (see Store).
	Store   Store
	Sources []SourceConfig
	// Dataplane, if not nil, gets every new Table before it is published.
	Dataplane Dataplane
	// Alloc configures VIP address allocation.
	Alloc AllocConfig
	// Names configures the names of the task zones.
	Names NamesConfig
	// HealthGrace is how long a health result that vanishes from a resync
	// keeps its last value; zero means 60 s. Marathon forgets every health
	// result when its leader changes.
	HealthGrace time.Duration
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs state changes; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StreamWait is how long the first snapshot of each source waits for
	// the event stream to connect (its UpdateResync with ResyncConnect asks
	// for one). A snapshot taken before the stream connects could miss the
	// events in between, so the stream's connect asks for another: waiting
	// makes one snapshot do, which at 10,000 apps halves the start-up work
	// and its peak memory. Zero does not wait.
	StreamWait time.Duration
	// Heartbeat, if set, is called by the loop that owns the model every
	// HeartbeatEvery while that loop is free to take work, so that a build,
	// a dataplane apply or a store write that hangs stops the calls
	// (systemd's WATCHDOG=1 is sent from it). HeartbeatEvery zero means
	// 10 s.
	Heartbeat      func()
	HeartbeatEvery time.Duration
}

// marathonSource is the source an Update without Source applies to.
const marathonSource = "marathon"

const (
	defaultInterval    = 5 * time.Minute
	defaultHealthGrace = 60 * time.Second
	// defaultHeartbeatEvery is Config.HeartbeatEvery's default.
	defaultHeartbeatEvery = 10 * time.Second
	updateQueueSize       = 1 << 13
	updateDrainMax        = 4096 // updates applied per round before building
	maxLatencySamples     = 1 << 14
	retryMin              = 500 * time.Millisecond
	retryMax              = 30 * time.Second
	// snapshotTimeout bounds one Snapshot, so that a hung upstream cannot
	// stop a source's resyncs for good; /v2/apps?embed=apps.tasks of a
	// large cluster takes seconds, not minutes.
	snapshotTimeout = 2 * time.Minute
)

// Reconciler merges full snapshots and incremental updates into a model of
// every source, builds a Table from it, programs the dataplane and publishes
// the Table. It is level-triggered: updates only change the model and mark
// it dirty; one build covers every change since the previous one.
type Reconciler struct {
	store     Store
	storeWake chan struct{} // cap 1: changes were queued for the store
	dp        Dataplane
	log       *slog.Logger
	now       func() time.Time
	grace     time.Duration
	met       *reconcileMetrics

	streamWait time.Duration
	heartbeat  func()        // nil: none (Config.Heartbeat)
	beatEvery  time.Duration // period of heartbeat

	sources []*sourceRun
	byName  map[string]*sourceRun

	updates  chan Update
	results  chan syncResult
	dirty    chan struct{} // cap 1: many pokes collapse into one build
	table    atomic.Pointer[Table]
	running  atomic.Bool
	dropping atomic.Bool // the update queue overflowed and was not drained since

	// Owned by Run's loop goroutine (by NewReconciler before).
	models          map[string]*sourceModel
	tables          *tableBuilder
	lateResyncAt    time.Time     // the last resync late events asked for
	lateDue         time.Duration // > 0: a late event's resync is deferred by this (lateEvent)
	dataplaneBehind bool          // the dataplane may not match the published Table
	received        []time.Time   // Update.Received of updates not yet published
	storeSynced     bool          // the store held a last sync at start
	syncedAt        time.Time     // a sync not yet recorded in the store (persist)

	mu     sync.Mutex // guards the fields below
	status map[string]*sourceStatus
	subs   map[chan struct{}]struct{}
}

// NewReconciler loads the store and publishes its state at once, marked
// stale until every source has synced. The dataplane gets that Table when
// Run starts.
func NewReconciler(cfg Config) (*Reconciler, error) {
	r := &Reconciler{
		store:     cfg.Store,
		storeWake: make(chan struct{}, 1),
		dp:        cfg.Dataplane,
		log:       cfg.Logger,
		now:       cfg.Now,
		grace:     cfg.HealthGrace,

		streamWait: cfg.StreamWait,
		heartbeat:  cfg.Heartbeat,
		beatEvery:  cfg.HeartbeatEvery,
		met:        newReconcileMetrics(),
		byName:     map[string]*sourceRun{},
		updates:    make(chan Update, updateQueueSize),
		results:    make(chan syncResult),
		dirty:      make(chan struct{}, 1),
		models:     map[string]*sourceModel{},
		status:     map[string]*sourceStatus{},
		subs:       map[chan struct{}]struct{}{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "discovery")
	if r.now == nil {
		r.now = time.Now
	}
	if r.grace <= 0 {
		r.grace = defaultHealthGrace
	}
	if r.beatEvery <= 0 {
		r.beatEvery = defaultHeartbeatEvery
	}
	for _, sc := range cfg.Sources {
		if err := r.addSource(sc); err != nil {
			return nil, fmt.Errorf("new reconciler: %w", err)
		}
	}
	if err := metrics.Register(cfg.Registerer, r.met.collectors()...); err != nil {
		return nil, fmt.Errorf("new reconciler: register metrics: %w", err)
	}
	if err := r.load(cfg.Alloc, cfg.Names); err != nil {
		return nil, err
	}
	return r, nil
}

// addSource adds a configured source, stale until it syncs.
func (r *Reconciler) addSource(sc SourceConfig) error {
	if sc.Name == "" || sc.Source == nil {
		return errors.New("source without name or Source")
	}
	if _, dup := r.byName[sc.Name]; dup {
		return fmt.Errorf("duplicate source %q", sc.Name)
	}
	if sc.Interval <= 0 {
		sc.Interval = defaultInterval
	}
	s := &sourceRun{cfg: sc, kick: make(chan struct{}, 1)}
	r.sources = append(r.sources, s)
	r.byName[sc.Name] = s
	r.status[sc.Name] = &sourceStatus{}
	r.met.stale.WithLabelValues(sc.Name).Set(1)
	// Both results start at 0, so that the first failed resync is an
	// increase an alert sees.
	r.met.resyncs.WithLabelValues(sc.Name, "ok")
	r.met.resyncs.WithLabelValues(sc.Name, "error")
	return nil
}

// Table returns the published Table; never nil. Callers must not modify it.
func (r *Reconciler) Table() *Table { return r.table.Load() }

// Update queues an incremental update of source u.Source ("" is
// "marathon") without blocking. UpdateResync requests a resync instead: of
// every source after a reconnect of Marathon's stream (ResyncConnect), else
// of u.Source. When the queue is full the update is dropped, counted, and a
// resync of its source requested, so nothing is silently lost.
func (r *Reconciler) Update(u Update) {
	source := updateSource(u)
	if u.Kind == UpdateResync {
		r.met.events.WithLabelValues(updateKindName(u.Kind)).Inc()
		r.log.Debug("resync requested", "source", source, "reason", u.Reason)
		if u.Reason == ResyncConnect && source == marathonSource {
			for _, s := range r.sources {
				r.Resync(s.cfg.Name)
			}
			return
		}
		r.Resync(source)
		return
	}
	select {
	case r.updates <- u:
		r.dropping.Store(false)
	default:
		r.met.eventsDropped.Inc()
		if !r.dropping.Swap(true) {
			r.log.Warn("update queue full, dropping updates and resyncing", "source", source, "queue", cap(r.updates))
		}
		r.Resync(source)
	}
}

// updateSource is the source u changes.
func updateSource(u Update) string {
	if u.Source == "" {
		return marathonSource
	}
	return u.Source
}

// Resync requests a full resync of the named source; unknown names are
// ignored. Requests made while one is pending collapse into it.
func (r *Reconciler) Resync(source string) {
	s, ok := r.byName[source]
	if !ok {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Subscribe returns a channel that receives a value (coalesced, capacity
// one) after every publish, and a function that ends the subscription.
func (r *Reconciler) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
	}
}

// Run resyncs every source (at start, every Interval, on request), applies
// updates, publishes Tables and commits the store's writes until ctx ends.
// On the way out, once every goroutine it started has stopped, it flushes
// the store once. It returns nil when ctx is cancelled; it may run only
// once.
func (r *Reconciler) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("reconciler already running")
	}
	var wg sync.WaitGroup
	for _, s := range r.sources {
		wg.Go(func() { r.syncLoop(ctx, s) })
	}
	wg.Go(func() { r.loop(ctx) })
	if r.store != nil {
		wg.Go(func() { r.writeStore(ctx) })
	}
	wg.Wait()
	r.flushStore()
	return nil
}

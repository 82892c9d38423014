package discovery

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
	// (the Marathon event stream) apply to the source named "marathon".
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
}

// Status says how fresh the published state is.
type Status struct {
	// Loaded is true when the state came from disk (a sync had been stored)
	// or every source has synced once.
	Loaded bool
	// Synced is true once every source has synced at least once.
	Synced bool
	// Stale is true while some source has not synced since start or its
	// last sync failed; its last known state is served meanwhile.
	Stale        bool
	StaleSources []string
	// LastSync is the last successful sync per source.
	LastSync map[string]time.Time
	// LastError is the last sync error per source, cleared by a success.
	LastError map[string]string
	// Generation is the published Table's.
	Generation uint64
}

// marathonSource is the source Update applies to.
const marathonSource = "marathon"

const (
	defaultInterval    = 5 * time.Minute
	defaultHealthGrace = 60 * time.Second
	updateQueueSize    = 1 << 13
	updateDrainMax     = 4096 // updates applied per round before building
	maxLatencySamples  = 1 << 14
	retryMin           = 500 * time.Millisecond
	retryMax           = 30 * time.Second
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
	lateResync      time.Time   // the last resync a late event asked for
	dataplaneBehind bool        // the dataplane may not match the published Table
	received        []time.Time // Update.Received of updates not yet published
	storeSynced     bool        // the store held a last sync at start
	syncedAt        time.Time   // a sync not yet recorded in the store (persist)

	mu     sync.Mutex // guards the fields below
	status map[string]*sourceStatus
	subs   map[chan struct{}]struct{}
}

type sourceRun struct {
	cfg  SourceConfig
	kick chan struct{} // cap 1: resync requested
}

type sourceStatus struct {
	synced   bool // synced at least once
	failing  bool // last sync failed
	lastSync time.Time
	lastErr  string
}

type syncResult struct {
	source string
	state  State
	err    error
	at     time.Time
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
	for _, sc := range cfg.Sources {
		if sc.Name == "" || sc.Source == nil {
			return nil, errors.New("new reconciler: source without name or Source")
		}
		if _, dup := r.byName[sc.Name]; dup {
			return nil, fmt.Errorf("new reconciler: duplicate source %q", sc.Name)
		}
		if sc.Interval <= 0 {
			sc.Interval = defaultInterval
		}
		s := &sourceRun{cfg: sc, kick: make(chan struct{}, 1)}
		r.sources = append(r.sources, s)
		r.byName[sc.Name] = s
		r.status[sc.Name] = &sourceStatus{}
		r.met.stale.WithLabelValues(sc.Name).Set(1)
	}
	if err := metrics.Register(cfg.Registerer, r.met.collectors()...); err != nil {
		return nil, fmt.Errorf("new reconciler: register metrics: %w", err)
	}
	if err := r.load(cfg.Alloc); err != nil {
		return nil, err
	}
	return r, nil
}

// load builds and publishes the Table of the stored state.
func (r *Reconciler) load(ac AllocConfig) error {
	var st Stored
	if r.store != nil {
		var err error
		if st, err = r.store.Load(); err != nil {
			return fmt.Errorf("new reconciler: %w", err)
		}
	}
	now := r.now()
	for name, apps := range st.Sources {
		if _, ok := r.byName[name]; !ok {
			// A source no longer configured would never be resynced:
			// serving its apps would keep dead backends forever.
			r.log.Info("dropping stored apps of a source no longer configured", "source", name, "apps", len(apps))
			r.store.Write(Batch{Source: name, Replace: true})
			r.pokeStore()
			continue
		}
		r.models[name] = newSourceModel(apps)
	}
	r.storeSynced = !st.LastSync.IsZero()
	r.tables = newTableBuilder(ac, st.Assignments)
	apps := r.allApps()
	t := r.tables.next(r.takeChanges(), nil, now, true).next
	t.Generation = 1
	t.Stale = r.staleNow()
	r.table.Store(t)
	r.recordTable(t)
	r.dataplaneBehind = true
	r.log.Info("loaded stored state", "apps", len(apps), "vips", t.VIPs.Len(), "names", t.Names(),
		"assignments", len(st.Assignments), "last_sync", st.LastSync)
	return nil
}

// Table returns the published Table; never nil. Callers must not modify it.
func (r *Reconciler) Table() *Table { return r.table.Load() }

// Update queues an incremental update of the "marathon" source without
// blocking. UpdateResync requests a resync instead: of every source after a
// reconnect (ResyncConnect), else of "marathon". When the queue is full
// the update is dropped, counted, and a resync requested, so nothing is
// silently lost.
func (r *Reconciler) Update(u Update) {
	if u.Kind == UpdateResync {
		r.met.events.WithLabelValues(updateKindName(u.Kind)).Inc()
		r.log.Debug("resync requested", "source", marathonSource, "reason", u.Reason)
		if u.Reason == ResyncConnect {
			for _, s := range r.sources {
				r.Resync(s.cfg.Name)
			}
			return
		}
		r.Resync(marathonSource)
		return
	}
	select {
	case r.updates <- u:
		r.dropping.Store(false)
	default:
		r.met.eventsDropped.Inc()
		if !r.dropping.Swap(true) {
			r.log.Warn("update queue full, dropping updates and resyncing", "source", marathonSource, "queue", cap(r.updates))
		}
		r.Resync(marathonSource)
	}
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

// Status reports how fresh the published state is.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Synced: true, LastSync: map[string]time.Time{}, LastError: map[string]string{},
		Generation: r.table.Load().Generation}
	for name, s := range r.status {
		if !s.synced {
			st.Synced = false
		}
		if !s.synced || s.failing {
			st.StaleSources = append(st.StaleSources, name)
		}
		if !s.lastSync.IsZero() {
			st.LastSync[name] = s.lastSync
		}
		if s.lastErr != "" {
			st.LastError[name] = s.lastErr
		}
	}
	slices.Sort(st.StaleSources)
	st.Stale = len(st.StaleSources) > 0
	st.Loaded = r.storeSynced || st.Synced
	return st
}

func (r *Reconciler) staleNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.status {
		if !s.synced || s.failing {
			return true
		}
	}
	return false
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

// loop owns the model: it applies updates and snapshots and builds when
// dirty. While a failed dataplane apply waits for its retry, builds wait
// too (the model keeps changing; the retry builds from the latest).
func (r *Reconciler) loop(ctx context.Context) {
	bo := retryBackoff{min: retryMin, max: retryMax}
	var retry *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	r.poke()
	for {
		dirty := r.dirty
		if retryC != nil {
			dirty = nil
		}
		select {
		case <-ctx.Done():
			return
		case u := <-r.updates:
			r.handleUpdate(u)
			r.drainUpdates()
			r.poke()
		case res := <-r.results:
			r.takeSnapshot(res)
			r.poke()
		case <-retryC:
			retryC = nil
			r.poke()
		case <-dirty:
			if err := r.reconcile(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				retry = time.NewTimer(bo.next())
				retryC = retry.C
				continue
			}
			bo.reset()
		}
	}
}

// drainUpdates applies the updates already queued, up to updateDrainMax,
// so that one build covers them.
func (r *Reconciler) drainUpdates() {
	for range updateDrainMax {
		select {
		case u := <-r.updates:
			r.handleUpdate(u)
		default:
			return
		}
	}
}

func (r *Reconciler) poke() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *Reconciler) model(source string) *sourceModel {
	m := r.models[source]
	if m == nil {
		m = newSourceModel(nil)
		r.models[source] = m
	}
	return m
}

// handleUpdate changes the "marathon" model by one update and asks for a
// resync when the update refers to what the model lacks or arrived late.
func (r *Reconciler) handleUpdate(u Update) {
	r.met.events.WithLabelValues(updateKindName(u.Kind)).Inc()
	if !u.Received.IsZero() && len(r.received) < maxLatencySamples {
		r.received = append(r.received, u.Received)
	}
	m := r.model(marathonSource)
	late := m.late
	if m.update(u, r.now()) {
		r.log.Debug("update for unknown app or task, resyncing", "kind", updateKindName(u.Kind),
			"app_id", updateAppID(u), "task_id", u.TaskID+u.Task.ID)
		r.Resync(marathonSource)
	}
	if m.late > late && r.now().Sub(r.lateResync) >= lateResyncEvery {
		// Events arrive out of order (Marathon does not order them): the
		// model may also hold one whose age could not be told. Converge to
		// the truth, at most once per lateResyncEvery.
		r.lateResync = r.now()
		r.log.Debug("late event ignored, resyncing", "kind", updateKindName(u.Kind), "app_id", updateAppID(u))
		r.Resync(marathonSource)
	}
}

// lateResyncEvery bounds the resyncs that late events trigger.
const lateResyncEvery = 5 * time.Second

// takeChanges returns the apps changed since the last call (nil for an app
// gone) and forgets them.
func (r *Reconciler) takeChanges() map[appRef]*App {
	n := 0
	for _, m := range r.models {
		n += len(m.changed)
	}
	changes := make(map[appRef]*App, n)
	for name, m := range r.models {
		for id := range m.changed {
			if a, ok := m.apps[id]; ok {
				changes[appRef{name, id}] = &a
			} else {
				changes[appRef{name, id}] = nil
			}
		}
		clear(m.changed)
	}
	return changes
}

func (r *Reconciler) allApps() []App {
	n := 0
	for _, m := range r.models {
		n += len(m.apps)
	}
	apps := make([]App, 0, n)
	for _, m := range r.models {
		apps = m.appendApps(apps)
	}
	return apps
}

// reconcile builds a Table from the model and, if it differs from the
// published one, makes it take effect in this order (DESIGN.md "Order of
// effects"): (1) publish the current Table with the names that go away
// withdrawn, (2) Dataplane.Apply(new), (3) publish the new Table. When Apply
// fails, the Table of step 1 stays published (new names unannounced, removed
// ones withdrawn) and the caller retries with backoff. Publishing only the
// VIPs the dataplane did program would need per-VIP results from Apply.
func (r *Reconciler) reconcile(ctx context.Context) error {
	prev := r.table.Load()
	step := r.tables.next(r.takeChanges(), prev, r.now(), r.dataplaneBehind)
	r.persist(step.assigned, step.expired)
	stale := r.staleNow()
	if step.next == nil {
		if prev.Stale != stale {
			t := *prev
			t.Stale = stale
			r.publish(&t)
		}
		r.observeLatency()
		return nil
	}
	if w := step.withdrawn; w != nil {
		w.Stale = stale
		r.publish(w)
	}
	next := step.next
	next.Generation = r.table.Load().Generation + 1
	next.Stale = stale
	next.Received = r.earliestReceived()
	if r.dp != nil {
		if err := r.dp.Apply(ctx, next); err != nil {
			r.dataplaneBehind = true
			if ctx.Err() == nil {
				r.met.applyErrors.Inc()
				r.log.Warn("dataplane apply failed, keeping previous table", "generation", next.Generation, "err", err)
			}
			return fmt.Errorf("apply table %d: %w", next.Generation, err)
		}
	}
	r.dataplaneBehind = false
	r.logLabelErrors(prev, next)
	r.publish(next)
	r.observeLatency()
	return nil
}

// earliestReceived is the arrival time of the oldest event the next table
// reflects, zero if it reflects none (a snapshot only).
func (r *Reconciler) earliestReceived() time.Time {
	var first time.Time
	for _, t := range r.received {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// publish makes t the Table readers see, numbering it after the current one.
func (r *Reconciler) publish(t *Table) {
	t.Generation = r.table.Load().Generation + 1
	r.table.Store(t)
	r.recordTable(t)
	r.log.Debug("published table", "generation", t.Generation, "vips", t.VIPs.Len(), "names", t.Names(), "stale", t.Stale)
	r.mu.Lock()
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

func (r *Reconciler) recordTable(t *Table) {
	backends := t.VIPs.Backends()
	r.met.records.WithLabelValues("names").Set(float64(t.Names()))
	r.met.records.WithLabelValues("vips").Set(float64(t.VIPs.Len()))
	r.met.records.WithLabelValues("backends").Set(float64(backends))
	r.met.labelErrors.Set(float64(len(t.Errors)))
	r.met.generation.Set(float64(t.Generation))
}

func (r *Reconciler) observeLatency() {
	now := time.Now()
	for _, rcv := range r.received {
		r.met.eventToDNS.Observe(now.Sub(rcv).Seconds())
	}
	r.received = r.received[:0]
}

// logLabelErrors logs label errors that next has and prev had not, so each
// is logged once rather than at every build.
func (r *Reconciler) logLabelErrors(prev, next *Table) {
	old := make(map[LabelError]struct{}, len(prev.Errors))
	for _, e := range prev.Errors {
		old[e] = struct{}{}
	}
	for _, e := range next.Errors {
		if _, ok := old[e]; !ok {
			r.log.Warn("unusable vip label", "app_id", e.AppID, "key", e.Key, "value", e.Value, "reason", e.Reason)
		}
	}
}

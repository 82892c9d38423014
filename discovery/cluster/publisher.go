package cluster

// The publisher role: every publisher follows Marathon and Mesos through
// its own reconciler (a warm table); the one elected through etcd writes
// that table to etcd. Every write is fenced by the election: a transaction
// commits only while this publisher's election key still has the revision
// it won with, so a paused or partitioned ex-leader can never write
// (facts: cluster-mode-etcd.md §3.5, §6.3).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
)

// TableSource is what a publisher writes from: *discovery.Reconciler.
type TableSource interface {
	Table() *discovery.Table
	Status() discovery.Status
	Subscribe() (<-chan struct{}, func())
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Client is the etcd client; required. The Publisher does not close it.
	Client *clientv3.Client
	// Prefix is where vipbridge's keys are; "" means DefaultPrefix.
	Prefix string
	// ID names this publisher in the election and status/leader
	// (host, pid, version); required.
	ID string
	// Tables is the reconciler whose Tables are written; required.
	Tables TableSource
	// Alloc is the VIP ranges (Grace is the cluster addresses' grace too).
	Alloc discovery.AllocConfig
	// SessionTTL is the election lease's TTL, how long a crashed leader
	// holds the election; zero means 5 s (never etcd's 60 s default).
	SessionTTL time.Duration
	// Coalesce is the least time between two writes: a change after a
	// quiet spell is written at once, later ones gather until the window
	// ends; zero means 100 ms.
	Coalesce time.Duration
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs state changes; nil discards.
	Logger *slog.Logger
	// Now is the clock of the addresses' grace; nil means time.Now.
	Now func() time.Time
}

// errFenced means a write was refused because this publisher no longer
// leads.
var errFenced = errors.New("no longer the elected publisher")

// Publisher campaigns for the election and, while it leads, writes its
// reconciler's Tables to etcd.
type Publisher struct {
	cli      *clientv3.Client
	keys     keys
	id       string
	tables   TableSource
	alloc    discovery.AllocConfig
	ttl      int
	coalesce time.Duration
	grace    time.Duration
	log      *slog.Logger
	met      *publisherMetrics
	now      func() time.Time
	leading  atomic.Bool

	// Test hooks: beforeWrite runs before every write transaction (a
	// paused publisher); onLead gets each term's writer; abandon makes the
	// end of Run a crash (no resign, the lease left to expire).
	beforeWrite func()
	onLead      func(*writer)
	abandon     atomic.Bool
}

// NewPublisher returns a Publisher; Run campaigns.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Client == nil || cfg.Tables == nil || cfg.ID == "" {
		return nil, errors.New("new publisher: client, tables and id are required")
	}
	p := &Publisher{
		cli: cfg.Client, keys: newKeys(cfg.Prefix), id: cfg.ID, tables: cfg.Tables, alloc: cfg.Alloc,
		ttl:      int(max(cmp.Or(cfg.SessionTTL, 5*time.Second), time.Second) / time.Second),
		coalesce: cmp.Or(cfg.Coalesce, 100*time.Millisecond),
		grace:    cmp.Or(cfg.Alloc.Grace, 24*time.Hour),
		log:      cfg.Logger, met: newPublisherMetrics(), now: cfg.Now,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "cluster-publisher")
	if p.now == nil {
		p.now = time.Now
	}
	if err := metrics.Register(cfg.Registerer, p.met.collectors()...); err != nil {
		return nil, fmt.Errorf("new publisher: register metrics: %w", err)
	}
	return p, nil
}

// Leading reports whether this publisher is the elected writer now.
func (p *Publisher) Leading() bool { return p.leading.Load() }

// Run campaigns, leads while elected, and campaigns again after losing
// the lease, until ctx ends; then it resigns (a standby takes over within
// one round trip) and returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	delay := newBackoff(200*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := p.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("publisher term ended, campaigning again", "err", err)
		if !delay.wait(ctx) {
			return nil
		}
	}
	return nil
}

// term is one session: campaign, then lead until the session ends, a
// write is fenced, or ctx ends.
func (p *Publisher) term(ctx context.Context) error {
	s, err := concurrency.NewSession(p.cli, concurrency.WithTTL(p.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("new session: %w", err)
	}
	defer func() {
		if p.abandon.Load() {
			s.Orphan()
			return
		}
		s.Close() // revokes the lease: the election key goes with it
	}()
	e := concurrency.NewElection(s, p.keys.election())
	if err := e.Campaign(ctx, p.id); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	p.leading.Store(true)
	p.met.leading.Set(1)
	p.met.elections.Inc()
	p.log.Info("elected publisher leader", "id", p.id, "election_rev", e.Rev())
	err = p.lead(lctx, s, e)
	p.leading.Store(false)
	p.met.leading.Set(0)
	if ctx.Err() != nil && !p.abandon.Load() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer rcancel()
		if rerr := e.Resign(rctx); rerr != nil {
			p.log.Warn("resign failed; the lease expires instead", "err", rerr)
		}
		p.log.Info("resigned as publisher leader")
		return nil
	}
	select {
	case <-s.Done():
		return fmt.Errorf("session lease lost: %w", cmp.Or(err, errFenced))
	default:
	}
	return err
}

// lead writes status/leader (again whenever the sources its reconciler
// finds stale change), then each new Table (coalesced) until ctx ends or a
// write is fenced.
func (p *Publisher) lead(ctx context.Context, s *concurrency.Session, e *concurrency.Election) error {
	w := &writer{p: p, fence: clientv3.Compare(clientv3.CreateRevision(e.Key()), "=", e.Rev()), fenceKey: e.Key(), rev: e.Rev()}
	if p.onLead != nil {
		p.onLead(w)
	}
	since := p.now().UTC()
	var upstreamStale []string // as status/leader last said
	announce := func(stale []string) error {
		lv, err := json.Marshal(leaderValue{ID: p.id, Since: since, Stale: stale})
		if err != nil {
			return fmt.Errorf("encode leader: %w", err)
		}
		if err := w.commit(ctx, [][]clientv3.Op{{clientv3.OpPut(p.keys.leader(), string(lv), clientv3.WithLease(s.Lease()))}}); err != nil {
			return err
		}
		upstreamStale = stale
		return nil
	}
	if err := announce(p.tables.Status().StaleSources); err != nil {
		return err
	}
	changed, unsubscribe := p.tables.Subscribe()
	defer unsubscribe()
	gc := time.NewTicker(max(p.grace/24, time.Second))
	defer gc.Stop()
	delay := newBackoff(200*time.Millisecond, 5*time.Second)
	var wrote time.Time
	for {
		st := p.tables.Status()
		var err error
		if !slices.Equal(st.StaleSources, upstreamStale) {
			err = announce(st.StaleSources)
		}
		if err == nil && st.Synced {
			wrote = time.Now()
			err = w.sync(ctx, p.tables.Table())
		}
		if errors.Is(err, errFenced) || ctx.Err() != nil {
			return err
		}
		if err != nil {
			p.log.Warn("etcd write failed, rereading etcd and retrying", "err", err)
			w.invalidate()
			if !delay.wait(ctx) {
				return ctx.Err()
			}
			continue
		}
		delay.reset()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-gc.C:
		}
		// A change after a quiet spell is written at once; changes that
		// follow a write within the coalescing window gather until it ends.
		if wait := p.coalesce - time.Since(wrote); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

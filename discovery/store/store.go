// Package store keeps discovery's model (apps and tasks per source) and its
// VIP address assignments in one bbolt file, so that a restarted daemon
// serves the last known state at once, even with Marathon and Mesos
// unreachable (DESIGN.md "Persistence").
//
// A *DB satisfies discovery.Store: writes are queued and coalesced in memory
// (queue.go) and committed when the reconciler calls Flush (commit.go);
// reads are only needed at start (load.go). The file layout is in
// buckets.go.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
)

// Config configures Open.
type Config struct {
	// Timeout is how long Open waits for bbolt's exclusive file lock; zero
	// means one second.
	Timeout time.Duration
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs failed commits and skipped entries; nil discards.
	Logger *slog.Logger
}

// DB persists apps, tasks and VIP address assignments in a bbolt file.
// Writes are queued and coalesced in memory (at most one pending entry per
// app and per assignment, so the queue is bounded by the size of the model)
// and committed by Flush. Its methods are safe for concurrent use.
type DB struct {
	db      *bbolt.DB
	path    string
	txBytes int // defaultTxBytes; tests make it small
	log     *slog.Logger
	met     *storeMetrics

	mu sync.Mutex // guards q
	q  *queue

	writing chan struct{} // cap 1: held while flushing, so flushes never overlap
}

// Open opens or creates the store file at path. It waits up to cfg.Timeout
// for bbolt's exclusive file lock and then fails with an error naming the
// file: another vipbridge probably uses the data dir.
func Open(path string, cfg Config) (*DB, error) {
	return open(path, cfg, &bbolt.Options{Timeout: cfg.Timeout})
}

func open(path string, cfg Config, opts *bbolt.Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	db, err := bbolt.Open(path, 0o600, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: locked by another process (is another vipbridge using this data dir?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := initBuckets(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &DB{
		db:      db,
		path:    path,
		txBytes: defaultTxBytes,
		log:     log.With("component", "discovery", "store", path),
		met:     newStoreMetrics(),
		q:       newQueue(),
		writing: make(chan struct{}, 1),
	}
	if err := metrics.Register(cfg.Registerer, s.met.collectors()...); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: register metrics: %w", path, err)
	}
	return s, nil
}

// Write queues b. It never blocks on the disk: changes are coalesced in
// memory (the latest App per ID wins, Replace supersedes earlier changes of
// its source) and committed by Flush. Changes naming an empty source or app
// ID are dropped and logged.
func (s *DB) Write(b discovery.Batch) {
	s.mu.Lock()
	dropped := s.q.add(b)
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Error("dropped store changes without source or app id", "source", b.Source, "count", dropped)
	}
}

// Flush commits everything queued before the call, waiting for a flush in
// progress first. On error the changes go back under anything queued
// meanwhile, for the next Flush; the error is counted and logged.
func (s *DB) Flush(ctx context.Context) error {
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writing }()

	s.mu.Lock()
	q := s.q
	s.q = newQueue()
	s.mu.Unlock()
	if q.empty() {
		return nil
	}
	start := time.Now()
	err := s.commit(q)
	if err == nil {
		s.met.commits.Inc()
		s.met.commitSeconds.Observe(time.Since(start).Seconds())
		return nil
	}
	s.mu.Lock()
	q.merge(s.q)
	s.q = q
	pending := q.size()
	s.mu.Unlock()
	s.met.writeErrors.Inc()
	s.log.Warn("store write failed, will retry", "err", err, "pending", pending)
	return fmt.Errorf("write store %s: %w", s.path, err)
}

// Close closes the file. It commits nothing: the reconciler flushes once
// when its Run ends. Flushes after Close fail (and count as write errors).
func (s *DB) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// storeMetrics are the store's counters.
type storeMetrics struct {
	writeErrors   prometheus.Counter
	commits       prometheus.Counter
	commitSeconds prometheus.Histogram
}

func newStoreMetrics() *storeMetrics {
	return &storeMetrics{
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_store_write_errors_total",
			Help: "Store commits that failed (disk full, read-only file); the changes stay queued and are retried.",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_store_commits_total",
			Help: "Store commits that succeeded; each holds every change queued since the previous one.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipbridge_store_commit_duration_seconds",
			Help:    "Duration of one store commit, fsync included.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 12),
		}),
	}
}

func (m *storeMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.writeErrors, m.commits, m.commitSeconds}
}

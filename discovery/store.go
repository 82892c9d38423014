package discovery

// The store keeps the model and the VIP address assignments in one bbolt file
// so that a restarted daemon serves the last known state at once, even with
// Marathon and Mesos unreachable (DESIGN.md "Persistence").
//
// Layout (every key and bucket name is UTF-8 text; values are as noted):
//
//	v1/                               root bucket, versioned by name and by meta/schema
//	  meta/
//	    schema          -> decimal text, storeSchema ("1")
//	    last_sync       -> RFC 3339 (nanoseconds, UTC): the latest successful full sync of any source
//	  sources/
//	    <source>/                     source name as configured ("marathon", "mesos")
//	      apps/
//	        <app id>    -> JSON of App, tasks included
//	  vips/
//	    <assignment key> -> JSON of Assignment; the key is the name plus "/4" or "/6" (see alloc.go)
//
// A newer schema is refused rather than misread; an older one would be
// migrated here (there is none yet). Every commit is fsynced (NoSync false),
// so the file is consistent after kill -9 at any moment: bbolt commits are
// atomic, and a source's app set is only ever replaced inside one commit.
// A big drain of queued changes (the first sync of a large cluster) is
// committed in several transactions of bounded size (see commit); the
// last_sync marker is then removed by the first and written by the last, so
// a crash in between leaves no marker beside a partly written drain.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// storeSchema is the layout version this code reads and writes.
const storeSchema = 1

var (
	bucketRoot     = []byte("v1")
	bucketMeta     = []byte("meta")
	bucketSources  = []byte("sources")
	bucketApps     = []byte("apps")
	bucketVIPs     = []byte("vips")
	keySchema      = []byte("schema")
	keyLastSync    = []byte("last_sync")
	storeRetryMin  = 500 * time.Millisecond
	storeRetryMax  = 30 * time.Second
	storeCloseWait = 5 * time.Second
)

// Store persists apps, tasks and VIP address assignments in a bbolt file.
// Writes are queued and coalesced in memory (at most one pending entry per
// app and per assignment, so the queue is bounded by the size of the model)
// and committed by Run; reads are only needed at start (Load).
type Store struct {
	db      *bbolt.DB
	path    string
	txBytes int // storeTxBytes; tests make it small
	log     atomic.Pointer[slog.Logger]
	met     *storeMetrics

	mu sync.Mutex // guards q
	q  *storeQueue

	wake    chan struct{} // cap 1: something was queued
	writing chan struct{} // cap 1: held while draining, so drains never overlap
}

// Stored is what Load returns: the persisted model and assignments.
type Stored struct {
	// Sources maps a source name to its apps, sorted by ID.
	Sources map[string][]App
	// Assignments are the persisted VIP address assignments.
	Assignments []Assignment
	// LastSync is the latest successful full sync of any source; zero if
	// none was ever stored.
	LastSync time.Time
	// Schema is the layout version of the file.
	Schema int
}

// Batch is one set of changes for Store.Write. Deletes apply before puts.
type Batch struct {
	// Source names the source whose apps Put, Delete and Replace concern.
	Source string
	// Put stores these apps (with their tasks), replacing stored ones of
	// the same ID.
	Put []App
	// Delete removes these app IDs.
	Delete []string
	// Replace makes Put the source's whole app set: apps not in Put are
	// removed. It supersedes every earlier queued change of the source.
	Replace bool
	// Assign stores these assignments.
	Assign []Assignment
	// Unassign removes the assignments with these keys.
	Unassign []string
	// LastSync, when not zero, records a successful full sync.
	LastSync time.Time
}

// OpenStore opens or creates the store file at path. It waits up to timeout
// (zero means one second) for bbolt's exclusive file lock and then fails with
// an error naming the file: another vipbridge probably uses the data dir.
func OpenStore(path string, timeout time.Duration) (*Store, error) {
	return openStore(path, &bbolt.Options{Timeout: timeout})
}

func openStore(path string, opts *bbolt.Options) (*Store, error) {
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
	if err := initStore(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		path:    path,
		txBytes: storeTxBytes,
		met:     newStoreMetrics(),
		q:       newStoreQueue(),
		wake:    make(chan struct{}, 1),
		writing: make(chan struct{}, 1),
	}
	s.log.Store(slog.New(slog.DiscardHandler))
	return s, nil
}

// initStore creates the buckets and checks the schema (read-only files are
// only checked).
func initStore(db *bbolt.DB) error {
	check := func(tx *bbolt.Tx) error {
		meta := nestedBucket(tx, bucketRoot, bucketMeta)
		if meta == nil {
			return nil
		}
		v := meta.Get(keySchema)
		if v == nil {
			return nil
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("unreadable schema %q", v)
		}
		if n > storeSchema {
			return fmt.Errorf("schema %d is newer than this vipbridge supports (%d): upgrade vipbridge or use another data dir", n, storeSchema)
		}
		return nil
	}
	if db.IsReadOnly() {
		return db.View(check)
	}
	return db.Update(func(tx *bbolt.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketSources, bucketVIPs} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return root.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(storeSchema)))
	})
}

// nestedBucket returns the bucket at path, or nil.
func nestedBucket(tx *bbolt.Tx, path ...[]byte) *bbolt.Bucket {
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

// setLogger sets the logger for write errors; the reconciler passes its own.
func (s *Store) setLogger(l *slog.Logger) {
	if l != nil {
		s.log.Store(l.With("store", s.path))
	}
}

// Load reads everything stored. Entries that do not decode are skipped and
// logged, so one bad record does not lose the rest. Values are decoded
// straight from the read transaction's pages, across GOMAXPROCS goroutines:
// at 10,000 apps / 100,000 tasks the JSON decoding is most of a restart.
func (s *Store) Load() (Stored, error) {
	out := Stored{Sources: map[string][]App{}}
	var bad int
	err := s.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if root == nil {
			return errors.New("missing root bucket")
		}
		meta := root.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil {
			out.Schema, _ = strconv.Atoi(string(v))
		}
		if v := meta.Get(keyLastSync); v != nil {
			if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil {
				out.LastSync = t
			} else {
				bad++
			}
		}
		c := root.Bucket(bucketSources).Cursor()
		for name, v := c.First(); name != nil; name, v = c.Next() {
			if v != nil {
				continue // not a bucket
			}
			apps := root.Bucket(bucketSources).Bucket(name).Bucket(bucketApps)
			if apps == nil {
				continue
			}
			vals, err := bucketValues(apps)
			if err != nil {
				return err
			}
			decoded, n := decodeAll(vals, func(a *App) bool { return a.ID != "" })
			bad += n
			if len(decoded) > 0 {
				out.Sources[string(name)] = decoded // string() copies out of the mmap
			}
		}
		vals, err := bucketValues(root.Bucket(bucketVIPs))
		if err != nil {
			return err
		}
		var n int
		out.Assignments, n = decodeAll(vals, func(*Assignment) bool { return true })
		bad += n
		return nil
	})
	if err != nil {
		return Stored{}, fmt.Errorf("load store %s: %w", s.path, err)
	}
	if bad > 0 {
		s.log.Load().Warn("skipped undecodable store entries", "count", bad)
	}
	return out, nil
}

// bucketValues returns b's values in key order. They point into the
// transaction's pages: valid only until it ends.
func bucketValues(b *bbolt.Bucket) ([][]byte, error) {
	var vals [][]byte
	err := b.ForEach(func(_, v []byte) error {
		if v != nil { // nil: a nested bucket
			vals = append(vals, v)
		}
		return nil
	})
	return vals, err
}

// decodeAll decodes each of vals as JSON into a T, in order, keeping those
// that decode and pass ok, and returns how many it skipped. The work is
// split across GOMAXPROCS goroutines. json.Unmarshal copies what it keeps,
// so vals may point into a bbolt transaction.
func decodeAll[T any](vals [][]byte, ok func(*T) bool) ([]T, int) {
	out := make([]T, len(vals))
	valid := make([]bool, len(vals))
	workers := min(runtime.GOMAXPROCS(0), (len(vals)+63)/64)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			const chunk = 64 // values claimed at a time
			for {
				end := int(next.Add(chunk))
				start := end - chunk
				if start >= len(vals) {
					return
				}
				for i := start; i < min(end, len(vals)); i++ {
					valid[i] = json.Unmarshal(vals[i], &out[i]) == nil && ok(&out[i])
				}
			}
		})
	}
	wg.Wait()
	kept := out[:0]
	for i := range out {
		if valid[i] {
			kept = append(kept, out[i])
		}
	}
	clear(out[len(kept):])
	if len(kept) == 0 {
		kept = nil
	}
	return kept, len(vals) - len(kept)
}

// Write queues b. It never blocks on the disk: changes are coalesced in
// memory (the latest App per ID wins, Replace supersedes earlier changes of
// its source) and committed by Run or Flush. A write that fails is kept and
// retried. Changes naming an empty source or app ID are dropped and logged.
func (s *Store) Write(b Batch) {
	s.mu.Lock()
	dropped := s.q.add(b)
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Load().Error("dropped store changes without source or app id", "source", b.Source, "count", dropped)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run commits queued writes until ctx ends, then commits what is left (for
// at most a few seconds). Failed commits are retried with capped, jittered
// backoff; they are logged and counted, and never end Run. It returns nil.
func (s *Store) Run(ctx context.Context) error {
	var (
		retry    *time.Timer
		retryC   <-chan time.Time
		bo       = retryBackoff{min: storeRetryMin, max: storeRetryMax}
		failures int
	)
	for {
		wake := s.wake
		if retryC != nil {
			wake = nil // failing: wait for the backoff, not for every write
		}
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			fctx, cancel := context.WithTimeout(context.Background(), storeCloseWait)
			defer cancel()
			if err := s.drain(fctx); err != nil {
				s.log.Load().Error("store writes lost at shutdown", "err", err)
			}
			return nil
		case <-wake:
		case <-retryC:
			retryC = nil
		}
		if err := s.drain(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			failures++
			retry = time.NewTimer(bo.next())
			retryC = retry.C
			continue
		}
		if failures > 0 {
			s.log.Load().Info("store writes recovered", "failed_attempts", failures)
		}
		failures = 0
		bo.reset()
	}
}

// Flush commits everything queued before the call, waiting for a commit in
// progress first. It returns the commit error (the changes stay queued).
func (s *Store) Flush(ctx context.Context) error {
	return s.drain(ctx)
}

// Close commits what is queued (best effort) and closes the file. Writes
// after Close are counted as errors.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeCloseWait)
	defer cancel()
	if err := s.drain(ctx); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		s.log.Load().Error("store writes lost at close", "err", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// drain commits the whole queue in one transaction. On error the changes go
// back under anything queued meanwhile.
func (s *Store) drain(ctx context.Context) error {
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writing }()

	s.mu.Lock()
	q := s.q
	s.q = newStoreQueue()
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
	s.log.Load().Warn("store write failed, will retry", "err", err, "pending", pending)
	return fmt.Errorf("write store %s: %w", s.path, err)
}

// storeTxBytes bounds the encoded values one transaction of a drain
// writes (about; one app may exceed it). A big drain, the first sync of a
// large cluster above all, is committed in several transactions so that
// neither its JSON nor bbolt's dirty pages (which bbolt copies again at
// every remap while the file grows inside a transaction) are held whole:
// at 10,000 apps / 100,000 tasks the values are about 60 MB.
const storeTxBytes = 4 << 20

// commit writes q, in one bbolt transaction when it is small, else in
// several of about storeTxBytes each. JSON is encoded per transaction, just
// before it, so the write lock is held only for the puts. The order keeps
// the file meaningful after a crash between two of them:
//
//   - the assignments and every source Replace go in the first
//     transaction (a source's app set is only ever replaced inside one
//     commit);
//   - the other app puts and deletes follow in key order;
//   - the last sync marker is written by the last transaction only, and
//     when there are several the first one removes the stored marker: a
//     file left by a crash in between holds no marker, so the restarted
//     daemon serves it but does not count it as a complete sync. On failure
//     the removed marker goes back into q, to be written by the retry.
//
// Each transaction is idempotent, so a retry of q after a failure in the
// middle applies again what was already committed.
func (s *Store) commit(q *storeQueue) error {
	assign, err := q.encodeAssign()
	if err != nil {
		return err
	}
	first := encodedTx{assign: assign}
	for _, kv := range assign {
		first.bytes += len(kv.key) + len(kv.value)
	}
	var rest []appRef // non-replace app changes, in source and key order
	names := make([]string, 0, len(q.sources))
	for name := range q.sources {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		src := q.sources[name]
		ids := make([]string, 0, len(src.apps))
		for id := range src.apps {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if !src.replace {
			for _, id := range ids {
				rest = append(rest, appRef{source: name, id: id})
			}
			continue
		}
		es := encodedSource{name: name, replace: true}
		for _, id := range ids {
			kv, err := encodeApp(id, src.apps[id])
			if err != nil {
				return err
			}
			es.apps = append(es.apps, kv)
			first.bytes += len(kv.key) + len(kv.value)
		}
		first.sources = append(first.sources, es)
	}

	tx := first
	multi := false
	for i := 0; ; {
		for ; i < len(rest) && tx.bytes < s.txBytes; i++ {
			ref := rest[i]
			kv, err := encodeApp(ref.id, q.sources[ref.source].apps[ref.id])
			if err != nil {
				return err
			}
			if n := len(tx.sources); n == 0 || tx.sources[n-1].name != ref.source {
				tx.sources = append(tx.sources, encodedSource{name: ref.source})
			}
			src := &tx.sources[len(tx.sources)-1]
			src.apps = append(src.apps, kv)
			tx.bytes += len(kv.key) + len(kv.value)
		}
		last := i == len(rest)
		if !last && !multi {
			multi = true
			tx.dropLastSync = true
		}
		if last {
			tx.lastSync = q.lastSync
		}
		old, err := s.commitTx(tx)
		if old.After(q.lastSync) {
			q.lastSync = old // removed from the file: the retry or the last transaction writes it back
		}
		if err != nil {
			return err
		}
		if last {
			return nil
		}
		tx = encodedTx{}
	}
}

// commitTx writes tx in one bbolt transaction. When tx.dropLastSync, it
// removes the stored last sync marker and returns it (also if the
// transaction then fails: the caller keeps it to write it again).
func (s *Store) commitTx(tx encodedTx) (dropped time.Time, err error) {
	err = s.db.Update(func(btx *bbolt.Tx) error {
		root := btx.Bucket(bucketRoot)
		if root == nil {
			return errors.New("missing root bucket")
		}
		meta := root.Bucket(bucketMeta)
		if tx.dropLastSync {
			if v := meta.Get(keyLastSync); v != nil {
				if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil {
					dropped = t
				}
				if err := meta.Delete(keyLastSync); err != nil {
					return err
				}
			}
		}
		for _, src := range tx.sources {
			if err := commitSource(root.Bucket(bucketSources), src); err != nil {
				return fmt.Errorf("source %s: %w", src.name, err)
			}
		}
		vips := root.Bucket(bucketVIPs)
		for _, kv := range tx.assign {
			var err error
			if kv.value == nil {
				err = vips.Delete([]byte(kv.key))
			} else {
				err = vips.Put([]byte(kv.key), kv.value)
			}
			if err != nil {
				return fmt.Errorf("assignment %s: %w", kv.key, err)
			}
		}
		if !tx.lastSync.IsZero() {
			v := []byte(tx.lastSync.UTC().Format(time.RFC3339Nano))
			if err := meta.Put(keyLastSync, v); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}

func commitSource(sources *bbolt.Bucket, src encodedSource) error {
	name := []byte(src.name)
	if src.replace && sources.Bucket(name) != nil {
		if err := sources.DeleteBucket(name); err != nil {
			return err
		}
	}
	sb, err := sources.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	apps, err := sb.CreateBucketIfNotExists(bucketApps)
	if err != nil {
		return err
	}
	for _, kv := range src.apps {
		switch {
		case kv.value != nil:
			err = apps.Put([]byte(kv.key), kv.value)
		case !src.replace:
			err = apps.Delete([]byte(kv.key))
		}
		if err != nil {
			return fmt.Errorf("app %s: %w", kv.key, err)
		}
	}
	return nil
}

// storeQueue holds coalesced pending changes: one entry per app and per
// assignment key, a nil entry meaning delete.
type storeQueue struct {
	sources  map[string]*queuedSource
	assign   map[string]*Assignment
	lastSync time.Time
}

type queuedSource struct {
	replace bool            // apps is the source's whole set
	apps    map[string]*App // nil value: delete (skipped when replace)
}

func newStoreQueue() *storeQueue {
	return &storeQueue{sources: map[string]*queuedSource{}, assign: map[string]*Assignment{}}
}

func (q *storeQueue) empty() bool {
	return len(q.sources) == 0 && len(q.assign) == 0 && q.lastSync.IsZero()
}

func (q *storeQueue) size() int {
	n := len(q.assign)
	for _, src := range q.sources {
		n += len(src.apps)
	}
	return n
}

// add merges b into q and returns how many changes it had to drop.
func (q *storeQueue) add(b Batch) (dropped int) {
	if b.Replace || len(b.Put) > 0 || len(b.Delete) > 0 {
		if b.Source == "" {
			dropped += len(b.Put) + len(b.Delete) + 1
		} else {
			src := q.sources[b.Source]
			if src == nil || b.Replace {
				src = &queuedSource{replace: b.Replace, apps: map[string]*App{}}
				q.sources[b.Source] = src
			}
			for _, id := range b.Delete {
				if id == "" {
					dropped++
					continue
				}
				src.apps[id] = nil
			}
			for i := range b.Put {
				if b.Put[i].ID == "" {
					dropped++
					continue
				}
				a := b.Put[i]
				src.apps[a.ID] = &a
			}
		}
	}
	for i := range b.Assign {
		a := b.Assign[i]
		q.assign[storeAssignmentKey(a)] = &a
	}
	for _, k := range b.Unassign {
		q.assign[k] = nil
	}
	if b.LastSync.After(q.lastSync) {
		q.lastSync = b.LastSync
	}
	return dropped
}

// merge lays newer (queued later) over q.
func (q *storeQueue) merge(newer *storeQueue) {
	for name, ns := range newer.sources {
		old := q.sources[name]
		if old == nil || ns.replace {
			q.sources[name] = ns
			continue
		}
		for id, a := range ns.apps {
			old.apps[id] = a
		}
	}
	for k, a := range newer.assign {
		q.assign[k] = a
	}
	if newer.lastSync.After(q.lastSync) {
		q.lastSync = newer.lastSync
	}
}

type storeKV struct {
	key   string
	value []byte // nil: delete
}

type encodedSource struct {
	name    string
	replace bool
	apps    []storeKV
}

// encodedTx is what one transaction of a drain writes.
type encodedTx struct {
	sources      []encodedSource
	assign       []storeKV
	lastSync     time.Time // written when not zero
	dropLastSync bool      // remove the stored marker first
	bytes        int       // keys and values
}

// encodeApp encodes a queued app change (nil: delete).
func encodeApp(id string, a *App) (storeKV, error) {
	kv := storeKV{key: id}
	if a != nil {
		v, err := json.Marshal(a)
		if err != nil {
			return kv, fmt.Errorf("encode app %s: %w", id, err)
		}
		kv.value = v
	}
	return kv, nil
}

// encodeAssign encodes the queued assignment changes in key order.
func (q *storeQueue) encodeAssign() ([]storeKV, error) {
	out := make([]storeKV, 0, len(q.assign))
	for k, a := range q.assign {
		kv := storeKV{key: k}
		if a != nil {
			v, err := json.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("encode assignment %s: %w", k, err)
			}
			kv.value = v
		}
		out = append(out, kv)
	}
	slices.SortFunc(out, func(x, y storeKV) int { return strings.Compare(x.key, y.key) })
	return out, nil
}

// storeAssignmentKey is an assignment's key: its name plus "/4" or "/6", as
// Allocator.Expire reports them.
func storeAssignmentKey(a Assignment) string {
	if a.Addr.Is4() {
		return a.Name + "/4"
	}
	return a.Name + "/6"
}

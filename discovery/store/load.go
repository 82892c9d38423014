package store

// Load: reading the whole file back at start.

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/vipbridge/vipbridge/discovery"
)

// Load reads everything stored. Entries that do not decode are skipped and
// logged, so one bad record does not lose the rest. Values are decoded
// straight from the read transaction's pages, across GOMAXPROCS goroutines:
// at 10,000 apps / 100,000 tasks the JSON decoding is most of a restart.
func (s *DB) Load() (discovery.Stored, error) {
	out := discovery.Stored{Sources: map[string][]discovery.App{}}
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
		n, err := loadSources(root.Bucket(bucketSources), out.Sources)
		if err != nil {
			return err
		}
		bad += n
		out.Clusters, n = loadClusters(root.Bucket(bucketSources))
		if err != nil {
			return err
		}
		bad += n
		vals, err := bucketValues(root.Bucket(bucketVIPs))
		if err != nil {
			return err
		}
		out.Assignments, n = decodeAll(vals, func(*discovery.Assignment) bool { return true })
		bad += n
		return nil
	})
	if err != nil {
		return discovery.Stored{}, fmt.Errorf("load store %s: %w", s.path, err)
	}
	if bad > 0 {
		s.log.Warn("skipped undecodable store entries", "count", bad)
	}
	return out, nil
}

// loadSources decodes the apps of every source bucket into out and returns
// how many it skipped.
func loadSources(sources *bbolt.Bucket, out map[string][]discovery.App) (bad int, err error) {
	c := sources.Cursor()
	for name, v := c.First(); name != nil; name, v = c.Next() {
		if v != nil {
			continue // not a bucket
		}
		apps := sources.Bucket(name).Bucket(bucketApps)
		if apps == nil {
			continue
		}
		vals, err := bucketValues(apps)
		if err != nil {
			return bad, err
		}
		decoded, n := decodeAll(vals, func(a *discovery.App) bool { return a.ID != "" })
		bad += n
		if len(decoded) > 0 {
			out[string(name)] = decoded // string() copies out of the mmap
		}
	}
	return bad, nil
}

// loadClusters decodes the cluster of every source bucket that has one and
// returns how many it skipped.
func loadClusters(sources *bbolt.Bucket) (map[string]*discovery.Cluster, int) {
	out := map[string]*discovery.Cluster{}
	bad := 0
	c := sources.Cursor()
	for name, v := c.First(); name != nil; name, v = c.Next() {
		if v != nil {
			continue // not a bucket
		}
		raw := sources.Bucket(name).Get(keyCluster)
		if raw == nil {
			continue
		}
		var cl discovery.Cluster
		if err := json.Unmarshal(raw, &cl); err != nil {
			bad++
			continue
		}
		out[string(name)] = &cl
	}
	return out, bad
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

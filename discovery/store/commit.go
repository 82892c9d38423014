package store

// Commit: writing a flushed queue into the file, in transactions of bounded
// size and in an order that keeps the file meaningful after a crash.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/vipbridge/vipbridge/discovery"
)

// defaultTxBytes bounds the encoded values one transaction of a flush
// writes (about; one app may exceed it). A big flush, the first sync of a
// large cluster above all, is committed in several transactions so that
// neither its JSON nor bbolt's dirty pages (which bbolt copies again at
// every remap while the file grows inside a transaction) are held whole:
// at 10,000 apps / 100,000 tasks the values are about 60 MB.
const defaultTxBytes = 4 << 20

// commit writes q, in one bbolt transaction when it is small, else in
// several of about defaultTxBytes each. JSON is encoded per transaction, just
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
func (s *DB) commit(q *queue) error {
	tx, rest, err := q.firstTx()
	if err != nil {
		return err
	}
	multi := false
	for i := 0; ; {
		for ; i < len(rest) && tx.bytes < s.txBytes; i++ {
			kv, err := encodeApp(rest[i].id, q.sources[rest[i].source].apps[rest[i].id])
			if err != nil {
				return err
			}
			tx.add(rest[i].source, kv)
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

// firstTx encodes what the first transaction must hold (the assignments
// and every replaced source) and lists the other app changes, in source
// and key order.
func (q *queue) firstTx() (encodedTx, []appRef, error) {
	assign, err := q.encodeAssign()
	if err != nil {
		return encodedTx{}, nil, err
	}
	first := encodedTx{assign: assign}
	for _, name := range slices.Sorted(maps.Keys(q.clusters)) {
		kv, err := encodeKV("cluster", name, q.clusters[name])
		if err != nil {
			return encodedTx{}, nil, err
		}
		first.clusters = append(first.clusters, kv)
		first.bytes += len(kv.key) + len(kv.value)
	}
	for _, kv := range assign {
		first.bytes += len(kv.key) + len(kv.value)
	}
	var rest []appRef
	for _, name := range slices.Sorted(maps.Keys(q.sources)) {
		src := q.sources[name]
		ids := slices.Sorted(maps.Keys(src.apps))
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
				return encodedTx{}, nil, err
			}
			es.apps = append(es.apps, kv)
			first.bytes += len(kv.key) + len(kv.value)
		}
		first.sources = append(first.sources, es)
	}
	return first, rest, nil
}

// commitTx writes tx in one bbolt transaction. When tx.dropLastSync, it
// removes the stored last sync marker and returns it (also if the
// transaction then fails: the caller keeps it to write it again).
func (s *DB) commitTx(tx encodedTx) (dropped time.Time, err error) {
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
		for _, kv := range tx.clusters {
			if err := commitCluster(root.Bucket(bucketSources), kv); err != nil {
				return fmt.Errorf("cluster of %s: %w", kv.key, err)
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
	sb, err := sources.CreateBucketIfNotExists([]byte(src.name))
	if err != nil {
		return err
	}
	if src.replace && sb.Bucket(bucketApps) != nil {
		if err := sb.DeleteBucket(bucketApps); err != nil {
			return err
		}
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

// commitCluster writes (or, for a nil value, deletes) the cluster of the
// source kv.key.
func commitCluster(sources *bbolt.Bucket, kv storeKV) error {
	sb, err := sources.CreateBucketIfNotExists([]byte(kv.key))
	if err != nil {
		return err
	}
	if kv.value == nil {
		return sb.Delete(keyCluster)
	}
	return sb.Put(keyCluster, kv.value)
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

// add appends one app change of source to tx.
func (tx *encodedTx) add(source string, kv storeKV) {
	if n := len(tx.sources); n == 0 || tx.sources[n-1].name != source {
		tx.sources = append(tx.sources, encodedSource{name: source})
	}
	src := &tx.sources[len(tx.sources)-1]
	src.apps = append(src.apps, kv)
	tx.bytes += len(kv.key) + len(kv.value)
}

// appRef identifies a queued app change.
type appRef struct{ source, id string }

// encodedTx is what one transaction of a flush writes.
type encodedTx struct {
	sources      []encodedSource
	clusters     []storeKV // keyed by source name
	assign       []storeKV
	lastSync     time.Time // written when not zero
	dropLastSync bool      // remove the stored marker first
	bytes        int       // keys and values
}

// encodeKV encodes a queued change of key as JSON (nil: delete); what
// names the kind of value in errors.
func encodeKV[T any](what, key string, v *T) (storeKV, error) {
	kv := storeKV{key: key}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return kv, fmt.Errorf("encode %s %s: %w", what, key, err)
		}
		kv.value = b
	}
	return kv, nil
}

// encodeApp encodes a queued app change (nil: delete).
func encodeApp(id string, a *discovery.App) (storeKV, error) { return encodeKV("app", id, a) }

// encodeAssign encodes the queued assignment changes in key order.
func (q *queue) encodeAssign() ([]storeKV, error) {
	out := make([]storeKV, 0, len(q.assign))
	for k, a := range q.assign {
		kv, err := encodeKV("assignment", k, a)
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	slices.SortFunc(out, func(x, y storeKV) int { return strings.Compare(x.key, y.key) })
	return out, nil
}

package cluster

// The node's bbolt cache of what it last read from etcd, so that it serves
// at start before etcd answers (or while it cannot). Layout:
//
//	v1/kv/<key under the prefix>  the value as etcd holds it
//	v1/meta/revision              the etcd revision the kv bucket is at (8 bytes, big endian)

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

var (
	bucketRoot = []byte("v1")
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyRev     = []byte("revision")
)

// cache is the bbolt file; writes come in cacheBatches.
type cache struct{ db *bbolt.DB }

// cacheBatch is what changed since the last write: puts (nil value:
// delete) at revision rev; replace drops everything else first.
type cacheBatch struct {
	replace bool
	kv      map[string][]byte
	rev     int64
}

func openCache(path string, noSync bool) (*cache, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		return nil, fmt.Errorf("open cluster cache %s: %w", path, err)
	}
	return &cache{db: db}, nil
}

func (c *cache) close() error { return c.db.Close() }

// load returns every cached key and value and their revision.
func (c *cache) load() (map[string][]byte, int64, error) {
	kv := map[string][]byte{}
	var rev int64
	err := c.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if root == nil {
			return nil
		}
		if m := root.Bucket(bucketMeta); m != nil {
			if b := m.Get(keyRev); len(b) == 8 {
				rev = int64(binary.BigEndian.Uint64(b))
			}
		}
		if b := root.Bucket(bucketKV); b != nil {
			return b.ForEach(func(k, v []byte) error {
				kv[string(k)] = append([]byte(nil), v...)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load cluster cache: %w", err)
	}
	return kv, rev, nil
}

// write commits b in one transaction.
func (c *cache) write(b cacheBatch) error {
	err := c.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		if b.replace && root.Bucket(bucketKV) != nil {
			if err := root.DeleteBucket(bucketKV); err != nil {
				return err
			}
		}
		kv, err := root.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		for k, v := range b.kv {
			if v == nil {
				err = kv.Delete([]byte(k))
			} else {
				err = kv.Put([]byte(k), v)
			}
			if err != nil {
				return err
			}
		}
		meta, err := root.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyRev, binary.BigEndian.AppendUint64(nil, uint64(b.rev)))
	})
	if err != nil {
		return fmt.Errorf("write cluster cache: %w", err)
	}
	return nil
}

package store

// The layout of the bbolt file, the one place it is written down
// (containerd's metadata/buckets.go habit). Every key and bucket name is
// UTF-8 text; values are as noted:
//
//	v1/                               root bucket, versioned by name and by meta/schema
//	  meta/
//	    schema          -> decimal text, schema ("1")
//	    last_sync       -> RFC 3339 (nanoseconds, UTC): the latest successful full sync of any source
//	  sources/
//	    <source>/                     source name as configured ("marathon", "mesos")
//	      apps/
//	        <app id>    -> JSON of discovery.App, tasks included
//	      cluster       -> JSON of discovery.Cluster: the source's last one (Mesos)
//	  vips/
//	    <assignment key> -> JSON of discovery.Assignment; the key is the name plus "/4" or "/6"
//
// A newer schema is refused rather than misread; an older one would be
// migrated in initBuckets (there is none yet). Every commit is fsynced
// (NoSync false) and bbolt commits are atomic, so the file is consistent
// after kill -9 at any moment. A source's app set is only ever replaced
// inside one transaction, and a replace leaves its cluster alone. A big Flush is committed in several transactions
// of bounded size (commit.go): the last_sync marker is then removed by the
// first and written by the last, so a crash in between leaves no marker
// beside a partly written flush.

import (
	"fmt"
	"strconv"

	"go.etcd.io/bbolt"
)

// schema is the layout version this code reads and writes.
const schema = 1

var (
	bucketRoot    = []byte("v1")
	bucketMeta    = []byte("meta")
	bucketSources = []byte("sources")
	bucketApps    = []byte("apps")
	bucketVIPs    = []byte("vips")
	keySchema     = []byte("schema")
	keyLastSync   = []byte("last_sync")
	keyCluster    = []byte("cluster")
)

// initBuckets creates the buckets and checks the schema (read-only files
// are only checked).
func initBuckets(db *bbolt.DB) error {
	if db.IsReadOnly() {
		return db.View(checkSchema)
	}
	return db.Update(func(tx *bbolt.Tx) error {
		if err := checkSchema(tx); err != nil {
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
		return root.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schema)))
	})
}

// checkSchema refuses a file written by a newer layout.
func checkSchema(tx *bbolt.Tx) error {
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
	if n > schema {
		return fmt.Errorf("schema %d is newer than this vipbridge supports (%d): upgrade vipbridge or use another data dir", n, schema)
	}
	return nil
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

package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vipbridge/vipbridge/discovery"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var storeT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func storeApp(id, version string, tasks ...string) discovery.App {
	a := discovery.App{
		ID:        id,
		Framework: "marathon",
		Version:   version,
		Ports: []discovery.Port{{Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP},
			Labels: []discovery.Label{{Key: "VIP_0", Value: id + ":80"}}}},
	}
	for i, t := range tasks {
		a.Tasks = append(a.Tasks, discovery.Task{
			ID: t, Host: "agent1", AgentIP: netip.MustParseAddr("10.0.0.1"),
			HostPorts: []uint16{uint16(31000 + i)}, State: discovery.TaskRunning, Health: discovery.HealthHealthy, Updated: storeT0,
		})
	}
	return a
}

func openTestStore(t *testing.T, path string) *DB {
	t.Helper()
	s, err := Open(path, Config{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func flush(t *testing.T, s *DB) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func load(t *testing.T, s *DB) discovery.Stored {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}

// appIDs lists "<source>:<id>@<version>" of st, sorted.
func appIDs(st discovery.Stored) []string {
	var out []string
	for src, apps := range st.Sources {
		for _, a := range apps {
			out = append(out, src+":"+a.ID+"@"+a.Version)
		}
	}
	slices.Sort(out)
	return out
}

// counted returns the value of c.
func counted(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestStoreMetrics: Open registers the store's metrics with
// Config.Registerer, and fails when they are registered already.
func TestStoreMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "a.db"), Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"vipbridge_store_commit_duration_seconds", "vipbridge_store_commits_total", "vipbridge_store_write_errors_total"}
	if !slices.Equal(names, want) {
		t.Errorf("registered metrics = %v, want %v", names, want)
	}
	if s2, err := Open(filepath.Join(dir, "b.db"), Config{Registerer: reg}); err == nil {
		s2.Close()
		t.Error("Open with the metrics registered already succeeded")
	}
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipbridge.db")
	s := openTestStore(t, path)
	apps := []discovery.App{storeApp("/a", "v1", "a.1", "a.2"), storeApp("/b", "v1")}
	assign := []discovery.Assignment{
		{Name: "a.marathon", Addr: netip.MustParseAddr("11.0.0.5"), LastSeen: storeT0},
		{Name: "a.marathon", Addr: netip.MustParseAddr("fd01:c::5"), LastSeen: storeT0},
	}
	s.Write(discovery.Batch{Source: "marathon", Put: apps, Assign: assign, LastSync: storeT0})
	s.Write(discovery.Batch{Source: "mesos", Put: []discovery.App{storeApp("hello-world/t1", "")}})
	flush(t, s)

	check := func(st discovery.Stored) {
		t.Helper()
		if !reflect.DeepEqual(st.Sources["marathon"], apps) {
			t.Errorf("Load().Sources[marathon] = %+v, want %+v", st.Sources["marathon"], apps)
		}
		if got := appIDs(st); !slices.Equal(got, []string{"marathon:/a@v1", "marathon:/b@v1", "mesos:hello-world/t1@"}) {
			t.Errorf("Load() apps = %v", got)
		}
		if !reflect.DeepEqual(st.Assignments, assign) {
			t.Errorf("Load().Assignments = %+v, want %+v", st.Assignments, assign)
		}
		if !st.LastSync.Equal(storeT0) || st.Schema != schema {
			t.Errorf("Load() LastSync, Schema = %v, %d, want %v, %d", st.LastSync, st.Schema, storeT0, schema)
		}
	}
	check(load(t, s))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openTestStore(t, path)
	defer s.Close()
	check(load(t, s))
}

func TestStoreEmpty(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "vipbridge.db"))
	defer s.Close()
	st := load(t, s)
	if len(st.Sources) != 0 || len(st.Assignments) != 0 || !st.LastSync.IsZero() || st.Schema != schema {
		t.Errorf("Load() of a new store = %+v, want empty with schema %d", st, schema)
	}
}

func TestStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipbridge.db")
	s := openTestStore(t, path)
	defer s.Close()

	_, err := Open(path, Config{Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open on a locked file succeeded")
	}
	for _, want := range []string{path, "locked by another process", "another vipbridge"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open error %q does not mention %q", err, want)
		}
	}
}

func TestStoreNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipbridge.db")
	s := openTestStore(t, path)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return nestedBucket(tx, bucketRoot, bucketMeta).Put(keySchema, []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(path, Config{Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "schema 2 is newer") {
		t.Fatalf("Open of a schema 2 file: err = %v, want schema 2 is newer", err)
	}
}

func TestStoreWrites(t *testing.T) {
	tests := []struct {
		name    string
		flushed []discovery.Batch // each written and flushed on its own
		queued  []discovery.Batch // written together, then flushed once
		want    []string
	}{
		{
			name:   "latest put wins",
			queued: []discovery.Batch{{Source: "m", Put: []discovery.App{storeApp("/a", "v1")}}, {Source: "m", Put: []discovery.App{storeApp("/a", "v2")}}},
			want:   []string{"m:/a@v2"},
		},
		{
			name:    "delete",
			flushed: []discovery.Batch{{Source: "m", Put: []discovery.App{storeApp("/a", "v1"), storeApp("/b", "v1")}}},
			queued:  []discovery.Batch{{Source: "m", Delete: []string{"/a"}}},
			want:    []string{"m:/b@v1"},
		},
		{
			name:   "put after delete",
			queued: []discovery.Batch{{Source: "m", Delete: []string{"/a"}}, {Source: "m", Put: []discovery.App{storeApp("/a", "v3")}}},
			want:   []string{"m:/a@v3"},
		},
		{
			name:    "replace on disk",
			flushed: []discovery.Batch{{Source: "m", Put: []discovery.App{storeApp("/a", "v1"), storeApp("/b", "v1")}}, {Source: "o", Put: []discovery.App{storeApp("/x", "v1")}}},
			queued:  []discovery.Batch{{Source: "m", Replace: true, Put: []discovery.App{storeApp("/c", "v1")}}},
			want:    []string{"m:/c@v1", "o:/x@v1"},
		},
		{
			name: "replace supersedes queued puts",
			queued: []discovery.Batch{
				{Source: "m", Put: []discovery.App{storeApp("/a", "v1")}},
				{Source: "m", Replace: true, Put: []discovery.App{storeApp("/b", "v1")}},
				{Source: "m", Put: []discovery.App{storeApp("/c", "v1")}},
				{Source: "m", Delete: []string{"/b"}},
			},
			want: []string{"m:/c@v1"},
		},
		{
			name:    "replace with nothing empties the source",
			flushed: []discovery.Batch{{Source: "m", Put: []discovery.App{storeApp("/a", "v1")}}},
			queued:  []discovery.Batch{{Source: "m", Replace: true}},
			want:    nil,
		},
		{
			name:   "invalid changes dropped",
			queued: []discovery.Batch{{Put: []discovery.App{storeApp("/a", "v1")}}, {Source: "m", Put: []discovery.App{storeApp("", "v1"), storeApp("/b", "v1")}}},
			want:   []string{"m:/b@v1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t, filepath.Join(t.TempDir(), "vipbridge.db"))
			defer s.Close()
			for _, b := range tt.flushed {
				s.Write(b)
				flush(t, s)
			}
			for _, b := range tt.queued {
				s.Write(b)
			}
			flush(t, s)
			if got := appIDs(load(t, s)); !slices.Equal(got, tt.want) {
				t.Errorf("apps = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStoreAssignments(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "vipbridge.db"))
	defer s.Close()
	a4 := discovery.Assignment{Name: "a.marathon", Addr: netip.MustParseAddr("11.0.0.5"), LastSeen: storeT0}
	a6 := discovery.Assignment{Name: "a.marathon", Addr: netip.MustParseAddr("fd01:c::5"), LastSeen: storeT0}
	b4 := discovery.Assignment{Name: "b.marathon", Addr: netip.MustParseAddr("11.0.0.6"), LastSeen: storeT0}
	s.Write(discovery.Batch{Assign: []discovery.Assignment{a4, a6, b4}})
	flush(t, s)
	later := a4
	later.LastSeen = storeT0.Add(time.Hour)
	s.Write(discovery.Batch{Assign: []discovery.Assignment{later}, Unassign: []string{"b.marathon/4", "a.marathon/6"}})
	flush(t, s)
	if got := load(t, s).Assignments; !reflect.DeepEqual(got, []discovery.Assignment{later}) {
		t.Errorf("Assignments = %+v, want %+v", got, []discovery.Assignment{later})
	}
}

func TestStoreWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T, path string) *DB
		want error
	}{
		{
			name: "closed",
			open: func(t *testing.T, path string) *DB {
				s := openTestStore(t, path)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				return s
			},
			want: berrors.ErrDatabaseNotOpen,
		},
		{
			name: "read-only",
			open: func(t *testing.T, path string) *DB {
				openTestStore(t, path).Close()
				s, err := open(path, Config{}, &bbolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			want: berrors.ErrDatabaseReadOnly,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.open(t, filepath.Join(t.TempDir(), "vipbridge.db"))

			s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/a", "v1")}})
			err := s.Flush(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Flush = %v, want %v", err, tt.want)
			}
			s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/b", "v1")}})
			if err := s.Flush(context.Background()); !errors.Is(err, tt.want) {
				t.Fatalf("second Flush = %v, want %v", err, tt.want)
			}
			if got := counted(t, s.met.writeErrors); got != 2 {
				t.Errorf("vipbridge_store_write_errors_total = %v, want 2", got)
			}
			s.mu.Lock()
			pending := s.q.size()
			s.mu.Unlock()
			if pending != 2 {
				t.Errorf("pending changes after failed writes = %d, want 2 (kept for retry)", pending)
			}

		})
	}
}

func TestStoreQueueMerge(t *testing.T) {
	failed := newQueue()
	failed.add(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/a", "old"), storeApp("/b", "old")}, LastSync: storeT0})
	failed.add(discovery.Batch{Source: "r", Put: []discovery.App{storeApp("/x", "old")}})
	newer := newQueue()
	newer.add(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/a", "new")}, Delete: []string{"/c"}})
	newer.add(discovery.Batch{Source: "r", Replace: true, Put: []discovery.App{storeApp("/y", "new")}})
	failed.merge(newer)

	got := map[string]string{}
	for src, q := range failed.sources {
		for id, a := range q.apps {
			v := "deleted"
			if a != nil {
				v = a.Version
			}
			got[src+":"+id] = v
		}
	}
	want := map[string]string{"m:/a": "new", "m:/b": "old", "m:/c": "deleted", "r:/y": "new"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged queue = %v, want %v", got, want)
	}
	if !failed.sources["r"].replace || failed.sources["m"].replace {
		t.Errorf("replace flags: m=%v r=%v, want false, true", failed.sources["m"].replace, failed.sources["r"].replace)
	}
	if !failed.lastSync.Equal(storeT0) {
		t.Errorf("lastSync = %v, want %v", failed.lastSync, storeT0)
	}
}

func TestStoreLoadSkipsBadEntries(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "vipbridge.db"))
	defer s.Close()
	s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/good", "v1")}})
	flush(t, s)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		apps := nestedBucket(tx, bucketRoot, bucketSources, []byte("m"), bucketApps)
		if err := apps.Put([]byte("/bad"), []byte("{not json")); err != nil {
			return err
		}
		return nestedBucket(tx, bucketRoot, bucketVIPs).Put([]byte("x/4"), []byte("[]"))
	})
	if err != nil {
		t.Fatal(err)
	}
	st := load(t, s)
	if got := appIDs(st); !slices.Equal(got, []string{"m:/good@v1"}) || len(st.Assignments) != 0 {
		t.Errorf("Load() = apps %v, assignments %v, want only m:/good@v1", got, st.Assignments)
	}
}

func ExampleDB() {
	dir, err := os.MkdirTemp("", "vipbridge")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := Open(filepath.Join(dir, "vipbridge.db"), Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.Write(discovery.Batch{Source: "marathon", Put: []discovery.App{{ID: "/web", Framework: "marathon"}, {ID: "/db", Framework: "marathon"}}})
	s.Write(discovery.Batch{Source: "marathon", Delete: []string{"/db"}})
	if err := s.Flush(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	st, err := s.Load()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range st.Sources["marathon"] {
		fmt.Println(a.ID)
	}
	// Output: /web
}

// TestStoreCluster checks that a source's cluster is stored, survives a
// replace of the source's apps, and is deleted by a nil Cluster.
func TestStoreCluster(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipbridge.db")
	s := openTestStore(t, path)
	defer s.Close()
	cl := &discovery.Cluster{
		Leader:     netip.MustParseAddrPort("10.0.0.1:5050"),
		Masters:    []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		Frameworks: []discovery.Framework{{ID: "f1", Name: "marathon", Addr: netip.MustParseAddrPort("10.0.0.1:8080")}},
		Agents:     []discovery.Agent{{ID: "a-S0", Hostname: "agent0", Addr: netip.MustParseAddrPort("10.0.1.1:5051")}},
	}
	s.Write(discovery.Batch{Source: "mesos", Put: []discovery.App{storeApp("hello-world/t1", "")}, SetCluster: true, Cluster: cl})
	flush(t, s)
	if got := load(t, s).Clusters["mesos"]; !reflect.DeepEqual(got, cl) {
		t.Fatalf("Load().Clusters[mesos] = %+v, want %+v", got, cl)
	}
	s.Write(discovery.Batch{Source: "mesos", Replace: true})
	flush(t, s)
	st := load(t, s)
	if len(st.Sources["mesos"]) != 0 || !reflect.DeepEqual(st.Clusters["mesos"], cl) {
		t.Fatalf("after a replace with no apps: apps %v, cluster %+v; want none and the cluster kept", st.Sources["mesos"], st.Clusters["mesos"])
	}
	s.Write(discovery.Batch{Source: "mesos", SetCluster: true})
	flush(t, s)
	if got, ok := load(t, s).Clusters["mesos"]; ok {
		t.Fatalf("after SetCluster nil: cluster %+v, want none", got)
	}
}

package discovery_test

// The reconciler over a real bbolt store (package store imports discovery,
// so these tests live in the external test package).

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/store"
)

var boltT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// snapshot is a Source serving a fixed set of apps.
type snapshot []discovery.App

func (s snapshot) Snapshot(context.Context) (discovery.State, error) {
	return discovery.State{Apps: slices.Clone(s)}, nil
}

func openBolt(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(path, store.Config{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// TestReconcilerPersistsToBolt: what the reconciler synced is in the file
// once Run has returned (its one flush at the end), and a reconciler
// started on that file serves it before any sync.
func TestReconcilerPersistsToBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vipbridge.db")
	web := discovery.App{ID: "/web", Framework: "marathon", Ports: []discovery.Port{{
		Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP},
		Labels: []discovery.Label{{Key: "VIP_0", Value: "/web:80"}},
	}}, Tasks: []discovery.Task{{ID: "web.1", AgentIP: netip.MustParseAddr("10.0.0.1"),
		HostPorts: []uint16{31000}, State: discovery.TaskRunning}}}
	db := openBolt(t, path)
	r, err := discovery.NewReconciler(discovery.Config{Store: db,
		Sources: []discovery.SourceConfig{{Name: "marathon", Source: snapshot{web}, Interval: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	changed, unsub := r.Subscribe()
	for !r.Status().Synced || r.Table().VIPs.Len() == 0 {
		select {
		case <-changed:
		case <-time.After(30 * time.Second): // bounds a failing test only
			t.Fatal("the reconciler did not sync")
		}
	}
	unsub()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openBolt(t, path)
	defer db.Close()
	st, err := db.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sources["marathon"]) != 1 || len(st.Assignments) != 1 || st.LastSync.IsZero() {
		t.Fatalf("stored: %d apps, %d assignments, last sync %v; want 1, 1, set", len(st.Sources["marathon"]), len(st.Assignments), st.LastSync)
	}
	r, err = discovery.NewReconciler(discovery.Config{Store: db,
		Sources: []discovery.SourceConfig{{Name: "marathon", Source: snapshot{}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Table().Lookup("web.marathon"); err != nil || !r.Status().Loaded {
		t.Errorf("after a restart: Lookup(web.marathon) = %v, Loaded = %v; want found, true", err, r.Status().Loaded)
	}
}

// benchStore writes nApps apps with tasksPerApp tasks each (BenchApps, with
// the host name and update time the Marathon decoder fills in) to a fresh
// store in b.TempDir and returns its path.
func benchStore(b *testing.B, nApps, tasksPerApp int) string {
	b.Helper()
	apps := discovery.BenchApps(nApps, tasksPerApp)
	for i := range apps {
		apps[i].Version = boltT0.Format(time.RFC3339Nano)
		for j := range apps[i].Tasks {
			t := &apps[i].Tasks[j]
			t.Host = "agent-" + t.AgentIP.String() + ".example.internal"
			t.Updated = boltT0.Add(time.Duration(i*tasksPerApp+j) * time.Millisecond)
		}
	}
	path := filepath.Join(b.TempDir(), "vipbridge.db")
	db := openBolt(b, path)
	db.Write(discovery.Batch{Source: "marathon", Put: apps, Replace: true, LastSync: boltT0})
	if err := db.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad10kApps is the in-process part of a restart: store.Open,
// Load and NewReconciler (which builds and publishes the first table) on a
// store of 10,000 apps / 100,000 tasks.
func BenchmarkLoad10kApps(b *testing.B) {
	path := benchStore(b, 10000, 10)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	b.Run("Load", func(b *testing.B) {
		db := openBolt(b, path)
		defer db.Close()
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := db.Load(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		b.ReportMetric(mb, "store-MB")
	})
	b.Run("Restart", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			db := openBolt(b, path)
			r, err := discovery.NewReconciler(discovery.Config{
				Store:      db,
				Sources:    []discovery.SourceConfig{{Name: "marathon", Source: snapshot{}}},
				Registerer: prometheus.NewRegistry(),
			})
			if err != nil {
				b.Fatal(err)
			}
			if n := r.Table().VIPs.Len(); n == 0 {
				b.Fatal("no VIPs after restart")
			}
			db.Close()
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		b.ReportMetric(mb, "store-MB")
	})
}

// cpuTime is the user and system CPU time of the process so far, GC
// included: on a shared machine a steadier figure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

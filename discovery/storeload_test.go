package discovery

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// benchStore writes nApps apps with tasksPerApp tasks each (benchApps, with
// the host name and update time the Marathon decoder fills in) to a fresh
// store in b.TempDir and returns its path.
func benchStore(b *testing.B, nApps, tasksPerApp int) string {
	b.Helper()
	apps := benchApps(nApps, tasksPerApp)
	for i := range apps {
		apps[i].Version = storeT0.Format(time.RFC3339Nano)
		for j := range apps[i].Tasks {
			t := &apps[i].Tasks[j]
			t.Host = "agent-" + t.AgentIP.String() + ".example.internal"
			t.Updated = storeT0.Add(time.Duration(i*tasksPerApp+j) * time.Millisecond)
		}
	}
	path := filepath.Join(b.TempDir(), "vipbridge.db")
	s, err := OpenStore(path, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	s.Write(Batch{Source: marathonSource, Put: apps, Replace: true, LastSync: storeT0})
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad10kApps is the in-process part of a restart: OpenStore, Load
// and NewReconciler (which builds and publishes the first table) on a store
// of 10,000 apps / 100,000 tasks.
func BenchmarkLoad10kApps(b *testing.B) {
	path := benchStore(b, 10000, 10)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	b.Run("Load", func(b *testing.B) {
		s, err := OpenStore(path, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := s.Load(); err != nil {
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
			s, err := OpenStore(path, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReconciler(Config{
				Store:      s,
				Sources:    []SourceConfig{{Name: marathonSource, Source: &fakeSource{}}},
				Registerer: prometheus.NewRegistry(),
			})
			if err != nil {
				b.Fatal(err)
			}
			if n := r.Table().VIPs.Len(); n == 0 {
				b.Fatal("no VIPs after restart")
			}
			s.Close()
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

package discovery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestBenchStoreGrowth is the bbolt part of `make bench-scale`
// (scripts/bench-scale.sh), skipped unless VIPBRIDGE_BENCH_SCALE=1: the
// store holds 10,000 apps / 100,000 tasks, then goes through
// VIPBRIDGE_BENCH_CYCLES (default 1,000,000) task create/delete cycles: a
// cycle adds a task to an app and removes it again, each in its own
// commit, 1,000 apps per commit (what the daemon's one-second flush does
// under a busy event stream). It prints the file size against the live
// data (the same contents compacted into a fresh file). bbolt never
// shrinks a file but reuses its free pages. Figures, not assertions.
func TestBenchStoreGrowth(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_SCALE") != "1" {
		t.Skip("set VIPBRIDGE_BENCH_SCALE=1 (make bench-scale)")
	}
	cycles := 1_000_000
	if s := os.Getenv("VIPBRIDGE_BENCH_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "vipbridge.db")
	// NoSync: the page allocation is the same, the run is not bound by fsync.
	s, err := openStore(path, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	apps := benchApps(10000, 10)
	ctx := context.Background()
	s.Write(Batch{Source: "marathon", Put: apps, Replace: true})
	if err := s.drain(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const perCommit = 1000
	for done, next := 0, 0; done < cycles; {
		n := min(perCommit, cycles-done)
		add, del := make([]App, n), make([]App, n)
		for i := range n {
			a := apps[(next+i)%len(apps)]
			del[i] = a
			a.Tasks = append(a.Tasks[:len(a.Tasks):len(a.Tasks)], Task{ID: fmt.Sprintf("cycle.%d", done+i), AgentIP: a.Tasks[0].AgentIP,
				HostPorts: []uint16{40000}, State: TaskRunning})
			add[i] = a
		}
		for _, put := range [][]App{add, del} {
			s.Write(Batch{Source: "marathon", Put: put})
			if err := s.drain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		next += n
		done += n
	}
	elapsed := time.Since(start)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	compact := filepath.Join(dir, "compact.db")
	dst, err := bbolt.Open(compact, 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := bbolt.Compact(dst, s.db, 0); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	s.Close()
	ci, err := os.Stat(compact)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("== bench-scale: bbolt after %d task create/delete cycles (%d commits, %s)\n", cycles, 2*((cycles+perCommit-1)/perCommit), elapsed.Round(time.Millisecond))
	fmt.Printf("file %.1f MB, live data (compacted copy) %.1f MB, ratio %.2f (goal <= 3)\n",
		float64(fi.Size())/1e6, float64(ci.Size())/1e6, float64(fi.Size())/float64(ci.Size()))
}

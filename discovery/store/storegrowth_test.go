package store

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
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
	s, err := open(path, Config{}, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	apps := scaleApps(10000, 10)
	ctx := context.Background()
	s.Write(discovery.Batch{Source: "marathon", Put: apps, Replace: true})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const perCommit = 1000
	for done, next := 0, 0; done < cycles; {
		n := min(perCommit, cycles-done)
		add, del := make([]discovery.App, n), make([]discovery.App, n)
		for i := range n {
			a := apps[(next+i)%len(apps)]
			del[i] = a
			a.Tasks = append(a.Tasks[:len(a.Tasks):len(a.Tasks)], discovery.Task{ID: fmt.Sprintf("cycle.%d", done+i), AgentIP: a.Tasks[0].AgentIP,
				HostPorts: []uint16{40000}, State: discovery.TaskRunning})
			add[i] = a
		}
		for _, put := range [][]discovery.App{add, del} {
			s.Write(discovery.Batch{Source: "marathon", Put: put})
			if err := s.Flush(ctx); err != nil {
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

// scaleApps returns n apps with tasksPerApp tasks each, the same as
// discovery's benchApps (its tests are out of reach here), so that the
// figures compare: host-port apps on 1,000 agents, some with health
// checks, and every tenth on a container network with IPv4 and IPv6 task
// addresses.
func scaleApps(n, tasksPerApp int) []discovery.App {
	apps := make([]discovery.App, n)
	for i := range apps {
		label := fmt.Sprintf("/group%d/app%d:80", i%100, i)
		port := discovery.Port{Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP}}
		if i%10 == 0 {
			port = discovery.Port{Kind: discovery.PortContainer, Protocols: []discovery.Protocol{discovery.TCP, discovery.UDP}, ContainerPort: 8080}
		}
		port.Labels = []discovery.Label{{Key: "VIP_0", Value: label}}
		app := discovery.App{ID: fmt.Sprintf("/group%d/app%d", i%100, i), Framework: "marathon", HealthChecks: i%3 == 0,
			Ports: []discovery.Port{port}, Tasks: make([]discovery.Task, tasksPerApp)}
		for j := range app.Tasks {
			k := i*tasksPerApp + j
			app.Tasks[j] = discovery.Task{
				ID:        fmt.Sprintf("app%d.task%d", i, j),
				AgentIP:   netip.AddrFrom4([4]byte{10, 1, byte(k % 1000 / 250), byte(k % 250)}),
				HostPorts: []uint16{uint16(20000 + k%10000)},
				IPs:       []netip.Addr{netip.AddrFrom4([4]byte{9, byte(k >> 16), byte(k >> 8), byte(k)}), netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(k)})},
				State:     discovery.TaskRunning,
				Health:    discovery.Health(k % 3),
			}
		}
		apps[i] = app
	}
	return apps
}

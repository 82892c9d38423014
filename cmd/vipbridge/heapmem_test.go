package main

// A heap profile of the daemon at 100,000 tasks (VIPBRIDGE_HEAP=file):
// skipped unless the variable is set; for measuring, not for CI.

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

func TestHeapAt100kTasks(t *testing.T) {
	heapProfile(t, marathontest.SizedScenario(10000, 10), true, "_app09999-load._tcp.marathon.mesos", dns.TypeSRV, 7)
}

// TestHeapAt100kMesosTasks is TestHeapAt100kTasks for 100,000 tasks of a
// framework other than Marathon, from the Mesos operator stream alone
// (VIPBRIDGE_HEAP=file).
func TestHeapAt100kMesosTasks(t *testing.T) {
	heapProfile(t, frameworkScenario(100_000), false, "exec99999.spark.mesos", dns.TypeA, 1)
}

// heapProfile runs the daemon on the simulator of sc (following its
// Marathon too if withMarathon) until name answers at least answers
// records of type qtype, then writes a heap profile to $VIPBRIDGE_HEAP.
func heapProfile(t *testing.T, sc *marathontest.Scenario, withMarathon bool, name string, qtype uint16, answers int) {
	out := os.Getenv("VIPBRIDGE_HEAP")
	if out == "" {
		t.Skip("VIPBRIDGE_HEAP not set")
	}
	sim, err := marathontest.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var marathonURLs []string
	if withMarathon {
		marathonURLs = []string{sim.URL()}
	}
	d := startDaemonWith(t, t.TempDir(), marathonURLs, []string{sim.MesosURL()}, func(c *config) { c.LogLevel = 0 })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := d.query(name, qtype)
		if err == nil && len(r.Answer) >= answers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not synced")
		}
		time.Sleep(time.Second)
	}
	time.Sleep(5 * time.Second)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("HeapInuse %d MB HeapAlloc %d MB", ms.HeapInuse>>20, ms.HeapAlloc>>20)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

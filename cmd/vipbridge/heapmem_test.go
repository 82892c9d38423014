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
	out := os.Getenv("VIPBRIDGE_HEAP")
	if out == "" {
		t.Skip("VIPBRIDGE_HEAP not set")
	}
	sim, err := marathontest.Start(marathontest.SizedScenario(10000, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) { c.LogLevel = 0 })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := d.query("_app09999-load._tcp.marathon.mesos", dns.TypeSRV)
		if err == nil && len(r.Answer) >= 7 {
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

// TestHeapAt100kMesosTasks is TestHeapAt100kTasks for 100,000 tasks of a
// framework other than Marathon, from the Mesos operator stream alone
// (VIPBRIDGE_HEAP=file).
func TestHeapAt100kMesosTasks(t *testing.T) {
	out := os.Getenv("VIPBRIDGE_HEAP")
	if out == "" {
		t.Skip("VIPBRIDGE_HEAP not set")
	}
	sim, err := marathontest.Start(frameworkScenario(100_000))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	d := startDaemonWith(t, t.TempDir(), nil, []string{sim.MesosURL()}, func(c *config) { c.LogLevel = 0 })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := d.query("exec99999.spark.mesos", dns.TypeA)
		if err == nil && len(r.Answer) == 1 {
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

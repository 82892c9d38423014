package main

import (
	"slices"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// BenchmarkEventToDNS measures event → DNS-visible over loopback: the
// simulator scales app /flip between 0 and 1 instance, which Marathon
// announces with status_update_events on the real SSE stream; the clock
// stops when the daemon publishes a table in which flip.marathon resolves
// (scale up) or is NXDOMAIN (scale down). DNS reads that table atomically,
// so publish time is DNS-visible time. Reports p50 and p99 in µs.
func BenchmarkEventToDNS(b *testing.B) {
	sc, err := marathontest.LoadScenario("small")
	if err != nil {
		b.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	defer sim.Close()
	if err := sim.AddApp(marathontest.AppSpec{ID: "/flip", Instances: 0,
		Ports: []marathontest.PortSpec{{Labels: map[string]string{"VIP_0": "/flip:80"}}}}); err != nil {
		b.Fatal(err)
	}
	d := startDaemon(b, b.TempDir(), []string{sim.URL()}, nil)
	rec := d.addrs.Reconciler
	changed, cancel := rec.Subscribe()
	defer cancel()
	visible := func() bool { _, err := rec.Table().Lookup("flip.marathon"); return err == nil }

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		up := i%2 == 0
		n := 0
		if up {
			n = 1
		}
		t0 := time.Now()
		if err := sim.ScaleApp("/flip", n); err != nil {
			b.Fatal(err)
		}
		for visible() != up {
			select {
			case <-changed:
			case <-time.After(eventually):
				b.Fatalf("flip.marathon visible=%v never became %v", !up, up)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

package main

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// BenchmarkEventToDNS measures event → DNS answer over loopback: the
// simulator scales app /flip between 0 and 1 instance, which Marathon
// announces with status_update_events on the real SSE stream; the clock
// starts once the simulator has emitted them (ScaleApp returned: its
// rendering and bookkeeping are not timed, writing the frames to the
// socket is) and stops when a DNS query over loopback UDP is answered with
// flip's A record (scale up) or NXDOMAIN (scale down). The reconciler's
// publish notification only wakes the querier (a millisecond timer too, as
// a safety net), so that it does not compete with the daemon it measures;
// every answer that counts comes over DNS.
//
// ns/op is the mean of that interval (the simulator's work is left out of
// it, not only of the percentiles); p50, p99 and max are reported in µs.
// The daemon logs at info, as in production: debug logs every event and
// turns off the DNS fast path.
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
	d := startDaemonWith(b, b.TempDir(), []string{sim.URL()}, nil, func(c *config) { c.LogLevel = slog.LevelInfo })
	changed, cancel := d.addrs.Reconciler.Subscribe()
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	conn, err := c.Dial(d.addrs.DNS.String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("flip.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	// answered reports whether a DNS answer shows flip up (an A) or down
	// (NXDOMAIN), as want says.
	answered := func(want bool) bool {
		r, _, err := c.ExchangeWithConn(q, conn)
		if err != nil {
			b.Fatalf("query flip: %v", err)
		}
		if want {
			return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
		}
		return r.Rcode == dns.RcodeNameError
	}
	if !answered(false) {
		b.Fatal("flip.marathon resolves before any instance runs")
	}

	var lat []time.Duration
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		up := i%2 == 0
		select { // a notification of an earlier table must not wake the wait
		case <-changed:
		default:
		}
		n := 0
		if up {
			n = 1
		}
		if err := sim.ScaleApp("/flip", n); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		deadline := time.NewTimer(eventually)
		for {
			// Query once a table is published (or every millisecond, a
			// safety net), not while the daemon is still at work.
			select {
			case <-changed:
			case <-time.After(time.Millisecond):
			case <-deadline.C:
				b.Fatalf("flip.marathon: up=%v never answered over DNS", up)
			}
			if answered(up) {
				break
			}
		}
		took := time.Since(t0)
		deadline.Stop()
		lat = append(lat, took)
		total += took
	}
	slices.Sort(lat)
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(lat)), "ns/op")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

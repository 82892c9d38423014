package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// TestBenchPropagation is `make bench-propagation` (scripts/bench-propagation.sh),
// skipped unless VIPBRIDGE_BENCH_PROPAGATION=1: the simulator (real SSE over
// loopback) feeds the in-process daemon (--lb none) with VIPS named VIPs in
// place (VIPBRIDGE_BENCH_VIPS, comma separated; default 100,10000), and
// the task of a probe app /probe is started and killed in turn
// (marathontest FlipTask): status_update_events only (TASK_STAGING +
// TASK_RUNNING adds the name, TASK_KILLED removes it), no deployment events,
// which would make the daemon resync. Two phases per size:
//
//   - steady: status updates restating running tasks stream in at 1,000/s
//     in the background; one flip every 10 ms;
//   - burst: 1,000 status updates are sent at once, then the flip.
//
// It prints, per size and phase, event → dataplane-applied (the none
// dataplane's Apply of the table holding the change) and event →
// DNS-visible (the table publish; DNS reads the published table atomically)
// p50/p99/max. The clock starts just before the flip's events are written
// to the stream. Figures are printed, never asserted.
func TestBenchPropagation(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_PROPAGATION") != "1" {
		t.Skip("set VIPBRIDGE_BENCH_PROPAGATION=1 (make bench-propagation)")
	}
	sizes := []int{100, 10000}
	if s := os.Getenv("VIPBRIDGE_BENCH_VIPS"); s != "" {
		sizes = nil
		for _, f := range splitComma(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("VIPBRIDGE_BENCH_VIPS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	samples := 500
	if s := os.Getenv("VIPBRIDGE_BENCH_SAMPLES"); s != "" {
		samples, _ = strconv.Atoi(s)
	}
	var lines []string
	p99 := map[string]map[int]time.Duration{} // phase → VIPs → event→DNS p99
	for _, n := range sizes {
		l, p := benchPropagation(t, n, samples)
		lines = append(lines, l...)
		for phase, d := range p {
			if p99[phase] == nil {
				p99[phase] = map[int]time.Duration{}
			}
			p99[phase][n] = d
		}
	}
	// The summary row: the largest size, next to the smallest.
	small, large := slices.Min(sizes), slices.Max(sizes)
	for _, phase := range []string{"steady", "burst"} {
		what := "steady 1,000 updates/s"
		if phase == "burst" {
			what = "flip behind a burst of 1,000 updates"
		}
		d := p99[phase][large]
		ascii := func(d time.Duration) string { return strings.ReplaceAll(us(d), "µ", "u") }
		summarize(t, "propagation", fmt.Sprintf("event->DNS p99, %d VIPs, %s", large, what), ascii(d),
			fmt.Sprintf("%s at %d VIPs", ascii(p99[phase][small]), small), "< 5ms", d < 5*time.Millisecond)
	}
	fmt.Println("== bench-propagation (--lb none; event = probe flip written to the SSE stream)")
	fmt.Printf("%-8s %-7s %7s  %-32s %-32s\n", "vips", "phase", "flips", "event→dataplane p50/p99/max", "event→DNS p50/p99/max")
	for _, l := range lines {
		fmt.Println(l)
	}
}

func benchPropagation(t *testing.T, nVIPs, samples int) ([]string, map[string]time.Duration) {
	sc := marathontest.SizedScenario(nVIPs, 1)
	sim, err := marathontest.Start(sc, marathontest.WithMaxOutstanding(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.AddApp(marathontest.AppSpec{ID: "/probe", Instances: 0,
		Ports: []marathontest.PortSpec{{Labels: map[string]string{"VIP_0": "/probe:80"}}}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig("run", []string{
		"--marathon", sim.URL(), "--data-dir", t.TempDir(), "--dns-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--log-level", "warn", "--lb", "none",
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan listening, 1)
	go func() { done <- runDaemon(ctx, cfg, io.Discard, ready) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	var addrs listening
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(eventually):
		t.Fatal("daemon did not start")
	}
	rec := addrs.Reconciler
	none, ok := addrs.Dataplane.(*lb.None)
	if !ok {
		t.Fatalf("dataplane is %T, want *lb.None", addrs.Dataplane)
	}
	changed, unsub := rec.Subscribe()
	defer unsub()
	deadline := time.Now().Add(2 * time.Minute)
	for rec.Table().Names() < nVIPs || rec.Table().Stale {
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("daemon has %d names, want %d", rec.Table().Names(), nVIPs)
		}
	}

	flip := func(up bool) (apply, visible time.Duration) {
		t0 := time.Now()
		if now, err := sim.FlipTask("/probe"); err != nil || now != up {
			t.Fatalf("FlipTask(/probe) = %v, %v; want %v", now, err, up)
		}
		for {
			tab := rec.Table()
			if _, err := tab.Lookup("probe.marathon"); (err == nil) == up {
				visible = time.Since(t0)
				if at, when := none.LastApplied(); at != nil && at.Generation == tab.Generation {
					apply = when.Sub(t0)
				} else {
					apply = -1 // a later table was applied meanwhile: no sample
				}
				return apply, visible
			}
			select {
			case <-changed:
			case <-time.After(eventually):
				t.Fatalf("probe.marathon visible=%v never became %v", !up, up)
			}
		}
	}
	var out []string
	p99 := map[string]time.Duration{}
	run := func(phase string, before func()) {
		var ap, vis []time.Duration
		for i := range samples {
			before()
			a, v := flip(i%2 == 0)
			if a >= 0 {
				ap = append(ap, a)
			}
			vis = append(vis, v)
		}
		out = append(out, fmt.Sprintf("%-8d %-7s %7d  %-32s %-32s", nVIPs, phase, len(vis), pct(ap), pct(vis)))
		p99[phase] = vis[len(vis)*99/100] // sorted by pct
	}

	// steady: background status updates at 1,000/s.
	bctx, bcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	sent := 0
	wg.Go(func() { sent = sim.EmitSteady(bctx, 1000) })
	run("steady", func() { time.Sleep(10 * time.Millisecond) })
	bcancel()
	wg.Wait()
	if sent == 0 {
		t.Error("no background status updates were sent")
	}
	// burst: 1,000 status updates, then the flip right behind them.
	run("burst", func() {
		time.Sleep(10 * time.Millisecond)
		sim.EmitStatus(1000)
	})

	// One real DNS answer, to show the published table is what DNS serves.
	m := new(dns.Msg)
	m.SetQuestion("loadapp00000.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if r, _, err := c.Exchange(m, addrs.DNS.String()); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("DNS check of loadapp00000.marathon: %v %v", r, err)
	}
	return out, p99
}

// pct formats p50/p99/max of d.
func pct(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	return fmt.Sprintf("%s / %s / %s", us(d[len(d)/2]), us(d[len(d)*99/100]), us(d[len(d)-1]))
}

func us(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

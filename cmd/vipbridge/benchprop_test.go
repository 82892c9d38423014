package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// TestBenchPropagation is `make bench-propagation` (scripts/bench-propagation.sh),
// skipped unless VIPBRIDGE_BENCH_PROPAGATION=1: the simulator, in its own
// process as real Marathon is (scripts/benchzone serve, driven through its
// loopback control API), feeds the in-process daemon (--lb none) over real
// SSE on loopback with VIPS named VIPs in place (VIPBRIDGE_BENCH_VIPS, comma separated; default 100,10000), and
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
// DNS-visible in each zone the probe's task is named in (the first
// published table holding the change of that zone's name; DNS reads the
// published table atomically): l4lb (probe.marathon.l4lb.thisdcos.directory),
// mesos (probe.marathon.mesos, mesos-dns's name, from Marathon's task with
// its slaveId) and autoip (probe.marathon.autoip.dcos.thisdcos.directory),
// p50/p99/max. After each flip the three names are asked over real DNS on
// loopback; an answer that does not show the change yet is counted and
// printed ("DNS behind the table"). The clock starts just before the
// flip's events are written to the stream: the simulator reads the wall
// clock there and the test subtracts it from its own (both processes share
// the machine's wall clock). Figures are printed, never asserted.
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
	benchzone := buildBenchzone(t)
	var lines []string
	p99 := map[string]map[int]time.Duration{} // phase/zone → VIPs → event→DNS p99
	for _, n := range sizes {
		l, p := benchPropagation(t, benchzone, n, samples)
		lines = append(lines, l...)
		for key, d := range p {
			if p99[key] == nil {
				p99[key] = map[int]time.Duration{}
			}
			p99[key][n] = d
		}
	}
	// The summary rows: the largest size, next to the smallest, per phase
	// and zone.
	small, large := slices.Min(sizes), slices.Max(sizes)
	for _, phase := range []string{"steady", "burst"} {
		what := "steady 1,000 updates/s"
		if phase == "burst" {
			what = "flip behind a burst of 1,000 updates"
		}
		for _, z := range probeZones {
			d := p99[phase+"/"+z.zone][large]
			ascii := func(d time.Duration) string { return strings.ReplaceAll(us(d), "µ", "u") }
			summarize(t, "propagation", fmt.Sprintf("event->DNS p99 in %s, %d apps, %s", z.zone, large, what), ascii(d),
				fmt.Sprintf("%s at %d apps", ascii(p99[phase+"/"+z.zone][small]), small), "< 5ms", d < 5*time.Millisecond)
		}
	}
	fmt.Println("== bench-propagation (--lb none; event = probe flip written to the SSE stream; p50 / p99 / max)")
	fmt.Printf("%-6s %-7s %6s  %-28s", "apps", "phase", "flips", "event→dataplane")
	for _, z := range probeZones {
		fmt.Printf(" %-28s", "event→DNS "+z.zone)
	}
	fmt.Printf(" %s\n", "DNS behind the table")
	for _, l := range lines {
		fmt.Println(l)
	}
}

// probeZone is one zone the probe's task is named in: its name there over
// DNS, and whether a published table holds it.
type probeZone struct {
	zone string
	fqdn string
	in   func(*discovery.Table) bool
}

// probeZones are the probe app's names: the VIP /probe:80, mesos-dns's
// name of its task (Mesos names a Marathon task by its app id, here
// "probe") and dcos-dns's autoip name.
var probeZones = []probeZone{
	{zone: "l4lb", fqdn: "probe.marathon.l4lb.thisdcos.directory.", in: func(t *discovery.Table) bool {
		_, err := t.Lookup("probe.marathon")
		return err == nil
	}},
	{zone: "mesos", fqdn: "probe.marathon.mesos.", in: func(t *discovery.Table) bool {
		r, err := t.Records(discovery.ZoneMesos, "probe.marathon")
		return err == nil && len(r.A) > 0
	}},
	{zone: "autoip", fqdn: "probe.marathon.autoip.dcos.thisdcos.directory.", in: func(t *discovery.Table) bool {
		r, err := t.Records(discovery.ZoneDCOS, "probe.marathon.autoip")
		return err == nil && len(r.A) > 0
	}},
}

func benchPropagation(t *testing.T, benchzone string, nVIPs, samples int) ([]string, map[string]time.Duration) {
	sim := startBenchSim(t, benchzone, nVIPs)
	defer sim.stop(t)
	cfg, err := parseConfig("run", []string{
		"--marathon", sim.marathon, "--data-dir", t.TempDir(), "--dns-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--log-level", "warn", "--lb", "none",
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := runTestDaemon(t, cfg)
	defer d.stop() // before the next size starts
	addrs := d.addrs
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

	// flip asks the simulator to flip the probe and, meanwhile, watches the
	// published tables until each zone's name shows the change: it may
	// well be published before the control answer (which carries t0)
	// arrives. Then it asks DNS for the three names and counts each answer
	// that does not show the change.
	dnsClient := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	flip := func(up bool) (apply time.Duration, visible []time.Duration, dnsBehind int) {
		type flipped struct {
			running bool
			t0      time.Time
			err     error
		}
		answered := make(chan flipped, 1)
		go func() {
			var a struct {
				Running bool
				T0      int64
			}
			err := sim.post("/flip?app=/probe", &a)
			// Wall clock only (no monotonic reading): Sub below compares
			// it with this process's wall clock, the same clock.
			answered <- flipped{a.Running, time.Unix(0, a.T0), err}
		}()
		var (
			ans     *flipped
			seen    = make([]time.Time, len(probeZones)) // when this process saw each zone's change published
			pending = len(probeZones)
			applied time.Time // the none dataplane's Apply of the l4lb change's table; zero if a later one came first
		)
		for pending > 0 {
			tab := rec.Table()
			now := time.Now()
			for i, z := range probeZones {
				if seen[i].IsZero() && z.in(tab) == up {
					seen[i] = now
					pending--
					if i == 0 {
						if at, when := none.LastApplied(); at != nil && at.Generation == tab.Generation {
							applied = when
						}
					}
				}
			}
			if pending == 0 {
				break
			}
			select {
			case <-changed:
			case a := <-answered:
				ans, answered = &a, nil
				if a.err != nil || a.running != up {
					t.Fatalf("flip /probe: running=%v, %v; want %v", a.running, a.err, up)
				}
			case <-time.After(eventually):
				t.Fatalf("the probe's names visible=%v never all became %v (seen %v)", !up, up, seen)
			}
		}
		if ans == nil {
			a := <-answered
			if a.err != nil || a.running != up {
				t.Fatalf("flip /probe: running=%v, %v; want %v", a.running, a.err, up)
			}
			ans = &a
		}
		apply = -1 // a later table was applied meanwhile: no sample
		if !applied.IsZero() {
			apply = applied.Sub(ans.t0)
		}
		for i, z := range probeZones {
			visible = append(visible, seen[i].Sub(ans.t0))
			m := new(dns.Msg)
			m.SetQuestion(z.fqdn, dns.TypeA)
			r, _, err := dnsClient.Exchange(m, addrs.DNS.String())
			if err != nil {
				t.Fatalf("DNS %s: %v", z.fqdn, err)
			}
			if (r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0) != up {
				dnsBehind++
			}
		}
		return apply, visible, dnsBehind
	}
	var out []string
	p99 := map[string]time.Duration{} // phase/zone → p99
	run := func(phase string, before func()) {
		var ap []time.Duration
		vis := make([][]time.Duration, len(probeZones))
		behind := 0
		for i := range samples {
			before()
			a, v, b := flip(i%2 == 0)
			if a >= 0 {
				ap = append(ap, a)
			}
			for z := range v {
				vis[z] = append(vis[z], v[z])
			}
			behind += b
		}
		line := fmt.Sprintf("%-6d %-7s %6d  %-28s", nVIPs, phase, samples, pct(ap))
		for z, d := range vis {
			line += fmt.Sprintf(" %-28s", pct(d))
			p99[phase+"/"+probeZones[z].zone] = d[len(d)*99/100] // sorted by pct
		}
		out = append(out, line+fmt.Sprintf(" %d of %d answers", behind, samples*len(probeZones)))
	}

	// steady: background status updates at 1,000/s.
	if err := sim.post("/steady/start?rate=1000", nil); err != nil {
		t.Fatal(err)
	}
	run("steady", func() { time.Sleep(10 * time.Millisecond) })
	var steady struct{ Sent int }
	if err := sim.post("/steady/stop", &steady); err != nil {
		t.Fatal(err)
	}
	if steady.Sent == 0 {
		t.Error("no background status updates were sent")
	}
	// burst: 1,000 status updates, then the flip right behind them. The
	// answer comes once all of them are queued to the stream.
	run("burst", func() {
		time.Sleep(10 * time.Millisecond)
		if err := sim.post("/status?n=1000", nil); err != nil {
			t.Fatal(err)
		}
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

// buildBenchzone builds scripts/benchzone, the simulator's process.
func buildBenchzone(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "benchzone")
	// go test puts its own GOROOT/bin first in PATH.
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vipbridge/vipbridge/scripts/benchzone")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build benchzone: %v\n%s", err, out)
	}
	return bin
}

// benchSim is the simulator (marathontest) in its own process, as real
// Marathon is: its load generation (rendering, SSE writes, 1,000 updates/s
// and bursts) no longer shares the daemon's heap and GC. It is driven
// through benchzone's loopback control API.
type benchSim struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returned
	waitErr  error
	stderr   bytes.Buffer // read only after exited
	marathon string
	control  string
	client   *http.Client
}

// startBenchSim starts `benchzone serve` with the cluster the bench always
// used: marathontest.SizedScenario(nVIPs, 1) and an app /probe with no
// task and VIP_0=/probe:80.
func startBenchSim(t *testing.T, bin string, nVIPs int) *benchSim {
	urls := filepath.Join(t.TempDir(), "urls")
	p := &benchSim{exited: make(chan struct{}), client: &http.Client{Timeout: time.Minute}}
	p.cmd = exec.Command(bin, "serve", "-apps", strconv.Itoa(nVIPs), "-tasks", "1",
		"-probe", "/probe", "-control", "127.0.0.1:0", "-urls", urls)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start benchzone: %v", err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		body, err := os.ReadFile(urls) // written whole (rename)
		if err == nil {
			for _, l := range strings.Split(string(body), "\n") {
				switch k, v, _ := strings.Cut(l, "="); k {
				case "MARATHON":
					p.marathon = v
				case "CONTROL":
					p.control = v
				}
			}
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("benchzone (pid %d) exited before serving: %v\n%s", p.cmd.Process.Pid, p.waitErr, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop(t)
			t.Fatalf("benchzone (pid %d) wrote no %s", p.cmd.Process.Pid, urls)
		}
	}
	if p.marathon == "" || p.control == "" {
		p.stop(t)
		t.Fatalf("benchzone URLs file lacks MARATHON or CONTROL")
	}
	return p
}

// stop ends the simulator by its PID: SIGTERM, then SIGKILL if it has not
// exited within 10 s, and reports an unclean exit.
func (p *benchSim) stop(t *testing.T) {
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("benchzone (pid %d): SIGTERM: %v", pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("benchzone (pid %d) ignored SIGTERM for 10s; killing it", pid)
		p.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
		<-p.exited
	}
	if p.waitErr != nil {
		t.Errorf("benchzone (pid %d): %v\n%s", pid, p.waitErr, p.stderr.String())
	}
}

// post calls the control API and decodes its JSON answer into v (if not nil).
func (p *benchSim) post(path string, v any) error {
	resp, err := p.client.Post(p.control+path, "", nil)
	if err != nil {
		return fmt.Errorf("benchzone control %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("benchzone control %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("benchzone control %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("benchzone control %s: %w", path, err)
	}
	return nil
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

// TestBenchPropagationMesos is the Mesos part of `make
// bench-propagation`, skipped unless VIPBRIDGE_BENCH_PROPAGATION=1: the
// simulator's Mesos master (in this process, its operator stream on
// loopback) feeds the in-process daemon (--mesos alone, --lb none) with
// 10,000 and 100,000 tasks of the framework "spark" in place
// (VIPBRIDGE_BENCH_MESOS_TASKS, comma separated; the source's full resync
// every VIPBRIDGE_BENCH_RESYNC_INTERVAL, default 5m as the daemon's), and a probe task with the
// VIP /probe:80 is started and killed in turn (StartFrameworkTask,
// KillFrameworkTask): TASK_ADDED then TASK_UPDATED to TASK_RUNNING adds
// its names, TASK_UPDATED to TASK_KILLED removes them. The clock starts
// when the simulator writes the events (LastMesosEvents). It prints event →
// dataplane-applied and event → DNS-visible in l4lb
// (probe.spark.l4lb.thisdcos.directory) and mesos (probe.spark.mesos),
// p50/p99/max, the bytes the stream carried per flip, and the daemon's
// part: the event read (Table.Received) → its table published. Figures,
// not assertions.
func TestBenchPropagationMesos(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_PROPAGATION") != "1" {
		t.Skip("set VIPBRIDGE_BENCH_PROPAGATION=1 (make bench-propagation)")
	}
	sizes := []int{10_000, 100_000}
	if s := os.Getenv("VIPBRIDGE_BENCH_MESOS_TASKS"); s != "" {
		sizes = nil
		for _, f := range splitComma(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("VIPBRIDGE_BENCH_MESOS_TASKS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	samples := 200
	if s := os.Getenv("VIPBRIDGE_BENCH_SAMPLES"); s != "" {
		samples, _ = strconv.Atoi(s)
	}
	fmt.Println("== bench-propagation, Mesos operator stream (--mesos alone, --lb none; event = TASK_UPDATED written; p50 / p99 / max)")
	fmt.Printf("%-7s %6s  %-28s %-28s %-28s %-6s %s\n", "tasks", "flips", "event→dataplane", "event→DNS l4lb", "event→DNS mesos", "bytes", "of which read → table published")
	for _, n := range sizes {
		line, p99 := benchPropagationMesos(t, n, samples)
		fmt.Println(line)
		ascii := func(d time.Duration) string { return strings.ReplaceAll(us(d), "µ", "u") }
		for _, z := range []string{"l4lb", "mesos"} {
			summarize(t, "propagation", fmt.Sprintf("TASK_UPDATED->DNS p99 in %s, %dk Mesos tasks", z, n/1000), ascii(p99[z]), "-", "< 5ms", p99[z] < 5*time.Millisecond)
		}
	}
}

// mesosProbeZones are the probe task's names: its VIP and mesos-dns's name
// of the task (named "probe", framework "spark").
var mesosProbeZones = []probeZone{
	{zone: "l4lb", fqdn: "probe.spark.l4lb.thisdcos.directory.", in: func(t *discovery.Table) bool {
		_, err := t.Lookup("probe.spark")
		return err == nil
	}},
	{zone: "mesos", fqdn: "probe.spark.mesos.", in: func(t *discovery.Table) bool {
		r, err := t.Records(discovery.ZoneMesos, "probe.spark")
		return err == nil && len(r.A) > 0
	}},
}

func benchPropagationMesos(t *testing.T, n, samples int) (string, map[string]time.Duration) {
	sim, err := marathontest.Start(frameworkScenario(n))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg, err := parseConfig("run", []string{
		"--mesos", sim.MesosURL(), "--resync-interval", cmp.Or(os.Getenv("VIPBRIDGE_BENCH_RESYNC_INTERVAL"), "5m"),
		"--data-dir", t.TempDir(), "--dns-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--log-level", "warn", "--lb", "none",
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := runTestDaemon(t, cfg)
	defer d.stop() // before the next size starts
	addrs := d.addrs
	rec := addrs.Reconciler
	none, ok := addrs.Dataplane.(*lb.None)
	if !ok {
		t.Fatalf("dataplane is %T, want *lb.None", addrs.Dataplane)
	}
	changed, unsub := rec.Subscribe()
	defer unsub()
	deadline := time.Now().Add(5 * time.Minute)
	for rec.Table().Names() < n/10 || rec.Table().Stale {
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("daemon has %d names, want %d", rec.Table().Names(), n/10)
		}
	}
	probe := marathontest.FrameworkTask{ID: "probe-1", Name: "probe", Agent: 0,
		Ports: []marathontest.DiscoveryPort{{Number: 80, Scope: "host", Labels: map[string]string{"VIP_0": "/probe:80"}}}}
	var apply, built []time.Duration // built: the event read (Table.Received) → its table published
	visible := make([][]time.Duration, len(mesosProbeZones))
	bytesBefore := sim.MesosEventBytes()
	const warmup = 4 // flips not counted: the first table's task zones may still be in the making
	for i := range samples + warmup {
		up := i%2 == 0
		if i == warmup {
			apply, built, visible, bytesBefore = nil, nil, make([][]time.Duration, len(mesosProbeZones)), sim.MesosEventBytes()
		}
		time.Sleep(10 * time.Millisecond)
		if up {
			err = sim.StartFrameworkTask("spark", probe)
		} else {
			err = sim.KillFrameworkTask(probe.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]time.Time, len(mesosProbeZones))
		var applied, received time.Time
		for pending := len(seen); pending > 0; {
			tab := rec.Table()
			now := time.Now()
			for z, pz := range mesosProbeZones {
				if seen[z].IsZero() && pz.in(tab) == up {
					seen[z] = now
					pending--
					if z == 0 {
						if at, when := none.LastApplied(); at != nil && at.Generation == tab.Generation {
							applied = when
						}
						received = tab.Received
					}
				}
			}
			if pending == 0 {
				break
			}
			select {
			case <-changed:
			case <-time.After(eventually):
				t.Fatalf("the probe's names never all became visible=%v (seen %v)", up, seen)
			}
		}
		t0 := sim.LastMesosEvents()
		if !applied.IsZero() {
			apply = append(apply, applied.Sub(t0))
		}
		for z := range seen {
			visible[z] = append(visible[z], seen[z].Sub(t0))
		}
		if !received.IsZero() {
			built = append(built, seen[0].Sub(received))
		}
	}
	perFlip := (sim.MesosEventBytes() - bytesBefore) / int64(samples)
	p99 := map[string]time.Duration{}
	line := fmt.Sprintf("%-7d %6d  %-28s", n, samples, pct(apply))
	for z, d := range visible {
		line += fmt.Sprintf(" %-28s", pct(d))
		p99[mesosProbeZones[z].zone] = d[len(d)*99/100] // sorted by pct
	}
	return line + fmt.Sprintf(" %-6d %s", perFlip, pct(built)), p99
}

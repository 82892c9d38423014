package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// TestBenchScale is the daemon part of `make bench-scale`
// (scripts/bench-scale.sh), skipped unless VIPBRIDGE_BENCH_SCALE=1. The
// simulator serves 10,000 apps / 100,000 tasks (one VIP each) on loopback;
// vipbridge runs as a real process (built here, --lb none). It prints:
//
//   - the simulator's part alone: a plain GET of /v2/apps?embed=apps.tasks
//     whose body is discarded (first byte, last byte), before the daemon
//     runs: what the daemon's sync waits for at least;
//   - initial full sync: process start → DNS answers the last app's name
//     (the first table holding the whole snapshot), with the daemon's
//     vipbridge_resync_duration_seconds (its Snapshot: fetch and streaming
//     decode, overlapping the simulator's encoding) from /metrics right
//     after; the rest is the daemon's model, build and publish;
//   - peak RSS: VmHWM of the process once the initial sync is over: the
//     second snapshot that the event stream's connect asks for (it connects
//     while the first is in flight) is done and the store has stopped
//     committing (see settle); also VmHWM at the first answer;
//   - restart: the process stopped (SIGTERM), the simulator closed, a new
//     process started on the same data dir → first correct DNS answer
//     (same address as before) served from bbolt with Marathon down.
//
// Figures, not assertions.
func TestBenchScale(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_SCALE") != "1" {
		t.Skip("set VIPBRIDGE_BENCH_SCALE=1 (make bench-scale)")
	}
	const apps, tasks = 10000, 10
	dir := t.TempDir()
	bin := filepath.Join(dir, "vipbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	simStart := time.Now()
	sim, err := marathontest.Start(marathontest.SizedScenario(apps, tasks))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	simTook := time.Since(simStart)
	getFirst, getAll, getBytes := plainGet(t, sim.URL()+"/v2/apps?embed=apps.tasks")
	dnsAddr, httpAddr := freeAddr(t), freeAddr(t)
	run := func() (*exec.Cmd, time.Time) {
		cmd := exec.Command(bin, "run", "--marathon", sim.URL(), "--data-dir", filepath.Join(dir, "data"),
			"--dns-addr", dnsAddr, "--http-addr", httpAddr, "--lb", "none", "--log-level", "warn")
		cmd.Stderr = os.Stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd, t0
	}
	last := fmt.Sprintf("loadapp%05d.marathon.l4lb.thisdcos.directory.", apps-1)
	answer := func(deadline time.Duration) (string, time.Time) {
		c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion(last, dns.TypeA)
		end := time.Now().Add(deadline)
		for time.Now().Before(end) {
			if r, _, err := c.Exchange(m, dnsAddr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
				return r.Answer[0].(*dns.A).A.String(), time.Now()
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("no answer for %s within %s", last, deadline)
		return "", time.Time{}
	}

	cmd, t0 := run()
	addr, at := answer(2 * time.Minute)
	syncTook := at.Sub(t0)
	resync := scrape(t, "http://"+httpAddr+"/metrics", "vipbridge_resync_duration_seconds_sum{source=\"marathon\"}",
		"vipbridge_resync_duration_seconds_count{source=\"marathon\"}")
	hwmAnswer := procStatus(t, cmd.Process.Pid, "VmHWM")
	settled := settle(t, "http://"+httpAddr+"/metrics", time.Minute)
	hwm, rss := procStatus(t, cmd.Process.Pid, "VmHWM"), procStatus(t, cmd.Process.Pid, "VmRSS")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("first run exited: %v", err)
	}
	sim.Close() // Marathon and Mesos down from here on

	cmd, t0 = run()
	addr2, at := answer(30 * time.Second)
	restartTook := at.Sub(t0)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if addr2 != addr {
		t.Errorf("after restart %s is %s, was %s", last, addr2, addr)
	}
	fi, _ := os.Stat(filepath.Join(dir, "data", "vipbridge.db"))
	fmt.Printf("== bench-scale: %d apps / %d tasks (simulator start %s)\n", apps, apps*tasks, simTook.Round(time.Millisecond))
	fmt.Printf("simulator alone, GET /v2/apps?embed=apps.tasks + discard: first byte %s, all %.1f MB %s\n",
		getFirst.Round(time.Millisecond), float64(getBytes)/1e6, getAll.Round(time.Millisecond))
	fmt.Printf("initial full sync over HTTP → last name answered: %s (goal < 3s)\n", syncTook.Round(time.Millisecond))
	fmt.Printf("  of which the daemon's Snapshot (fetch + streaming decode, waits for the simulator): %s\n", resync)
	fmt.Printf("peak RSS (VmHWM) %s, RSS after sync %s (goal < 300 MB); VmHWM when the last name answered %s; settled after %s\n",
		hwm, rss, hwmAnswer, settled)
	fmt.Printf("restart → first correct DNS answer from bbolt, upstreams down: %s (goal < 1s); store %.1f MB\n",
		restartTook.Round(time.Millisecond), float64(fi.Size())/1e6)

	size := fmt.Sprintf("%dk apps / %dk tasks", apps/1000, apps*tasks/1000)
	summarize(t, "scale", "initial sync over HTTP, start -> last name answered, "+size, syncTook.Round(time.Millisecond).String(),
		fmt.Sprintf("simulator alone: %s to send it all", getAll.Round(time.Millisecond)), "< 3s", syncTook < 3*time.Second)
	peak := float64(kB(hwm)) * 1024 / 1e6 // VmHWM counts KiB
	summarize(t, "scale", "peak RSS (VmHWM), "+size, fmt.Sprintf("%.0f MB", peak), "-", "< 300 MB", peak > 0 && peak < 300)
	summarize(t, "scale", "restart -> first answer from bbolt, upstreams down", restartTook.Round(time.Millisecond).String(), "-",
		"< 1s", restartTook < time.Second)
}

// kB reads a /proc status figure ("123456 kB") in kB; -1 if it cannot.
func kB(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(s, " kB"))
	if err != nil {
		return -1
	}
	return n
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		return freeAddr(t)
	}
	pc.Close()
	return ln.Addr().String()
}

// procStatus returns field of /proc/<pid>/status, e.g. "123456 kB".
func procStatus(t *testing.T, pid int, field string) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// plainGet fetches url and discards the body: time to the first byte of
// the body, to the last, and the size.
func plainGet(t *testing.T, url string) (first, all time.Duration, n int64) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		t.Fatal(err)
	}
	first = time.Since(start)
	n, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return first, time.Since(start), n + 1
}

// settle waits until the daemon's initial sync is over: two snapshots of
// "marathon" done (the first and the one the event stream's connect
// requests) and no store commit for a second. It returns how long that took,
// or says it gave up after max.
func settle(t *testing.T, url string, max time.Duration) string {
	t.Helper()
	start := time.Now()
	last, stable := -1.0, time.Now()
	for time.Since(start) < max {
		m := scrapeMetrics(url)
		commits := m["vipbridge_store_commits_total"]
		if commits != last {
			last, stable = commits, time.Now()
		}
		// One start-up snapshot: it waits for the event stream
		// (discovery.Config.StreamWait), whose connect would otherwise ask
		// for a second.
		if m["vipbridge_resync_duration_seconds_count{source=\"marathon\"}"] >= 1 && time.Since(stable) >= time.Second {
			return time.Since(start).Round(100 * time.Millisecond).String()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("(not settled within %s)", max)
}

// scrapeMetrics reads the unlabelled and labelled samples of a /metrics page;
// empty on error.
func scrapeMetrics(url string) map[string]float64 {
	vals := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		return vals
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(k, "#") {
			vals[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	return vals
}

// scrape reads sum and count of a histogram from a /metrics page and
// returns "<sum/count> (mean of <count>)", or "?" if absent.
func scrape(t *testing.T, url, sum, count string) string {
	t.Helper()
	m := scrapeMetrics(url)
	if m[count] == 0 {
		return "?"
	}
	d := time.Duration(m[sum] / m[count] * float64(time.Second))
	return fmt.Sprintf("%s (mean of %.0f)", d.Round(time.Millisecond), m[count])
}

// TestBenchScaleMesos is the Mesos part of `make bench-scale`, skipped
// unless VIPBRIDGE_BENCH_SCALE=1. vipbridge runs as a real process (built
// here, or VIPBRIDGE_BENCH_BIN to measure another build) against the
// simulator on loopback, --lb none. It prints:
//
//   - 100,000 tasks of a framework other than Marathon (10,000 VIPs of 10
//     tasks), Mesos alone: process start → the last task's VIP and its .mesos name
//     answered, all from the SUBSCRIBED snapshot; peak RSS (VmHWM) then;
//   - 10,000 Marathon apps / 100,000 tasks with Marathon and Mesos both
//     followed (the SUBSCRIBED snapshot holds Marathon's 100,000 tasks,
//     which the Marathon source serves): peak RSS once both are synced;
//   - bytes read from the master: the SUBSCRIBED record once per
//     subscription, then heartbeats, against GET /master/state every 30 s.
//
// Figures, not assertions.
func TestBenchScaleMesos(t *testing.T) {
	if os.Getenv("VIPBRIDGE_BENCH_SCALE") != "1" {
		t.Skip("set VIPBRIDGE_BENCH_SCALE=1 (make bench-scale)")
	}
	bin := os.Getenv("VIPBRIDGE_BENCH_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "vipbridge")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	const tasks = 100_000
	fmt.Printf("== bench-scale, Mesos operator stream (%s)\n", bin)

	sim, err := marathontest.Start(frameworkScenario(tasks))
	if err != nil {
		t.Fatal(err)
	}
	subscribed, simTook := subscribedBytes(t, sim.MesosURL())
	_, _, stateBytes := plainGet(t, sim.MesosURL()+"/master/state")
	last := fmt.Sprintf("spark%05d.spark.l4lb.thisdcos.directory.", tasks/10-1)
	lastTask := fmt.Sprintf("exec%05d.spark.mesos.", tasks-1)
	cmd, t0, dnsAddr, httpAddr := startBenchDaemon(t, bin, "--mesos", sim.MesosURL())
	answered(t, dnsAddr, last, 5*time.Minute)
	vipTook := time.Since(t0)
	answered(t, dnsAddr, lastTask, time.Minute)
	took := time.Since(t0)
	resync := scrape(t, "http://"+httpAddr+"/metrics", "vipbridge_resync_duration_seconds_sum{source=\"mesos\"}",
		"vipbridge_resync_duration_seconds_count{source=\"mesos\"}")
	hwm := procStatus(t, cmd.Process.Pid, "VmHWM")
	stopDaemon(t, cmd)
	sim.Close()
	fmt.Printf("%d non-Marathon tasks, Mesos alone: start → last VIP answered %s, its .mesos name %s (the simulator alone takes %s to send SUBSCRIBED; the daemon's snapshot of its copy %s); peak RSS (VmHWM) %s\n",
		tasks, vipTook.Round(time.Millisecond), took.Round(time.Millisecond), simTook.Round(time.Millisecond), resync, hwm)
	hour := 3600 / 30
	fmt.Printf("bytes from the master at rest: stream %.1f MB once (SUBSCRIBED) + heartbeats (~%d kB/h); "+
		"the 30 s poll of /master/state %.1f MB × %d = %.0f MB/h\n",
		float64(subscribed)/1e6, 240*len(`20`+"\n"+`{"type":"HEARTBEAT"}`)/1000, float64(stateBytes)/1e6, hour, float64(stateBytes)*float64(hour)/1e6)
	size := fmt.Sprintf("%dk non-Marathon tasks", tasks/1000)
	summarize(t, "scale", "SUBSCRIBED -> every name served, "+size, took.Round(time.Millisecond).String(),
		fmt.Sprintf("simulator alone: %s to send it", simTook.Round(time.Millisecond)), "< 3s (Marathon's initial sync)", took < 3*time.Second)
	peak := float64(kB(hwm)) * 1024 / 1e6
	summarize(t, "scale", "peak RSS (VmHWM), Mesos alone, "+size, fmt.Sprintf("%.0f MB", peak), "-", "< 300 MB", peak > 0 && peak < 300)

	sim, err = marathontest.Start(marathontest.SizedScenario(tasks/10, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cmd, t0, dnsAddr, _ = startBenchDaemon(t, bin, "--marathon", sim.URL(), "--mesos", sim.MesosURL())
	answered(t, dnsAddr, fmt.Sprintf("loadapp%05d.marathon.l4lb.thisdcos.directory.", tasks/10-1), 5*time.Minute)
	time.Sleep(10 * time.Second) // the Mesos snapshot too, and the store's commits
	hwm, rss := procStatus(t, cmd.Process.Pid, "VmHWM"), procStatus(t, cmd.Process.Pid, "VmRSS")
	stopDaemon(t, cmd)
	fmt.Printf("%d Marathon tasks, Marathon and Mesos followed: peak RSS (VmHWM) %s, RSS %s, %s after start\n",
		tasks, hwm, rss, time.Since(t0).Round(time.Second))
	peak = float64(kB(hwm)) * 1024 / 1e6
	summarize(t, "scale", "peak RSS (VmHWM), Marathon and Mesos followed, 100k Marathon tasks", fmt.Sprintf("%.0f MB", peak), "-", "< 300 MB", peak > 0 && peak < 300)
}

// frameworkScenario is n running tasks of the framework "spark" on 500
// loopback agents, task i named exec<i> with a host port labelled
// VIP_0=/spark<i/10>:80: n/10 VIPs of 10 backends each, the shape of
// the Marathon scale figures (10,000 apps of 10 tasks).
func frameworkScenario(n int) *marathontest.Scenario {
	sc := &marathontest.Scenario{Agents: make([]marathontest.Agent, 500)}
	for i := range sc.Agents {
		sc.Agents[i].IP = netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)})
	}
	f := marathontest.Framework{Name: "spark", Tasks: make([]marathontest.FrameworkTask, n)}
	for i := range f.Tasks {
		f.Tasks[i] = marathontest.FrameworkTask{ID: fmt.Sprintf("exec-%05d", i), Name: fmt.Sprintf("exec%05d", i), Agent: i % 500,
			Ports: []marathontest.DiscoveryPort{{Number: uint16(31000 + i/500), Scope: "host",
				Labels: map[string]string{"VIP_0": fmt.Sprintf("/spark%05d:80", i/10)}}}}
	}
	sc.Frameworks = []marathontest.Framework{f}
	return sc
}

// subscribedBytes subscribes to the master at base and reads its first
// record, SUBSCRIBED: its length and how long the simulator took to send
// it whole (what the daemon's first snapshot waits for at least).
func subscribedBytes(t *testing.T, base string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1", bytes.NewReader([]byte(`{"type":"SUBSCRIBE"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
		t.Fatal(err)
	}
	return n, time.Since(start)
}

// startBenchDaemon starts bin with args on free addresses, --lb none, and
// returns its DNS and HTTP addresses.
func startBenchDaemon(t *testing.T, bin string, args ...string) (*exec.Cmd, time.Time, string, string) {
	t.Helper()
	dnsAddr, httpAddr := freeAddr(t), freeAddr(t)
	args = append([]string{"run", "--data-dir", t.TempDir(), "--dns-addr", dnsAddr, "--http-addr", httpAddr,
		"--lb", "none", "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, t0, dnsAddr, httpAddr
}

func stopDaemon(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon exited: %v", err)
	}
}

// answered waits until name has an A answer at addr.
func answered(t *testing.T, addr, name string, within time.Duration) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return
		}
	}
	t.Fatalf("no answer for %s within %s", name, within)
}

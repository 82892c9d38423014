package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.etcd.io/bbolt"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/store"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// Crash safety: the real binary is killed with SIGKILL at random moments
// while a simulated Marathon churns, then restarted on the same data dir.
// After every kill the bbolt file is opened directly (bbolt's own
// consistency check, every entry decoded, assignments unique) and through
// store.Open + Load; every checkpoint cycle also restarts with
// Marathon down (DNS must answer exactly what the stored state says, at
// once) and then with Marathon up (DNS and /v1/vips must converge to the
// simulator's truth).
const (
	// crashKillsCI is the number of kills in `make test`;
	// VIPBRIDGE_SOAK_KILLS=N runs N instead (`make soak`).
	crashKillsCI = 200
	// crashCheckpointEvery is how many kills pass between convergence
	// checks (one more runs at the end).
	crashCheckpointEvery = 25
	crashApps            = 40
	crashAgents          = 3
)

// buildBinary builds the vipbridge binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vipbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is one vipbridge process; its stdout and stderr go to logs.
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error // Wait's result, set before done closes
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL to the process (by its PID) and waits for it to exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

var startedRE = regexp.MustCompile(`msg="vipbridge started".* dns=(\S+) http=(\S+)`)

// addrs waits for the "vipbridge started" line and returns the DNS and HTTP
// addresses it names.
func (p *proc) addrs(t *testing.T) (dnsAddr, httpAddr string) {
	t.Helper()
	waitFor(t, "vipbridge started", func() bool {
		select {
		case <-p.done:
			t.Fatalf("vipbridge exited before starting: %v\n%s", p.err, p.logs)
		default:
		}
		m := startedRE.FindStringSubmatch(p.logs.String())
		if m != nil {
			dnsAddr, httpAddr = m[1], m[2]
		}
		return m != nil
	})
	return dnsAddr, httpAddr
}

func queryA(addr, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addr)
	return r, err
}

func getVIPs(httpAddr string) ([]vip, error) {
	resp, err := http.Get("http://" + httpAddr + "/v1/vips")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/vips: %s", resp.Status)
	}
	var vips []vip
	return vips, json.NewDecoder(resp.Body).Decode(&vips)
}

// churn scales, deletes and re-adds the simulator's apps until stopped.
// Holding mu pauses it between operations.
type churn struct {
	sim  *marathontest.Server
	rng  *rand.Rand
	mu   sync.Mutex
	ops  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func crashAppID(i int) string { return fmt.Sprintf("/crash/app%02d", i) }

func crashAppSpec(i, instances int) marathontest.AppSpec {
	return marathontest.AppSpec{
		ID: crashAppID(i), Instances: instances, Network: marathontest.NetworkHost,
		Ports: []marathontest.PortSpec{{Name: "http", Labels: map[string]string{"VIP_0": fmt.Sprintf("/crash%02d:80", i)}}},
	}
}

func crashName(i int) string { return fmt.Sprintf("crash%02d.marathon", i) }

func (c *churn) run(t *testing.T) {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		c.mu.Lock()
		i := c.rng.IntN(crashApps)
		var err error
		switch op := c.rng.IntN(20); {
		case op == 0:
			if err = c.sim.DeleteApp(crashAppID(i)); err == nil {
				err = c.sim.AddApp(crashAppSpec(i, c.rng.IntN(4)))
			}
		default:
			err = c.sim.ScaleApp(crashAppID(i), c.rng.IntN(5))
		}
		c.mu.Unlock()
		if err != nil {
			t.Errorf("churn: %v", err)
			return
		}
		c.ops.Add(1)
		time.Sleep(time.Millisecond)
	}
}

// storeView is what a killed daemon left in its bbolt file.
type storeView struct {
	apps   []discovery.App
	assign []discovery.Assignment
}

// checkStore opens the store file of a killed daemon twice: raw with bbolt
// (page-level check, every entry decodes, keys match, addresses unique) and
// with store.Open + Load, which must see the same entries.
func checkStore(t *testing.T, path string) storeView {
	t.Helper()
	var raw storeView
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open after kill: %v", err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		return rawEntries(tx, &raw)
	})
	db.Close()
	if err != nil {
		t.Fatalf("store after kill: %v", err)
	}

	s, err := store.Open(path, store.Config{Timeout: time.Second})
	if err != nil {
		t.Fatalf("store.Open after kill: %v", err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load after kill: %v", err)
	}
	n := 0
	for _, apps := range st.Sources {
		n += len(apps)
	}
	if n != len(raw.apps) || len(st.Assignments) != len(raw.assign) {
		t.Fatalf("Load saw %d apps and %d assignments, the file holds %d and %d", n, len(st.Assignments), len(raw.apps), len(raw.assign))
	}
	return raw
}

// rawEntries decodes every app and assignment under v1/ (the layout of
// discovery/store/buckets.go) and checks that no address is assigned twice.
func rawEntries(tx *bbolt.Tx, out *storeView) error {
	root := tx.Bucket([]byte("v1"))
	if root == nil {
		return nil // killed before the first commit
	}
	if v := root.Bucket([]byte("meta")).Get([]byte("schema")); string(v) != "1" {
		return fmt.Errorf("schema %q, want 1", v)
	}
	sources := root.Bucket([]byte("sources"))
	err := sources.ForEachBucket(func(name []byte) error {
		apps := sources.Bucket(name).Bucket([]byte("apps"))
		if apps == nil {
			return fmt.Errorf("source %s without apps bucket", name)
		}
		return apps.ForEach(func(k, v []byte) error {
			var a discovery.App
			if err := json.Unmarshal(v, &a); err != nil || a.ID != string(k) {
				return fmt.Errorf("source %s app %s: undecodable or wrong id %q: %v", name, k, a.ID, err)
			}
			out.apps = append(out.apps, a)
			return nil
		})
	})
	if err != nil {
		return err
	}
	byAddr := map[netip.Addr]string{}
	return root.Bucket([]byte("vips")).ForEach(func(k, v []byte) error {
		var a discovery.Assignment
		if err := json.Unmarshal(v, &a); err != nil || !a.Addr.IsValid() {
			return fmt.Errorf("assignment %s undecodable: %v", k, err)
		}
		if want := a.Name + map[bool]string{true: "/4", false: "/6"}[a.Addr.Is4()]; string(k) != want {
			return fmt.Errorf("assignment key %s holds %s (%v)", k, a.Name, a.Addr)
		}
		if other, dup := byAddr[a.Addr]; dup {
			return fmt.Errorf("address %v assigned to %s and %s", a.Addr, other, a.Name)
		}
		byAddr[a.Addr] = a.Name
		out.assign = append(out.assign, a)
		return nil
	})
}

// storedTable is the table a daemon must serve from v right after start.
func storedTable(v storeView) *discovery.Table {
	alloc := discovery.NewAllocator(discovery.AllocConfig{
		V4: netip.MustParsePrefix("11.0.0.0/8"), V6: netip.MustParsePrefix("fd01:c::/64"),
	}, v.assign)
	return discovery.Build(v.apps, alloc, time.Now()).WithAnnounced(func(v *discovery.VIP) bool { return v.Ready() })
}

func crashKills(t *testing.T) int {
	s := os.Getenv("VIPBRIDGE_SOAK_KILLS")
	if s == "" {
		return crashKillsCI
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("VIPBRIDGE_SOAK_KILLS=%q: want a positive number", s)
	}
	return n
}

func TestCrashSafety(t *testing.T) {
	t.Parallel()
	kills := crashKills(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIPBRIDGE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (VIPBRIDGE_CRASH_SEED=%d reproduces the kill moments), %d kills", seed, seed, kills)
	rng := rand.New(rand.NewPCG(seed, 1))

	sc := &marathontest.Scenario{}
	for i := range crashAgents {
		sc.Agents = append(sc.Agents, marathontest.Agent{ID: fmt.Sprintf("crash-S%d", i), IP: netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})})
	}
	for i := range crashApps {
		sc.Apps = append(sc.Apps, crashAppSpec(i, 1+i%3))
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	dbPath := filepath.Join(dataDir, "vipbridge.db")
	args := func(marathonURL string) []string {
		return []string{"run", "--marathon", marathonURL, "--lb", "none", "--data-dir", dataDir,
			"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
	}

	ch := &churn{sim: sim, rng: rand.New(rand.NewPCG(seed, 2)), stop: make(chan struct{}), done: make(chan struct{})}
	go ch.run(t)
	t.Cleanup(func() { close(ch.stop); <-ch.done })

	addrOf := map[string]netip.Addr{} // assignment name → first address seen
	start := time.Now()
	var withApps, checkpoints int
	for k := 1; k <= kills; k++ {
		p := startProc(t, bin, args(sim.URL())...)
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		p.kill()
		v := checkStore(t, dbPath)
		if len(v.apps) > 0 {
			withApps++
		}
		for _, a := range v.assign {
			if prev, ok := addrOf[a.Name]; ok && prev != a.Addr {
				t.Fatalf("kill %d: %s moved from %v to %v", k, a.Name, prev, a.Addr)
			}
			addrOf[a.Name] = a.Addr
		}
		if k%crashCheckpointEvery == 0 || k == kills {
			ch.mu.Lock()
			crashCheckpoint(t, bin, args, sim, dbPath, v)
			ch.mu.Unlock()
			checkpoints++ // two more kills: the daemon from bbolt, the converged one
		}
		if t.Failed() {
			t.Fatalf("stopping after kill %d", k)
		}
	}
	t.Logf("%d kills survived (%d at random moments, %d with apps stored; %d convergence checkpoints), %d churn operations, %v",
		kills+2*checkpoints, kills, withApps, checkpoints, ch.ops.Load(), time.Since(start).Round(time.Millisecond))
}

// crashCheckpoint restarts the daemon with Marathon down, checks that DNS
// serves exactly the stored state at once, kills it, then restarts it with
// Marathon up and waits for DNS and /v1/vips to match the simulator; that
// daemon is killed too, leaving a store the next cycle checks.
func crashCheckpoint(t *testing.T, bin string, args func(string) []string, sim *marathontest.Server, dbPath string, v storeView) {
	t.Helper()
	table := storedTable(v)
	p := startProc(t, bin, args("http://127.0.0.1:1")...)
	dnsAddr, _ := p.addrs(t)
	for i := range crashApps {
		name := crashName(i)
		r, err := queryA(dnsAddr, name+".l4lb.thisdcos.directory")
		if err != nil {
			t.Fatalf("restart from bbolt: query %s: %v", name, err)
		}
		got, _ := aRecord(r)
		if e, err := table.Lookup(name); err == nil {
			if r.Rcode != dns.RcodeSuccess || got != e.Addr4 {
				t.Errorf("restart from bbolt: %s = %v (%s), want %v as stored", name, got, dns.RcodeToString[r.Rcode], e.Addr4)
			}
		} else if r.Rcode != dns.RcodeNameError {
			t.Errorf("restart from bbolt: %s = %v (%s), want NXDOMAIN as stored", name, got, dns.RcodeToString[r.Rcode])
		}
	}
	p.kill()
	checkStore(t, dbPath)

	p = startProc(t, bin, args(sim.URL())...)
	dnsAddr, httpAddr := p.addrs(t)
	var diff string
	deadline := time.Now().Add(eventually)
	for diff = convergenceDiff(sim, dnsAddr, httpAddr); diff != ""; diff = convergenceDiff(sim, dnsAddr, httpAddr) {
		if time.Now().After(deadline) {
			t.Fatalf("no convergence with the simulator: %s\n%s", diff, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
}

// convergenceDiff returns "" when DNS and /v1/vips show exactly the
// simulator's running tasks behind every crash app's VIP, else what differs.
func convergenceDiff(sim *marathontest.Server, dnsAddr, httpAddr string) string {
	vips, err := getVIPs(httpAddr)
	if err != nil {
		return err.Error()
	}
	got := map[string][]string{}
	for _, v := range vips {
		for _, b := range v.Backend {
			got[v.VIP] = append(got[v.VIP], fmt.Sprintf("%s:%d w%d", b.IP, b.Port, b.Weight))
		}
	}
	for i := range crashApps {
		var want []string
		if a, ok := sim.App(crashAppID(i)); ok {
			for _, task := range a.Tasks {
				want = append(want, fmt.Sprintf("%s:%d w1", task.AgentIP, task.HostPorts[0]))
			}
		}
		key := crashName(i) + ".l4lb.thisdcos.directory:80"
		slices.Sort(want)
		slices.Sort(got[key])
		if !slices.Equal(got[key], want) {
			return fmt.Sprintf("%s backends %v, want %v", key, got[key], want)
		}
		r, err := queryA(dnsAddr, crashName(i)+".l4lb.thisdcos.directory")
		if err != nil {
			return err.Error()
		}
		if wantRcode := map[bool]int{true: dns.RcodeSuccess, false: dns.RcodeNameError}[len(want) > 0]; r.Rcode != wantRcode {
			return fmt.Sprintf("%s: %s, want %s", crashName(i), dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode])
		}
	}
	return ""
}

// tinyTmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted
// at cleanup; without root the test skips (under CI=true as root it fails).
func tinyTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs as root under CI: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestDataDirFull runs the daemon with its data dir on a small tmpfs,
// fills it, and changes the cluster: the daemon must keep answering and
// following the changes, log the failed writes at WARN and count them in
// vipbridge_store_write_errors_total, and commit once space is back.
func TestDataDirFull(t *testing.T) {
	dir := tinyTmpfs(t, 4<<20)
	sim := startSim(t, "small")
	d := startDaemon(t, dir, []string{sim.URL()}, nil)
	backends := func() int { v, _ := d.vip(webName + ":80"); return len(v.Backend) }
	waitFor(t, "2 web backends", func() bool { return backends() == 2 })
	waitFor(t, "the first commit", func() bool { return metricAtLeast(d, "vipbridge_store_commits_total", 1) })

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 64<<10); err == nil; {
		_, err = f.Write(buf)
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the data dir: %v", err)
	}
	// 40 apps of ~2 KiB each (labels) no longer fit.
	for i := range 40 {
		spec := crashAppSpec(i, 1)
		spec.Labels = map[string]string{"pad": strings.Repeat("x", 2048)}
		if err := sim.AddApp(spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a counted store write error", func() bool { return metricAtLeast(d, "vipbridge_store_write_errors_total", 1) })
	waitFor(t, "3 web backends with the disk full", func() bool { return backends() == 3 })
	waitFor(t, "crash39 to resolve with the disk full", func() bool {
		r, err := d.query(crashName(39)+".l4lb.thisdcos.directory", dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
	if logs := d.logs.String(); !strings.Contains(logs, `level=WARN msg="store write failed, will retry"`) ||
		!strings.Contains(logs, "no space left on device") {
		t.Errorf("no WARN line naming the full disk in the logs:\n%s", logs)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The store retries with capped backoff (at most 30 s between tries).
	waitFor(t, "store writes recovered", func() bool { return strings.Contains(d.logs.String(), "store writes recovered") })
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// eventually is how long a test waits for the daemon to converge. It bounds
// a wait, it is not a timing assertion: the race detector on a busy CI
// machine is slow.
const eventually = 30 * time.Second

// daemon is one in-process vipbridge run (the same code `vipbridge run`
// executes) on loopback ports.
type daemon struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	addrs  listening
	logs   *syncBuffer
}

func startDaemon(t testing.TB, dataDir string, marathonURLs, mesosURLs []string) *daemon {
	t.Helper()
	return startDaemonWith(t, dataDir, marathonURLs, mesosURLs, nil)
}

// startDaemonWith is startDaemon with tweak (if not nil) applied to the
// parsed configuration: test-only limits, another dataplane, a log level.
func startDaemonWith(t testing.TB, dataDir string, marathonURLs, mesosURLs []string, tweak func(*config)) *daemon {
	t.Helper()
	cfg, err := parseConfig("run", []string{
		"--marathon", strings.Join(marathonURLs, ","), "--mesos", strings.Join(mesosURLs, ","),
		"--lb", "none", "--data-dir", dataDir, "--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "debug",
		"--upstream", "none", // no forwarding off loopback; resolver_test.go sets its own
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	return runTestDaemon(t, cfg)
}

// runTestDaemon runs the daemon of cfg in process until the test ends,
// once it listens.
func runTestDaemon(t testing.TB, cfg config) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{t: t, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	ready := make(chan listening, 1)
	go func() { d.done <- runDaemon(ctx, cfg, d.logs, ready) }()
	select {
	case d.addrs = <-ready:
	case err := <-d.done:
		t.Fatalf("daemon exited before listening: %v\n%s", err, d.logs)
	case <-time.After(eventually):
		t.Fatalf("daemon did not start listening\n%s", d.logs)
	}
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) stop() {
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("daemon exited with %v", err)
		}
		d.done <- nil // later stop calls return at once
	case <-time.After(eventually):
		d.t.Errorf("daemon did not stop")
	}
}

func (d *daemon) query(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, d.addrs.DNS.String())
	return r, err
}

// vip is one element of /v1/vips.
type vip struct {
	VIP      string `json:"vip"`
	Protocol string `json:"protocol"`
	Backend  []struct {
		IP     string `json:"ip"`
		Port   int    `json:"port"`
		Weight int    `json:"weight"`
	} `json:"backend"`
}

func (d *daemon) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + d.addrs.HTTP.String() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *daemon) vip(name string) (vip, bool) {
	var vips []vip
	if err := d.getJSON("/v1/vips", &vips); err != nil {
		d.t.Logf("get /v1/vips: %v", err)
		return vip{}, false
	}
	for _, v := range vips {
		if v.VIP == name {
			return v, true
		}
	}
	return vip{}, false
}

// waitFor polls cond until it holds or eventually passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func aRecord(r *dns.Msg) (netip.Addr, bool) {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr, true
		}
	}
	return netip.Addr{}, false
}

func startSim(t *testing.T, scenario string) *marathontest.Server {
	t.Helper()
	sc, err := marathontest.LoadScenario(scenario)
	if err != nil {
		t.Fatalf("LoadScenario(%q): %v", scenario, err)
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	return sim
}

const (
	webName = "web.marathon.l4lb.thisdcos.directory"
	dbName  = "db.marathon.l4lb.thisdcos.directory"
)

func TestEndToEnd(t *testing.T) {
	sim := startSim(t, "small")
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, []string{sim.URL()}, []string{sim.MesosURL()})

	var webAddr netip.Addr
	waitFor(t, "web to resolve", func() bool {
		r, err := d.query(webName, dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		webAddr, _ = aRecord(r)
		return webAddr.IsValid()
	})
	if !netip.MustParsePrefix("11.0.0.0/8").Contains(webAddr) {
		t.Errorf("web A = %v, want an address in 11.0.0.0/8", webAddr)
	}
	backends := func(name string) int { v, _ := d.vip(name); return len(v.Backend) }
	waitFor(t, "web to have 2 backends", func() bool { return backends(webName+":80") == 2 })

	t.Run("scale up appears", func(t *testing.T) {
		if err := sim.ScaleApp("/web", 3); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "3 web backends", func() bool { return backends(webName+":80") == 3 })
	})
	t.Run("killed task disappears", func(t *testing.T) {
		ids := sim.TaskIDs("/web")
		if err := sim.KillTask(ids[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "2 web backends", func() bool { return backends(webName+":80") == 2 })
	})
	t.Run("health flip changes weight", func(t *testing.T) {
		ids := sim.TaskIDs("/db")
		weight := func() int {
			v, ok := d.vip(dbName + ":5432")
			if !ok || len(v.Backend) != 1 {
				return -1
			}
			return v.Backend[0].Weight
		}
		waitFor(t, "db weight 1", func() bool { return weight() == 1 })
		if err := sim.SetHealth(ids[0], false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "db weight 0", func() bool { return weight() == 0 })
		if err := sim.SetHealth(ids[0], true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "db weight 1 again", func() bool { return weight() == 1 })
	})
	t.Run("deleted app goes NXDOMAIN", func(t *testing.T) {
		if err := sim.DeleteApp("/web"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "web NXDOMAIN", func() bool {
			r, err := d.query(webName, dns.TypeA)
			return err == nil && r.Rcode == dns.RcodeNameError
		})
	})

	r, err := d.query(dbName, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("db A before restart: %v %v", r, err)
	}
	dbAddr, _ := aRecord(r)

	t.Run("restart with Marathon down answers from bbolt", func(t *testing.T) {
		d.stop()
		down := sim.URL()
		sim.Close()
		d2 := startDaemon(t, dataDir, []string{down}, nil)
		r, err := d2.query(dbName, dns.TypeA)
		if err != nil {
			t.Fatalf("query after restart: %v", err)
		}
		if got, _ := aRecord(r); r.Rcode != dns.RcodeSuccess || got != dbAddr {
			t.Fatalf("db A after restart = %v (rcode %s), want %v", got, dns.RcodeToString[r.Rcode], dbAddr)
		}
		var ready struct {
			Ready bool `json:"ready"`
			Stale bool `json:"stale"`
		}
		if err := d2.getJSON("/readyz", &ready); err != nil {
			t.Fatalf("readyz: %v", err)
		}
		if !ready.Ready || !ready.Stale {
			t.Errorf("readyz = %+v, want ready and stale", ready)
		}
		digAnswers(t, d2, dbName, dbAddr.String())
	})
}

// digAnswers checks that dig, the tool people use, gets want for name.
func digAnswers(t *testing.T, d *daemon, name, want string) {
	t.Helper()
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dig not found under CI (.ci/run installs dnsutils): %v", err)
		}
		t.Skip("dig not installed (apt-get install dnsutils): skipping the dig check")
	}
	host, port, _ := net.SplitHostPort(d.addrs.DNS.String())
	out, err := exec.Command(dig, "@"+host, "-p", port, name, "A", "+short", "+tries=1", "+time=2").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("dig %s A +short = %q, want %q", name, got, want)
	}
}

func TestMalformedInputAffectsOnlyItself(t *testing.T) {
	sim := startSim(t, "small")
	err := sim.AddApp(marathontest.AppSpec{
		ID: "/mixed", Instances: 1, Network: marathontest.NetworkHost,
		Ports: []marathontest.PortSpec{
			{Name: "good", Labels: map[string]string{"VIP_0": "/good:8080"}},
			{Name: "bad", Labels: map[string]string{"VIP_0": "/bad:99999"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, nil)
	waitFor(t, "good VIP to resolve", func() bool {
		r, err := d.query("good.marathon.l4lb.thisdcos.directory", dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
	var records struct {
		Errors []struct {
			AppID  string `json:"app_id"`
			Key    string `json:"key"`
			Value  string `json:"value"`
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if err := d.getJSON("/records", &records); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range records.Errors {
		if e.AppID == "/mixed" && e.Value == "/bad:99999" && e.Reason != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("/records errors = %+v, want the /bad:99999 label of /mixed with a reason", records.Errors)
	}

	// A malformed event is counted and skipped; the stream goes on.
	sim.Emit("status_update_event", []byte(`{"eventType":"status_update_event","taskId":`))
	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 web backends after a malformed event", func() bool {
		v, _ := d.vip(webName + ":80")
		return len(v.Backend) == 3
	})
	waitFor(t, "the malformed event to be counted", func() bool {
		return metricAtLeast(d, `vipbridge_marathon_events_total{result="error",type="status_update_event"}`, 1)
	})
}

// metricAtLeast reports whether the /metrics sample line starting with
// series has a value ≥ min.
func metricAtLeast(d *daemon, series string, min float64) bool {
	resp, err := http.Get("http://" + d.addrs.HTTP.String() + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil && v >= min {
				return true
			}
		}
	}
	return false
}

// TestSecondInstanceFailsFast runs the real binary twice on one data dir:
// the second must exit at once with a clear error, not hang.
func TestSecondInstanceFailsFast(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vipbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	args := []string{"run", "--marathon", "http://127.0.0.1:1", "--lb", "none", "--data-dir", dataDir,
		"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
	first := exec.Command(bin, args...)
	firstLog := &syncBuffer{}
	first.Stderr = firstLog
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	waitFor(t, "first instance to start", func() bool { return strings.Contains(firstLog.String(), "vipbridge started") })

	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || ctx.Err() != nil {
		t.Fatalf("second instance: err = %v (ctx %v), want a non-zero exit\n%s", err, ctx.Err(), out)
	}
	if !strings.Contains(string(out), "another") || !strings.Contains(string(out), dataDir) {
		t.Errorf("second instance said %q, want a clear error naming the data dir and another process", out)
	}
}

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
//   - initial full sync: process start → DNS answers the last app's name
//     (the first table holding the whole snapshot);
//   - peak RSS: VmHWM of the process after the sync;
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
	time.Sleep(time.Second) // let the store commit and the heap settle
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
	fmt.Printf("initial full sync over HTTP → last name answered: %s (goal < 3s)\n", syncTook.Round(time.Millisecond))
	fmt.Printf("peak RSS (VmHWM) %s, RSS after sync %s (goal < 300 MB)\n", hwm, rss)
	fmt.Printf("restart → first correct DNS answer from bbolt, upstreams down: %s (goal < 1s); store %.1f MB\n",
		restartTook.Round(time.Millisecond), float64(fi.Size())/1e6)
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

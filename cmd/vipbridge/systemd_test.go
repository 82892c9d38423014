package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// The daemon as systemd runs it: the real binary, started as systemd
// would (NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS with the sockets passed
// as descriptors 3 and on), against the simulator.

// sdApps is how many apps with one VIP each the simulator runs.
const sdApps = 3

func sdSimulator(t *testing.T) *marathontest.Server {
	t.Helper()
	sc := &marathontest.Scenario{Agents: []marathontest.Agent{{ID: "sd-S0", IP: netip.MustParseAddr("127.0.0.2")}}}
	for i := range sdApps {
		sc.Apps = append(sc.Apps, crashAppSpec(i, 1))
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	return sim
}

// sdEnv is the test's environment without systemd's variables, plus env.
func sdEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES":
			continue
		}
		out = append(out, kv)
	}
	return append(out, env...)
}

// startSystemdProc starts cmd, whose output goes to the returned proc's
// logs, and kills it when the test ends.
func startSystemdProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// stop sends SIGTERM, as systemctl stop does, and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(eventually): // bounds a failing test only
		t.Fatalf("vipbridge did not exit after SIGTERM\n%s", p.logs)
	}
	if p.err != nil {
		t.Fatalf("vipbridge exited with %v after SIGTERM\n%s", p.err, p.logs)
	}
}

// notifySocket is the datagram socket systemd listens on for sd_notify
// messages; each datagram read is sent on msgs.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := t.TempDir() + "/notify"
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// next returns the next message that contains want, failing if the
// process p exits first (nil: p exited already, having sent it) or nothing
// comes; the deadline only bounds a failing test.
func (n *notifySocket) next(t *testing.T, p *proc, want string) string {
	t.Helper()
	deadline := time.After(eventually)
	var exited <-chan struct{}
	if p != nil {
		exited = p.done
	}
	for {
		select {
		case m := <-n.msgs:
			if strings.Contains(m, want) {
				return m
			}
		case <-exited:
			t.Fatalf("vipbridge exited (%v) before sending %q\n%s", p.err, want, p.logs)
		case <-deadline:
			t.Fatalf("no %q from vipbridge", want)
		}
	}
}

// statusOf is the STATUS= value of a notify message.
func statusOf(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if s, ok := strings.CutPrefix(line, "STATUS="); ok {
			return s
		}
	}
	return ""
}

// TestSystemdNotify runs the binary as a Type=notify service with a
// watchdog: READY=1 comes once the first table is served (a VIP answers
// at that moment), with a STATUS= line of VIPs and freshness; WATCHDOG=1
// keeps coming; SIGTERM sends STOPPING=1. Restarted with Marathon down, it
// is ready at once from the stored state, and says the source is stale.
func TestSystemdNotify(t *testing.T) {
	sim := sdSimulator(t)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	notify := listenNotify(t)
	start := func(marathonURL string) *proc {
		cmd := exec.Command(bin, "run", "--marathon", marathonURL, "--lb", "none", "--data-dir", dataDir,
			"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
		cmd.Env = sdEnv("NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=200000")
		return startSystemdProc(t, cmd)
	}

	p := start(sim.URL())
	ready := notify.next(t, p, "READY=1")
	dnsAddr, _ := p.addrs(t) // logged before READY=1
	r, err := queryA(dnsAddr, crashName(0)+".l4lb.thisdcos.directory")
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("at READY=1 %s = %v, %v; want its VIP: READY=1 comes after the first table", crashName(0), r, err)
	}
	if st, want := statusOf(ready), fmt.Sprintf("serving %d VIPs", sdApps); !strings.HasPrefix(st, want) || !strings.Contains(st, "marathon synced") {
		t.Errorf("READY=1 came with STATUS=%q, want %q… and marathon synced", st, want)
	}
	for range 3 { // every 100 ms (half of WATCHDOG_USEC) from the loop
		notify.next(t, p, "WATCHDOG=1")
	}
	p.stop(t)
	notify.next(t, nil, "STOPPING=1")

	p = start("http://127.0.0.1:1") // Marathon down: the store serves
	ready = notify.next(t, p, "READY=1")
	if st := statusOf(ready); !strings.HasPrefix(st, fmt.Sprintf("serving %d VIPs", sdApps)) || !strings.Contains(st, "marathon stale") {
		t.Errorf("READY=1 from the store came with STATUS=%q, want the stored VIPs and marathon stale", st)
	}
	p.stop(t)
}

// TestSystemdStatusLine checks the STATUS= line before any state, when
// every source is fresh, and when one fails.
func TestSystemdStatusLine(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	sd := &systemd{now: func() time.Time { return now }}
	var vips discovery.VIPList
	tbl := &discovery.Table{VIPs: vips}
	tests := []struct {
		name string
		st   discovery.Status
		want string
	}{
		{"nothing yet", discovery.Status{StaleSources: []string{"marathon", "mesos"}},
			"waiting for the first sync (nothing stored); marathon stale; mesos stale"},
		{"synced", discovery.Status{Loaded: true, Synced: true, Generation: 7,
			LastSync: map[string]time.Time{"marathon": now.Add(-3 * time.Second), "mesos": now.Add(-1500 * time.Millisecond)}},
			"serving 0 VIPs (generation 7); marathon synced 3s ago; mesos synced 2s ago"},
		{"failing", discovery.Status{Loaded: true, Generation: 9, StaleSources: []string{"mesos"},
			LastSync:  map[string]time.Time{"marathon": now, "mesos": now.Add(-2 * time.Minute)},
			LastError: map[string]string{"mesos": "fetch state: EOF\nmore"}},
			"serving 0 VIPs (generation 9); marathon synced 0s ago; mesos stale, synced 2m0s ago: fetch state: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sd.statusLine(tbl, tt.st); got != tt.want {
				t.Errorf("statusLine(%+v) =\n%q, want\n%q", tt.st, got, tt.want)
			}
		})
	}
}

// heldSockets are the sockets systemd holds for vipbridge.socket: DNS over
// UDP and TCP on one loopback port, the HTTP API on another.
type heldSockets struct {
	udp               *net.UDPConn
	tcp, http         *net.TCPListener
	dnsAddr, httpAddr string
}

func holdSockets(t *testing.T) *heldSockets {
	t.Helper()
	h := &heldSockets{}
	for attempt := 0; h.tcp == nil; attempt++ {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udp.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			udp.Close()
			if attempt == 16 {
				t.Fatal(err)
			}
			continue
		}
		h.udp, h.tcp = udp, tcp
	}
	var err error
	if h.http, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.udp.Close(); h.tcp.Close(); h.http.Close() })
	h.dnsAddr, h.httpAddr = h.udp.LocalAddr().String(), h.http.Addr().String()
	return h
}

// files are the descriptors to pass, in order, as systemd passes them.
func (h *heldSockets) files(t *testing.T) []*os.File {
	t.Helper()
	var out []*os.File
	for _, c := range []interface{ File() (*os.File, error) }{h.udp, h.tcp, h.http} {
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = append(out, f)
	}
	return out
}

// activatedCmd runs bin with files as descriptors 3 and on and LISTEN_FDS
// set, as systemd does: LISTEN_PID must be the daemon's own PID, which only
// the child knows, so a shell sets it and execs the daemon.
func activatedCmd(bin string, files []*os.File, args ...string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = sdEnv(fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES=vipbridge.socket:vipbridge.socket:vipbridge.socket")
	cmd.ExtraFiles = files
	return cmd
}

// TestSocketActivation passes the DNS and HTTP sockets to the binary as
// systemd does: it serves them (DNS over UDP and TCP, the API) instead of
// binding its flags' addresses, and a query sent while it restarts waits in
// the socket held for it and is answered by the next process. A socket
// that matches no flag stops the start with an error that names it.
func TestSocketActivation(t *testing.T) {
	sim := sdSimulator(t)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	h := holdSockets(t)
	args := []string{"run", "--marathon", sim.URL(), "--lb", "none", "--data-dir", dataDir,
		"--dns-addr", h.dnsAddr, "--http-addr", h.httpAddr}
	name := crashName(0) + ".l4lb.thisdcos.directory"

	p := startSystemdProc(t, activatedCmd(bin, h.files(t), args...))
	dnsAddr, httpAddr := p.addrs(t)
	if dnsAddr != h.dnsAddr || httpAddr != h.httpAddr {
		t.Fatalf("started on dns %s, http %s; want the passed sockets' %s, %s", dnsAddr, httpAddr, h.dnsAddr, h.httpAddr)
	}
	if !strings.Contains(p.logs.String(), "serving dns on inherited sockets") {
		t.Errorf("no \"serving dns on inherited sockets\" in the log:\n%s", p.logs)
	}
	for _, network := range []string{"udp", "tcp"} {
		waitFor(t, name+" over "+network, func() bool {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, h.dnsAddr)
			return err == nil && len(r.Answer) == 1
		})
	}
	resp, err := http.Get("http://" + h.httpAddr + "/v1/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"vipbridge"`) {
		t.Errorf("GET /v1/version on the passed socket = %s %s", resp.Status, body)
	}

	// The restart: between the two processes only the held socket exists.
	p.stop(t)
	client, err := net.Dial("udp", h.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), dns.TypeA)
	wire, _ := req.Pack()
	if _, err := client.Write(wire); err != nil {
		t.Fatal(err)
	}
	startSystemdProc(t, activatedCmd(bin, h.files(t), args...))
	_ = client.SetReadDeadline(time.Now().Add(eventually)) // bounds a failing test only
	buf := make([]byte, 4096)
	n, err := client.Read(buf)
	if err != nil {
		t.Fatalf("the query sent during the restart got no answer: %v", err)
	}
	got := new(dns.Msg)
	if err := got.Unpack(buf[:n]); err != nil || got.Id != req.Id || len(got.Answer) != 1 {
		t.Errorf("the query sent during the restart got %v (%v), want its A record", got, err)
	}

	// A stray socket: the unit and the flags disagree.
	stray, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	f, err := stray.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := activatedCmd(bin, []*os.File{f}, "run", "--marathon", sim.URL(), "--lb", "none", "--data-dir", t.TempDir(),
		"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), stray.Addr().String()) || !strings.Contains(string(out), "matches neither") {
		t.Errorf("a stray socket: exit %v, output %q; want a failure naming %s", err, out, stray.Addr())
	}
}

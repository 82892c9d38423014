package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// The chaos test runs the whole daemon against the simulator while faults
// are injected (marathon/marathontest/faults.go), and after each fault
// compares /v1/vips and DNS with the simulator's ground truth: 0 stale and 0
// missing records, no NXDOMAIN for a live name meanwhile, and no backend
// lost only because a Marathon failover forgot health results.
//
// CHAOS_SEED sets the seed (default 1, printed in the log; `make chaos`
// draws a new one each run); CHAOS_ROUNDS sets the
// number of random rounds after the one pass over every fault (default 3,
// a few seconds; `CHAOS_ROUNDS=200` for a long run).

const (
	chaosZone        = ".l4lb.thisdcos.directory"
	chaosIdle        = time.Second     // the daemon's stream idle watchdog
	chaosMaxEvent    = 64 << 10        // the daemon's largest event
	chaosHealthGrace = 2 * time.Second // the daemon's health grace
	chaosQueue       = 128             // the simulator's outstanding events per stream
	chaosHeartbeat   = 100 * time.Millisecond
)

// chaosCluster is the simulated cluster: three apps that always keep at
// least two healthy tasks (their names are watched for NXDOMAIN), two that
// churn down to zero, and another framework's tasks seen only by Mesos.
func chaosCluster() *marathontest.Scenario {
	healthy := true
	return &marathontest.Scenario{
		Agents: []marathontest.Agent{{IP: netip.MustParseAddr("127.0.0.2")}, {IP: netip.MustParseAddr("127.0.0.3")}, {IP: netip.MustParseAddr("127.0.0.4")}},
		Apps: []marathontest.AppSpec{
			{ID: "/svc/web", Instances: 3, Network: marathontest.NetworkHost, HealthChecks: true,
				Ports: []marathontest.PortSpec{{Name: "http", Labels: map[string]string{"VIP_0": "/svc/web:80"}}}},
			{ID: "/api", Instances: 2, Network: marathontest.NetworkBridge, HealthChecks: true,
				Ports: []marathontest.PortSpec{{Name: "api", ContainerPort: 8080, Labels: map[string]string{"VIP_0": "/api:8080", "VIP_1": "127.100.0.1:8080"}}}},
			{ID: "/cache", Instances: 2, Network: marathontest.NetworkContainer,
				Ports: []marathontest.PortSpec{{Name: "redis", Protocol: "tcp,udp", ContainerPort: 6379, Labels: map[string]string{"VIP_0": "/cache:6379"}}}},
			{ID: "/batch", Instances: 1, Network: marathontest.NetworkHost,
				Ports: []marathontest.PortSpec{{Name: "m", Labels: map[string]string{"VIP_0": "/batch:9000"}}}},
			{ID: "/jobs/worker", Instances: 1, Network: marathontest.NetworkContainer, HealthChecks: true,
				Ports: []marathontest.PortSpec{{Name: "w", ContainerPort: 7000, Labels: map[string]string{"VIP_0": "/jobs/worker:7000"}}}},
		},
		Frameworks: []marathontest.Framework{{Name: "hello-world", Tasks: []marathontest.FrameworkTask{
			{ID: "hello-0", Agent: 0, Healthy: &healthy, IPs: []netip.Addr{netip.MustParseAddr("127.1.200.1")},
				Ports: []marathontest.DiscoveryPort{{Number: 8000, Name: "api", Protocol: "tcp", Scope: "container", NetworkName: "dcos", Labels: map[string]string{"VIP_0": "/api.hello-world:80"}}}},
			{ID: "hello-1", Agent: 1, Healthy: &healthy, IPs: []netip.Addr{netip.MustParseAddr("127.1.200.2")},
				Ports: []marathontest.DiscoveryPort{{Number: 8000, Name: "api", Protocol: "tcp", Scope: "container", NetworkName: "dcos", Labels: map[string]string{"VIP_0": "/api.hello-world:80"}}}},
		}}},
	}
}

// stableApps never drop below two running, healthy tasks.
var stableApps = map[string]bool{"/svc/web": true, "/api": true, "/cache": true}

// chaosBackend is one expected or served backend.
type chaosBackend struct {
	Addr   string // ip:port
	Weight int
	Task   string // expected only
}

// expectedVIPs computes the VIP table from the ground truth, independently
// of discovery.Build: key "<vip> <protocol>" as /v1/vips shows them.
func expectedVIPs(apps []marathontest.App, framework string, others []marathontest.Framework, agents []marathontest.Agent) map[string][]chaosBackend {
	out := map[string][]chaosBackend{}
	add := func(label string, protocols string, b chaosBackend) {
		i := strings.LastIndex(label, ":")
		addr, port := label[:i], label[i+1:]
		vip := addr + ":" + port
		if _, err := netip.ParseAddr(addr); err != nil {
			vip = vipName(addr, framework) + chaosZone + ":" + port
		}
		for _, proto := range strings.Split(protocols, ",") {
			k := vip + " " + proto
			if j := slices.IndexFunc(out[k], func(x chaosBackend) bool { return x.Addr == b.Addr }); j >= 0 {
				out[k][j].Weight = max(out[k][j].Weight, b.Weight)
				continue
			}
			out[k] = append(out[k], b)
		}
	}
	for _, a := range apps {
		hostIdx := 0
		for _, p := range a.Ports {
			hasHost := a.Network != marathontest.NetworkContainer || p.HostPort != nil
			for key, label := range p.Labels {
				if !strings.HasPrefix(strings.ToUpper(key), "VIP") {
					continue
				}
				for _, t := range a.Tasks {
					if t.State != "TASK_RUNNING" {
						continue
					}
					w := 1
					if a.HealthChecks && (t.Healthy == nil || !*t.Healthy) {
						w = 0
					}
					if hasHost {
						add(label, p.Protocol, chaosBackend{Addr: netip.AddrPortFrom(t.AgentIP, t.HostPorts[hostIdx]).String(), Weight: w, Task: t.ID})
						continue
					}
					for _, ip := range t.IPs {
						add(label, p.Protocol, chaosBackend{Addr: netip.AddrPortFrom(ip, p.ContainerPort).String(), Weight: w, Task: t.ID})
					}
				}
			}
			if hasHost {
				hostIdx++
			}
		}
	}
	for _, f := range others {
		for _, t := range f.Tasks {
			w := 1
			if t.Healthy != nil && !*t.Healthy {
				w = 0
			}
			for _, p := range t.Ports {
				ips := t.IPs // container scope: the task's IPs
				if p.Scope != "container" || len(ips) == 0 {
					ips = []netip.Addr{agents[t.Agent].IP}
				}
				for _, label := range p.Labels { // named VIPs only here
					for _, ip := range ips {
						b := chaosBackend{Addr: netip.AddrPortFrom(ip, p.Number).String(), Weight: w, Task: t.ID}
						addOther(out, label, f.Name, p.Protocol, b)
					}
				}
			}
		}
	}
	for k := range out {
		slices.SortFunc(out[k], func(x, y chaosBackend) int { return strings.Compare(x.Addr, y.Addr) })
	}
	return out
}

func addOther(out map[string][]chaosBackend, label, framework, protocol string, b chaosBackend) {
	i := strings.LastIndex(label, ":")
	k := vipName(label[:i], framework) + chaosZone + ":" + label[i+1:] + " " + cmpOr(protocol, "tcp")
	out[k] = append(out[k], b)
}

// vipName is a named VIP's DNS name without the zone, as Build makes it.
func vipName(label, framework string) string {
	return discovery.NormaliseName(label) + "." + discovery.NormaliseName(framework)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// chaosEnv is one simulator and one daemon under test.
type chaosEnv struct {
	t     *testing.T
	rng   *rand.Rand
	sc    *marathontest.Scenario
	sim   *marathontest.Server
	d     *daemon
	names map[string]bool // every named VIP name the scenario declares
}

func startChaos(t *testing.T, seed uint64) *chaosEnv {
	sc := chaosCluster()
	sim := marathontest.NewServer(sc, marathontest.WithHeartbeat(chaosHeartbeat), marathontest.WithMaxOutstanding(chaosQueue),
		marathontest.WithStandbyMaster(), marathontest.WithFailoverHealthGap(time.Hour), marathontest.WithMesosHeartbeat(chaosHeartbeat))
	t.Cleanup(sim.Close)
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL(), sim.StandbyMesosURL()}, func(c *config) {
		c.StreamIdleTimeout, c.MaxEventSize, c.HealthGrace = chaosIdle, chaosMaxEvent, chaosHealthGrace
		c.LogLevel = slog.LevelInfo
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (last 8 KiB):\n%s", tail(d.logs.String(), 8<<10))
		}
	})
	e := &chaosEnv{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), sc: sc, sim: sim, d: d, names: map[string]bool{}}
	for k := range e.expected() {
		if !strings.HasPrefix(k, "127.") {
			e.names[strings.Split(k, ":")[0]] = true
		}
	}
	e.converge("start")
	return e
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func (e *chaosEnv) expected() map[string][]chaosBackend {
	return expectedVIPs(e.sim.Apps(), e.sim.Framework(), e.sc.Frameworks, e.sc.Agents)
}

// served reads /v1/vips as "<vip> <protocol>" → sorted backends.
func (e *chaosEnv) served() (map[string][]chaosBackend, error) {
	var vips []vip
	if err := e.d.getJSON("/v1/vips", &vips); err != nil {
		return nil, err
	}
	out := map[string][]chaosBackend{}
	for _, v := range vips {
		k := v.VIP + " " + v.Protocol
		for _, b := range v.Backend {
			addr := netip.AddrPortFrom(netip.MustParseAddr(b.IP), uint16(b.Port))
			out[k] = append(out[k], chaosBackend{Addr: addr.String(), Weight: b.Weight})
		}
		slices.SortFunc(out[k], func(x, y chaosBackend) int { return strings.Compare(x.Addr, y.Addr) })
	}
	return out, nil
}

// diff compares the daemon with the ground truth: stale counts served
// records the truth does not have (or with another weight), missing the
// records the truth has and the daemon does not serve; DNS answers for
// every name are checked too, and the sources must not be stale.
func (e *chaosEnv) diff() (stale, missing int, why []string) {
	want := e.expected()
	got, err := e.served()
	if err != nil {
		return 0, 1, []string{err.Error()}
	}
	for k, wb := range want {
		gb := got[k]
		for _, b := range wb {
			j := slices.IndexFunc(gb, func(x chaosBackend) bool { return x.Addr == b.Addr })
			switch {
			case j < 0:
				missing++
				why = append(why, fmt.Sprintf("missing %s %s/%d", k, b.Addr, b.Weight))
			case gb[j].Weight != b.Weight:
				stale++
				why = append(why, fmt.Sprintf("stale weight %s %s: %d, want %d", k, b.Addr, gb[j].Weight, b.Weight))
			}
		}
	}
	for k, gb := range got {
		for _, b := range gb {
			if !slices.ContainsFunc(want[k], func(x chaosBackend) bool { return x.Addr == b.Addr }) {
				stale++
				why = append(why, fmt.Sprintf("stale %s %s/%d", k, b.Addr, b.Weight))
			}
		}
	}
	live := map[string]bool{}
	for k, wb := range want {
		if slices.ContainsFunc(wb, func(b chaosBackend) bool { return b.Weight > 0 }) {
			live[strings.Split(k, ":")[0]] = true
		}
	}
	for name := range e.names {
		r, err := e.d.query(name, dns.TypeA)
		switch {
		case err != nil:
			missing++
			why = append(why, fmt.Sprintf("dns %s: %v", name, err))
		case live[name] && (r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0):
			missing++
			why = append(why, fmt.Sprintf("dns %s: %s with %d answers, want an A", name, dns.RcodeToString[r.Rcode], len(r.Answer)))
		case !hasBackends(want, name) && r.Rcode != dns.RcodeNameError:
			stale++
			why = append(why, fmt.Sprintf("dns %s: %s, want NXDOMAIN (no backends)", name, dns.RcodeToString[r.Rcode]))
		}
	}
	if e.metric(mConnected) != 1 {
		missing++
		why = append(why, "event stream not connected")
	}
	var ready struct {
		Stale   bool     `json:"stale"`
		Sources []string `json:"stale_sources"`
	}
	if err := e.d.getJSON("/readyz", &ready); err != nil || ready.Stale {
		missing++
		why = append(why, fmt.Sprintf("readyz stale %v (%v)", ready.Stale, err))
	}
	return stale, missing, why
}

func hasBackends(want map[string][]chaosBackend, name string) bool {
	for k, b := range want {
		if strings.Split(k, ":")[0] == name && len(b) > 0 {
			return true
		}
	}
	return false
}

// converge waits until the daemon matches the truth. The deadline only
// bounds a failing wait.
func (e *chaosEnv) converge(what string) {
	e.t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		stale, missing, why := e.diff()
		if stale == 0 && missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not converged after %s: %d stale, %d missing:\n  %s", what, eventually, stale, missing, strings.Join(why, "\n  "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchDNS queries every name continuously until stop, counting NXDOMAIN;
// passes counts the rounds over every name done so far.
func (e *chaosEnv) watchDNS(names []string) (passes func() int, stop func() (queries, nxdomain int, nx []string)) {
	var q, nxc, pass atomic.Int64
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, n := range names {
				select {
				case <-done:
					return
				default:
				}
				r, err := e.d.query(n, dns.TypeA)
				if err != nil {
					continue
				}
				q.Add(1)
				if r.Rcode == dns.RcodeNameError {
					nxc.Add(1)
					mu.Lock()
					bad = append(bad, n)
					mu.Unlock()
				}
			}
			pass.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})
	return func() int { return int(pass.Load()) }, func() (int, int, []string) {
		close(done)
		wg.Wait()
		return int(q.Load()), int(nxc.Load()), bad
	}
}

// watchBackends polls /v1/vips until stop; a backend in keep (weight 1 when
// the watch began) that is missing or weighs 0 while its task still runs in
// the truth is lost. polled counts the polls done so far.
func (e *chaosEnv) watchBackends(keep map[string]chaosBackend) (polled func() int, stop func() (polls, lost int, what []string)) {
	var polls atomic.Int64
	var lost int
	var what []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := e.served()
			if err != nil {
				continue
			}
			for k, b := range keep {
				vipKey := strings.SplitN(k, "|", 2)[0]
				if slices.Contains(got[vipKey], chaosBackend{Addr: b.Addr, Weight: 1}) {
					continue
				}
				if e.taskRunning(b.Task) {
					lost++
					what = append(what, fmt.Sprintf("%s %s (task %s)", vipKey, b.Addr, b.Task))
				}
			}
			polls.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	return func() int { return int(polls.Load()) }, func() (int, int, []string) {
		close(done)
		wg.Wait()
		return int(polls.Load()), lost, what
	}
}

func (e *chaosEnv) taskRunning(id string) bool {
	for _, a := range e.sim.Apps() {
		for _, t := range a.Tasks {
			if t.ID == id {
				return true
			}
		}
	}
	return false
}

// metric sums the /metrics samples whose series starts with prefix.
func (e *chaosEnv) metric(prefix string) float64 {
	resp, err := http.Get("http://" + e.d.addrs.HTTP.String() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// waitMesosStream waits until the daemon's Mesos operator stream is open,
// for faults that act on open streams.
func (e *chaosEnv) waitMesosStream() {
	e.t.Helper()
	waitFor(e.t, "a Mesos operator stream", func() bool { return e.sim.MesosSubscribers() > 0 })
}

// waitMetric waits until the metric exceeds before.
func (e *chaosEnv) waitMetric(what, prefix string, before float64) {
	e.t.Helper()
	waitFor(e.t, what, func() bool { return e.metric(prefix) > before })
}

const (
	mResyncOK   = `vipbridge_resyncs_total{result="ok",source="marathon"}`
	mReconnects = `vipbridge_marathon_reconnects_total`
	// mMesosReconnects counts ended or failed Mesos operator streams.
	mMesosReconnects = `vipbridge_mesos_reconnects_total`
	mIdle            = `vipbridge_marathon_reconnects_total{reason="idle"}`
	mOversized       = `vipbridge_marathon_oversized_events_total`
	mEvents          = `vipbridge_marathon_events_total`
	mConnected       = `vipbridge_marathon_stream_connected`
	// mBuilt counts events at the end of the build that reflects them
	// (discovery's reconcile, observeLatency), published or unchanged.
	mBuilt = `vipbridge_event_to_dns_seconds_count`
)

// settle waits until the daemon has built a table (published, or found
// unchanged) from everything it had applied when settle was called. The
// reconciler applies updates, resync results and builds in one goroutine,
// so a build that ends after now started after whatever it was applying;
// mBuilt growing shows such a build. An event restating a running task
// (a change of nothing) is sent, and sent again while the stream may be
// reconnecting, so that there is one to build.
func (e *chaosEnv) settle(what string) {
	e.t.Helper()
	before, tries := e.metric(mBuilt), 0
	waitFor(e.t, what, func() bool {
		if e.metric(mBuilt) > before {
			return true
		}
		if tries%10 == 0 {
			e.sim.EmitStatus(1)
		}
		tries++
		return false
	})
}

// healthAged waits until the daemon's last Marathon snapshot, which
// carried the health results it knows, is older than the health grace.
func (e *chaosEnv) healthAged() {
	e.t.Helper()
	waitFor(e.t, "the last health report to be older than the grace", func() bool {
		var ready struct {
			LastSync map[string]time.Time `json:"last_sync"`
		}
		if err := e.d.getJSON("/readyz", &ready); err != nil {
			return false
		}
		at, ok := ready.LastSync["marathon"]
		return ok && time.Since(at) > chaosHealthGrace+500*time.Millisecond
	})
}

// act makes one random change to the cluster: scale, kill or a health
// flip, keeping the stable apps at two or more healthy tasks.
func (e *chaosEnv) act() string {
	for range 8 {
		if did, ok := e.try(); ok {
			return did
		}
	}
	return "nothing"
}

// try makes one random change, or reports false when the pick was a no-op.
func (e *chaosEnv) try() (string, bool) {
	apps := e.sim.Apps()
	a := apps[e.rng.IntN(len(apps))]
	switch e.rng.IntN(3) {
	case 0:
		lo := 0
		if stableApps[a.ID] {
			lo = 2
		}
		n := lo + e.rng.IntN(3)
		if err := e.sim.ScaleApp(a.ID, n); err != nil {
			e.t.Fatal(err)
		}
		return fmt.Sprintf("scale %s %d→%d", a.ID, len(a.Tasks), n), n != len(a.Tasks)
	case 1:
		if len(a.Tasks) == 0 || stableApps[a.ID] && len(a.Tasks) <= 2 {
			return "", false
		}
		t := a.Tasks[e.rng.IntN(len(a.Tasks))]
		if err := e.sim.KillTask(t.ID); err != nil {
			e.t.Fatal(err)
		}
		return "kill " + t.ID, true
	default:
		if !a.HealthChecks || stableApps[a.ID] || len(a.Tasks) == 0 {
			return "", false
		}
		t := a.Tasks[e.rng.IntN(len(a.Tasks))]
		healthy := t.Healthy == nil || !*t.Healthy
		if err := e.sim.SetHealth(t.ID, healthy); err != nil {
			e.t.Fatal(err)
		}
		return fmt.Sprintf("health %s %v", t.ID, healthy), true
	}
}

// chaosFault is one fault: inject starts it, clear ends it once it had
// its effect (waiting for evidence), check asserts what it must have done.
type chaosFault struct {
	name   string
	inject func(e *chaosEnv, st *faultState)
	clear  func(e *chaosEnv, st *faultState)
}

// faultState carries what a fault's inject measured to its clear.
type faultState struct {
	before  float64
	hits    int
	drops   int
	backend func() (polls, lost int, what []string)
	polled  func() int
	polls   int
	lost    int
	apps    []marathontest.App
}

// resendRunning emits, for every task of apps that no longer runs, an old
// status_update_event saying TASK_RUNNING, and returns how many.
func (e *chaosEnv) resendRunning(apps []marathontest.App) int {
	n := 0
	old := time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
	for _, a := range apps {
		for _, t := range a.Tasks {
			if e.taskRunning(t.ID) {
				continue
			}
			ports, ips := []string{}, []string{}
			for _, p := range t.HostPorts {
				ports = append(ports, strconv.Itoa(int(p)))
			}
			for _, ip := range t.IPs {
				ips = append(ips, fmt.Sprintf(`{"ipAddress":%q,"protocol":"IPv4"}`, ip))
			}
			e.sim.Emit("status_update_event", []byte(fmt.Sprintf(`{"eventType":"status_update_event","timestamp":%q,"slaveId":%q,"taskId":%q,"taskStatus":"TASK_RUNNING","appId":%q,"host":%q,"ports":[%s],"ipAddresses":[%s],"version":%q,"message":""}`,
				old, t.AgentID, t.ID, a.ID, t.Host, strings.Join(ports, ","), strings.Join(ips, ","), old)))
			n++
		}
	}
	return n
}

var chaosFaults = []chaosFault{
	{
		name: "marathon leader change",
		inject: func(e *chaosEnv, st *faultState) {
			keep := map[string]chaosBackend{}
			for k, bs := range e.expected() {
				for _, b := range bs {
					if b.Weight == 1 && (strings.HasPrefix(k, "svcweb.") || strings.HasPrefix(k, "api.marathon.") || strings.HasPrefix(k, "127.100.")) {
						keep[k+"|"+b.Addr] = b
					}
				}
			}
			st.before = e.metric(mResyncOK)
			st.polled, st.backend = e.watchBackends(keep)
			if _, err := e.sim.ChangeLeader(); err != nil {
				e.t.Fatal(err)
			}
		},
		clear: func(e *chaosEnv, st *faultState) {
			// The resync of the reconnect, without health results, is
			// in: the window in which a backend could drain. It lasts
			// until the daemon has built from that resync and /v1/vips
			// was read twice more (once wholly after the build).
			e.waitMetric("the resync after the leader change", mResyncOK, st.before)
			e.settle("a build after the resync")
			p := st.polled()
			waitFor(e.t, "/v1/vips read after the build", func() bool { return st.polled() >= p+2 })
			e.sim.EndHealthGap()
			st.polls, st.lost, _ = st.backend()
		},
	},
	{
		name:   "stream cut mid-event",
		inject: func(e *chaosEnv, st *faultState) { st.before = e.metric(mReconnects); e.sim.CutStreams() },
		clear: func(e *chaosEnv, st *faultState) {
			if e.sim.ScaleApp("/batch", len(e.sim.TaskIDs("/batch"))) != nil { // an event to cut, at least
				e.t.Fatal("scale /batch")
			}
			e.waitMetric("a reconnect after the cut", mReconnects, st.before)
		},
	},
	{
		name:   "half-open stream",
		inject: func(e *chaosEnv, st *faultState) { st.before = e.metric(mIdle); e.sim.StallStreams() },
		clear:  func(e *chaosEnv, st *faultState) { e.waitMetric("the idle watchdog", mIdle, st.before) },
	},
	{
		name: "resync 5xx and timeouts",
		inject: func(e *chaosEnv, st *faultState) {
			st.hits, st.before = e.sim.FaultHits(), e.metric(mReconnects)
			e.sim.InjectFault("/v2/info", marathontest.Fault{Delay: 200 * time.Millisecond, Status: http.StatusGatewayTimeout})
			e.sim.InjectFault("/v2/apps", marathontest.Fault{Status: http.StatusServiceUnavailable})
			e.sim.InjectFault("/master/state", marathontest.Fault{Hang: true})
			e.sim.DropConnections() // a reconnect resyncs every source
		},
		clear: func(e *chaosEnv, st *faultState) {
			e.waitMetric("a reconnect", mReconnects, st.before)
			waitFor(e.t, "resyncs to hit the faults", func() bool { return e.sim.FaultHits() >= st.hits+3 })
			e.sim.ClearFaults()
		},
	},
	{
		name: "mesos 307 and 503",
		inject: func(e *chaosEnv, st *faultState) {
			st.hits, st.before = e.sim.FaultHits(), e.metric(mReconnects)
			// The operator stream ends with the old leader's leadership;
			// its reconnects meet a master still electing.
			e.sim.InjectFault("/api/v1", marathontest.Fault{Status: http.StatusServiceUnavailable})
			e.sim.InjectFault("/master/state", marathontest.Fault{Status: http.StatusServiceUnavailable})
			if _, err := e.sim.ChangeMesosLeader(); err != nil {
				e.t.Fatal(err)
			}
			e.sim.DropConnections()
		},
		clear: func(e *chaosEnv, st *faultState) {
			e.waitMetric("a reconnect", mReconnects, st.before)
			waitFor(e.t, "a Mesos resync to hit the 503", func() bool { return e.sim.FaultHits() > st.hits })
			e.sim.ClearFaults()
		},
	},
	{
		name: "mesos stream cut mid-record",
		inject: func(e *chaosEnv, st *faultState) {
			e.waitMesosStream()
			st.before = e.metric(mMesosReconnects)
			e.sim.CutMesosStreams() // the next heartbeat at the latest
		},
		clear: func(e *chaosEnv, st *faultState) {
			e.waitMetric("the Mesos stream to end", mMesosReconnects, st.before)
		},
	},
	{
		name: "mesos record length lies",
		inject: func(e *chaosEnv, st *faultState) {
			e.waitMesosStream()
			st.before = e.metric(mMesosReconnects)
			e.sim.LieMesosStreams()
		},
		clear: func(e *chaosEnv, st *faultState) {
			e.waitMetric("the Mesos stream to end", mMesosReconnects, st.before)
		},
	},
	{
		name: "mesos heartbeats stop",
		inject: func(e *chaosEnv, st *faultState) {
			e.waitMesosStream()
			st.before = e.metric(mMesosReconnects)
			e.sim.StallMesosStreams()
		},
		clear: func(e *chaosEnv, st *faultState) {
			e.waitMetric("the silent Mesos stream found dead", mMesosReconnects, st.before)
		},
	},
	{
		name: "mesos 307 loop",
		inject: func(e *chaosEnv, st *faultState) {
			st.before = e.metric(mMesosReconnects)
			e.sim.MesosRedirectLoop(true)
			e.sim.DropMesosStreams()
		},
		clear: func(e *chaosEnv, st *faultState) {
			waitFor(e.t, "subscriptions to fail in the loop", func() bool { return e.metric(mMesosReconnects) >= st.before+2 })
			e.sim.MesosRedirectLoop(false)
		},
	},
	{
		name:   "events out of order and duplicated",
		inject: func(e *chaosEnv, st *faultState) { st.apps = e.sim.Apps() },
		clear: func(e *chaosEnv, st *faultState) {
			before := e.metric(mEvents)
			// The TASK_RUNNING of every task killed meanwhile, once more.
			n := e.resendRunning(st.apps)
			n += e.sim.Replay(20+e.rng.IntN(chaosQueue-30), e.rng.Shuffle) // within the stream's queue
			// Convergence counts only once every replayed event is in.
			waitFor(e.t, "the replayed events to be read", func() bool { return e.metric(mEvents) >= before+float64(n) })
		},
	},
	{
		name: "slow consumer disconnected",
		inject: func(e *chaosEnv, st *faultState) {
			st.drops = e.sim.SlowDrops()
			st.before = e.metric(mReconnects)
			e.sim.StallStreams()
			e.sim.Burst(2 * chaosQueue)
		},
		clear: func(e *chaosEnv, st *faultState) {
			if e.sim.SlowDrops() <= st.drops {
				e.t.Fatalf("a burst of %d did not disconnect the stalled stream", 2*chaosQueue)
			}
			e.waitMetric("the daemon to see the disconnect", mReconnects, st.before)
		},
	},
	{
		name: "event over the size limit",
		inject: func(e *chaosEnv, st *faultState) {
			st.before = e.metric(mOversized)
			pad := strings.Repeat("x", chaosMaxEvent+1024)
			e.sim.Emit("api_post_event", []byte(`{"eventType":"api_post_event","timestamp":"2024-05-01T12:00:00.000Z","clientIp":"127.0.0.1","uri":"/v2/apps/big","appDefinition":{"id":"/big","cmd":"`+pad+`"}}`))
		},
		clear: func(e *chaosEnv, st *faultState) { e.waitMetric("the oversized event", mOversized, st.before) },
	},
}

// chaosResult is one fault survived.
type chaosResult struct {
	name            string
	actions         int
	fault, converge time.Duration
	queries, nx     int
	polls, lost     int
	stale, missing  int
}

func (e *chaosEnv) run(f chaosFault, waitGrace bool) chaosResult {
	e.t.Helper()
	var live []string
	for name := range e.names {
		if n := strings.Split(name, ".")[0]; n == "svcweb" || n == "api" || n == "cache" {
			live = append(live, name)
		}
	}
	slices.Sort(live)
	if waitGrace {
		// In production the last health report is minutes old at a
		// failover (resyncs are 5 min apart): be older than the grace.
		e.healthAged()
	}
	passes, stopDNS := e.watchDNS(live)
	st := &faultState{}
	t0 := time.Now()
	f.inject(e, st)
	n := 1 + e.rng.IntN(4)
	var did []string
	for range n {
		did = append(did, e.act())
	}
	f.clear(e, st)
	t1 := time.Now()
	// DNS is watched through the fault's effect however slow the
	// machine: a whole pass over the names begins after clear saw the
	// evidence. Convergence is timed from the end of the fault, as before.
	p := passes()
	waitFor(e.t, "a DNS pass after the fault", func() bool { return passes() >= p+2 })
	e.converge(f.name)
	took := time.Since(t1)
	queries, nx, bad := stopDNS()
	// Converged means staying converged: nothing still in flight may
	// undo it (a replayed event, a late resync).
	stale, missing, why := e.diff()
	if stale+missing > 0 {
		e.t.Errorf("%s: diverged again right after converging: %d stale, %d missing:\n  %s", f.name, stale, missing, strings.Join(why, "\n  "))
	}
	r := chaosResult{name: f.name, actions: n, fault: t1.Sub(t0), converge: took, queries: queries, nx: nx,
		polls: st.polls, lost: st.lost, stale: stale, missing: missing}
	e.t.Logf("%-36s actions %v; fault %v, converged %v after; %d DNS queries, %d NXDOMAIN; %d polls, %d backends lost",
		f.name, did, r.fault.Round(time.Millisecond), took.Round(time.Millisecond), queries, nx, r.polls, r.lost)
	if nx > 0 {
		e.t.Errorf("%s: %d NXDOMAIN for live names during the fault: %v", f.name, nx, bad[:min(len(bad), 5)])
	}
	if r.lost > 0 {
		e.t.Errorf("%s: %d polls lost a live backend at the failover", f.name, r.lost)
	}
	return r
}

func TestChaos(t *testing.T) {
	seed := uint64(1) // fixed, so that make test and CI replay the same run
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
	}
	rounds := 3
	if s := os.Getenv("CHAOS_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil {
			t.Fatalf("CHAOS_ROUNDS=%q: %v", s, err)
		}
	}
	t.Logf("CHAOS_SEED=%d CHAOS_ROUNDS=%d (set both to replay this run)", seed, rounds)
	e := startChaos(t, seed)
	var results []chaosResult
	for _, f := range chaosFaults {
		ok := t.Run(f.name, func(t *testing.T) {
			e.t = t
			results = append(results, e.run(f, f.name == "marathon leader change"))
		})
		e.t = t
		if !ok {
			return
		}
	}
	for i := range rounds {
		f := chaosFaults[e.rng.IntN(len(chaosFaults))]
		ok := t.Run(fmt.Sprintf("round %d %s", i, f.name), func(t *testing.T) {
			e.t = t
			r := e.run(f, false)
			r.name = fmt.Sprintf("round %d: %s", i, f.name)
			results = append(results, r)
		})
		e.t = t
		if !ok {
			return
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos summary, seed %d:\n%-44s %8s %10s %10s %8s %6s %6s %6s %6s\n", seed,
		"fault", "actions", "fault", "converge", "queries", "NXDOM", "lost", "stale", "miss")
	for _, r := range results {
		fmt.Fprintf(&b, "%-44s %8d %10s %10s %8d %6d %6d %6d %6d\n", r.name, r.actions,
			r.fault.Round(time.Millisecond), r.converge.Round(time.Millisecond), r.queries, r.nx, r.lost, r.stale, r.missing)
	}
	t.Log(b.String())
}

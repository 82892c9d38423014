package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeSource is a Source whose state and error the test sets.
type fakeSource struct {
	mu    sync.Mutex
	apps  []App
	err   error
	calls int
}

func (f *fakeSource) Snapshot(ctx context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return State{}, f.err
	}
	return State{Apps: slices.Clone(f.apps)}, nil
}

func (f *fakeSource) set(err error, apps ...App) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps, f.err = apps, err
}

func (f *fakeSource) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeDataplane records every Apply with the names DNS served at that moment.
type fakeDataplane struct {
	r     *Reconciler
	mu    sync.Mutex
	calls []applyCall
	fail  int // fail this many more Applies
}

type applyCall struct {
	applied, visible *Table
}

func (d *fakeDataplane) Apply(ctx context.Context, t *Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, applyCall{applied: t, visible: d.r.Table()})
	if d.fail > 0 {
		d.fail--
		return errors.New("netlink: operation not permitted")
	}
	return nil
}

func (d *fakeDataplane) applied() []applyCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// webApp is app id with a VIP "<id>:80" on host port 0 and one running task
// per given host port on agent 10.0.0.1.
func webApp(id string, healthChecks bool, ports ...uint16) App {
	a := App{ID: id, Framework: "marathon", HealthChecks: healthChecks, Ports: []Port{{
		Kind: PortHost, Protocols: []Protocol{TCP}, Labels: []Label{{Key: "VIP_0", Value: id + ":80"}},
	}}}
	for _, p := range ports {
		a.Tasks = append(a.Tasks, webTask(id, p, TaskRunning, HealthNone))
	}
	return a
}

func webTask(app string, port uint16, st TaskState, h Health) Task {
	return Task{ID: fmt.Sprintf("%s.%d", strings.TrimPrefix(app, "/"), port), Host: "agent1",
		AgentIP: netip.MustParseAddr("10.0.0.1"), HostPorts: []uint16{port}, State: st, Health: h}
}

// summary renders t's VIPs as "name:port backend/w ..." lines, with a "*"
// after names DNS announces.
func summary(t *Table) []string {
	var out []string
	for v := range t.VIPs.All() {
		line := fmt.Sprintf("%s:%d", v.Key.Name, v.Key.Port)
		if announced(t, v) {
			line += "*"
		}
		for _, b := range v.Backends {
			line += fmt.Sprintf(" %d/%d", b.Addr.Port(), b.Weight)
		}
		out = append(out, line)
	}
	return out
}

type recTest struct {
	r     *Reconciler
	src   *fakeSource
	dp    *fakeDataplane
	clock *fakeClock
	reg   *prometheus.Registry
	store *memStore
	stop  func()
}

// startReconciler runs a reconciler with one fake source "marathon" holding
// apps, a recording dataplane and store (nil for a new, empty one).
func startReconciler(t testing.TB, store *memStore, srcErr error, apps ...App) *recTest {
	t.Helper()
	rt := newRecTest(t, store, srcErr, apps...)
	rt.run(t)
	return rt
}

// newRecTest is startReconciler without Run.
func newRecTest(t testing.TB, store *memStore, srcErr error, apps ...App) *recTest {
	t.Helper()
	if store == nil {
		store = newMemStore()
	}
	rt := &recTest{src: &fakeSource{}, dp: &fakeDataplane{}, clock: &fakeClock{now: storeT0},
		reg: prometheus.NewRegistry(), store: store}
	rt.src.set(srcErr, apps...)
	var err error
	rt.r, err = NewReconciler(Config{
		Store:      store,
		Sources:    []SourceConfig{{Name: "marathon", Source: rt.src, Interval: time.Hour}},
		Dataplane:  rt.dp,
		Registerer: rt.reg,
		Now:        rt.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	rt.dp.r = rt.r
	rt.stop = func() {}
	t.Cleanup(func() { rt.stop() })
	return rt
}

func (rt *recTest) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.r.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	var once sync.Once
	rt.stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// waitFor waits until cond holds for the published table and status. The
// deadline only bounds a failing test.
func (rt *recTest) waitFor(t testing.TB, what string, cond func(*Table, Status) bool) *Table {
	t.Helper()
	sub, unsub := rt.r.Subscribe()
	defer unsub()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		tab := rt.r.Table()
		if cond(tab, rt.r.Status()) {
			return tab
		}
		select {
		case <-sub:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; table %v, status %+v", what, summary(rt.r.Table()), rt.r.Status())
		}
	}
}

func (rt *recTest) waitSummary(t testing.TB, want ...string) *Table {
	t.Helper()
	return rt.waitFor(t, fmt.Sprint(want), func(tab *Table, _ Status) bool { return slices.Equal(summary(tab), want) })
}

func (rt *recTest) waitSynced(t testing.TB) {
	t.Helper()
	rt.waitFor(t, "synced", func(tab *Table, st Status) bool { return st.Synced && !st.Stale && !tab.Stale })
}

// resyncAt resyncs at a new clock time and waits until the result is applied.
func (rt *recTest) resyncAt(t testing.TB, d time.Duration) {
	t.Helper()
	at := rt.clock.Add(d)
	rt.r.Resync("marathon")
	rt.waitFor(t, "resync at "+at.String(), func(_ *Table, st Status) bool { return st.LastSync["marathon"].Equal(at) })
}

func TestReconcilerInitialSync(t *testing.T) {
	rt := newRecTest(t, nil, nil, webApp("/web", false, 31000, 31001), webApp("/nolabel", false))
	if st := rt.r.Status(); st.Loaded || !st.Stale || st.Synced {
		t.Errorf("status before the first sync with an empty store = %+v, want not loaded, stale", st)
	}
	if tab := rt.r.Table(); tab == nil || tab.VIPs.Len() != 0 || !tab.Stale {
		t.Errorf("table before the first sync with an empty store = %+v, want empty and stale", tab)
	}
	rt.run(t)
	rt.waitSynced(t)
	tab := rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	if st := rt.r.Status(); !st.Loaded || st.Generation != tab.Generation {
		t.Errorf("status = %+v, want loaded at generation %d", st, tab.Generation)
	}
	if _, err := tab.Lookup("web.marathon"); err != nil {
		t.Errorf("Lookup(web.marathon) = %v", err)
	}
	calls := rt.dp.applied()
	if len(calls) == 0 || !slices.Equal(summary(calls[len(calls)-1].applied), summary(tab)) {
		t.Errorf("dataplane did not get the published table: %d calls", len(calls))
	}
}

func TestReconcilerRestartWithUpstreamDown(t *testing.T) {
	store := newMemStore()
	first := startReconciler(t, store, nil, webApp("/web", false, 31000))
	first.waitSynced(t)
	first.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)})
	first.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	addr := first.r.Table().VIPs.At(0).Addr4
	first.stop()

	down := errors.New("dial tcp 127.0.0.1:8080: connect: connection refused")
	rt := startReconciler(t, store, down)
	tab := rt.r.Table()
	if got := summary(tab); !slices.Equal(got, []string{"web.marathon:80* 31000/1 31001/1"}) {
		t.Errorf("table at start = %v, want the stored state", got)
	}
	if !tab.Stale || tab.VIPs.At(0).Addr4 != addr {
		t.Errorf("table at start: stale %v, addr %v, want stale, %v", tab.Stale, tab.VIPs.At(0).Addr4, addr)
	}
	if st := rt.r.Status(); !st.Loaded || !st.Stale || st.Synced {
		t.Errorf("status at start = %+v, want loaded, stale, not synced", st)
	}
	rt.waitFor(t, "failed sync", func(_ *Table, st Status) bool { return st.LastError["marathon"] != "" })
	rt.waitFor(t, "dataplane got stored table", func(*Table, Status) bool { return len(rt.dp.applied()) > 0 })
	if got := summary(rt.r.Table()); !slices.Equal(got, []string{"web.marathon:80* 31000/1 31001/1"}) {
		t.Errorf("table after a failed sync = %v, want the stored state kept", got)
	}
	if st := rt.r.Status(); !st.Stale || !slices.Equal(st.StaleSources, []string{"marathon"}) || !strings.Contains(st.LastError["marathon"], "refused") {
		t.Errorf("status after a failed sync = %+v", st)
	}
}

func TestReconcilerStaleKeepsState(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	rt.src.set(errors.New("502 Bad Gateway"))
	rt.r.Resync("marathon")
	tab := rt.waitFor(t, "stale", func(tab *Table, st Status) bool { return st.Stale && tab.Stale })
	if got := summary(tab); !slices.Equal(got, []string{"web.marathon:80* 31000/1"}) {
		t.Errorf("stale table = %v, want last known state", got)
	}
	rt.src.set(nil, webApp("/web", false, 31000, 31002))
	// The retry follows the backoff (0.5–0.75 s); requests wait for it.
	rt.r.Resync("marathon")
	rt.waitSummary(t, "web.marathon:80* 31000/1 31002/1")
	rt.waitSynced(t)
}

func TestReconcilerUpdates(t *testing.T) {
	tests := []struct {
		name    string
		apps    []App
		updates []Update
		want    []string
	}{
		{
			name:    "scale up",
			apps:    []App{webApp("/web", false, 31000)},
			updates: []Update{{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)}},
			want:    []string{"web.marathon:80* 31000/1 31001/1"},
		},
		{
			name:    "staging task is no backend",
			apps:    []App{webApp("/web", false, 31000)},
			updates: []Update{{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskStarting, HealthNone)}},
			want:    []string{"web.marathon:80* 31000/1"},
		},
		{
			name: "killing then killed",
			apps: []App{webApp("/web", false, 31000, 31001)},
			updates: []Update{
				{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskKilling, HealthNone)},
				{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31000, TaskTerminal, HealthNone)},
			},
			want: []string{"web.marathon:80* 31001/0"},
		},
		{
			name:    "health flip",
			apps:    []App{webApp("/web", true, 31000, 31001)},
			updates: []Update{{Kind: UpdateHealth, AppID: "/web", TaskID: "web.31000", Health: HealthHealthy}},
			want:    []string{"web.marathon:80* 31000/1 31001/0"},
		},
		{
			name: "health by instance id",
			apps: []App{webApp("/web", true, 31000)},
			updates: []Update{
				{Kind: UpdateHealth, TaskID: "web", Health: HealthHealthy},
			},
			want: []string{"web.marathon:80* 31000/1"},
		},
		{
			name:    "app removed",
			apps:    []App{webApp("/web", false, 31000), webApp("/db", false, 32000)},
			updates: []Update{{Kind: UpdateAppRemoved, AppID: "/web"}},
			want:    []string{"db.marathon:80* 32000/1"},
		},
		{
			name: "app definition changed keeps tasks",
			apps: []App{webApp("/web", false, 31000)},
			updates: []Update{{Kind: UpdateApp, App: App{ID: "/web", Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP},
				Labels: []Label{{Key: "VIP_0", Value: "/www:8080"}}}}}}},
			want: []string{"www.marathon:8080* 31000/1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := startReconciler(t, nil, nil, tt.apps...)
			rt.waitSynced(t)
			for _, u := range tt.updates {
				rt.r.Update(u)
			}
			rt.waitSummary(t, tt.want...)
		})
	}
}

func TestReconcilerUnknownAppResyncs(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	rt.src.set(nil, webApp("/web", false, 31000), webApp("/new", false, 33000))
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/new", Task: webTask("/new", 33000, TaskRunning, HealthNone)})
	rt.waitSummary(t, "new.marathon:80* 33000/1", "web.marathon:80* 31000/1")
}

func TestReconcilerOrderOfEffects(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/old", false, 31000), webApp("/stay", false, 32000))
	rt.waitSynced(t)
	rt.waitSummary(t, "old.marathon:80* 31000/1", "stay.marathon:80* 32000/1")
	before := len(rt.dp.applied())

	rt.src.set(nil, webApp("/new", false, 33000), webApp("/stay", false, 32000))
	rt.r.Resync("marathon")
	rt.waitSummary(t, "new.marathon:80* 33000/1", "stay.marathon:80* 32000/1")

	calls := rt.dp.applied()[before:]
	if len(calls) != 1 {
		t.Fatalf("dataplane applies for one change = %d, want 1", len(calls))
	}
	c := calls[0]
	if _, err := c.visible.Lookup("old.marathon"); !errors.Is(err, ErrNotFound) {
		t.Errorf("at Apply, DNS still answered the removed name old.marathon (err %v)", err)
	}
	if _, err := c.visible.Lookup("new.marathon"); !errors.Is(err, ErrNotFound) {
		t.Errorf("at Apply, DNS already answered the added name new.marathon (err %v)", err)
	}
	if _, err := c.visible.Lookup("stay.marathon"); err != nil {
		t.Errorf("at Apply, DNS lost the unchanged name stay.marathon: %v", err)
	}
	if got := summary(c.applied); !slices.Equal(got, summary(rt.r.Table())) {
		t.Errorf("applied %v, published %v", got, summary(rt.r.Table()))
	}
	if c.applied != rt.r.Table() || c.applied.Generation != c.visible.Generation+1 {
		t.Errorf("published table is not the applied one, or generations %d → %d", c.visible.Generation, c.applied.Generation)
	}
}

func TestReconcilerNotReadyNotAnnounced(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", true, 31000))
	rt.waitSynced(t)
	rt.waitSummary(t, "web.marathon:80 31000/0")
	rt.r.Update(Update{Kind: UpdateHealth, AppID: "/web", TaskID: "web.31000", Health: HealthHealthy})
	rt.waitSummary(t, "web.marathon:80* 31000/1")
	rt.r.Update(Update{Kind: UpdateHealth, AppID: "/web", TaskID: "web.31000", Health: HealthUnhealthy})
	rt.waitSummary(t, "web.marathon:80* 31000/0") // draining stays announced
}

func TestReconcilerNoPublishWhenUnchanged(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	gen := rt.r.Table().Generation
	applies := len(rt.dp.applied())

	rt.resyncAt(t, time.Minute)
	rt.resyncAt(t, time.Minute)
	// A change after the resyncs publishes exactly once: had a resync
	// published, the generation would have moved further.
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)})
	tab := rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	if tab.Generation != gen+1 {
		t.Errorf("generation after two unchanged resyncs and one change = %d, want %d", tab.Generation, gen+1)
	}
	if got := len(rt.dp.applied()); got != applies+1 {
		t.Errorf("dataplane applies = %d, want %d", got, applies+1)
	}
}

func TestReconcilerHealthGrace(t *testing.T) {
	app := webApp("/web", true)
	app.Tasks = []Task{webTask("/web", 31000, TaskRunning, HealthHealthy)}
	rt := startReconciler(t, nil, nil, app)
	rt.waitSynced(t)
	rt.waitSummary(t, "web.marathon:80* 31000/1")

	// A Marathon leader failover: the resync reports no health result.
	failover := webApp("/web", true, 31000)
	rt.src.set(nil, failover)
	rt.resyncAt(t, 30*time.Second)
	rt.resyncAt(t, 20*time.Second) // 50 s after the last result: within the 60 s grace
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31002, TaskRunning, HealthHealthy)})
	rt.waitSummary(t, "web.marathon:80* 31000/1 31002/1")

	rt.resyncAt(t, 41*time.Second) // 61 s after the first resync without it: the grace is over
	rt.waitSummary(t, "web.marathon:80* 31000/0")
}

// TestReconcilerHealthGraceFromFailover: the grace runs from the first
// resync without a health result, not from the last one with it. Results
// arrive only on changes and with resyncs (every 5 minutes by default), so a
// failover long after the last resync must not drain every health-checked
// backend at once. Found by the chaos test (cmd/vipbridge/chaos_test.go).
func TestReconcilerHealthGraceFromFailover(t *testing.T) {
	app := webApp("/web", true)
	app.Tasks = []Task{webTask("/web", 31000, TaskRunning, HealthHealthy)}
	rt := startReconciler(t, nil, nil, app)
	rt.waitSynced(t)
	rt.waitSummary(t, "web.marathon:80* 31000/1")

	rt.src.set(nil, webApp("/web", true, 31000)) // the new leader has no result yet
	rt.resyncAt(t, 4*time.Minute)
	// An update after the resync: the next table is built from both.
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31002, TaskRunning, HealthHealthy)})
	rt.waitSummary(t, "web.marathon:80* 31000/1 31002/1")
}

func TestReconcilerApplyErrorRetries(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	rt.dp.mu.Lock()
	rt.dp.fail = 1
	rt.dp.mu.Unlock()
	before := len(rt.dp.applied())

	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone)})
	rt.waitFor(t, "failed apply", func(*Table, Status) bool { return len(rt.dp.applied()) > before })
	if got := summary(rt.r.Table()); !slices.Equal(got, []string{"web.marathon:80* 31000/1"}) {
		t.Errorf("table after a failed apply = %v, want the previous one", got)
	}
	rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	if got := counterValue(t, rt.reg, "vipbridge_dataplane_apply_errors_total"); got != 1 {
		t.Errorf("vipbridge_dataplane_apply_errors_total = %v, want 1", got)
	}
}

func TestReconcilerQueueFull(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := NewReconciler(Config{Sources: []SourceConfig{{Name: "marathon", Source: &fakeSource{}}}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for range updateQueueSize + 3 {
		r.Update(Update{Kind: UpdateAppRemoved, AppID: "/x"})
	}
	if got := counterValue(t, reg, "vipbridge_events_dropped_total"); got != 3 {
		t.Errorf("vipbridge_events_dropped_total = %v, want 3", got)
	}
	if len(r.byName["marathon"].kick) != 1 {
		t.Error("dropping updates did not request a resync")
	}
}

func TestReconcilerEventLatency(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone), Received: time.Now()})
	rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	mfs, err := rt.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() == "vipbridge_event_to_dns_seconds" {
			count = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if count != 1 {
		t.Errorf("vipbridge_event_to_dns_seconds count = %d, want 1", count)
	}
}

// BenchmarkUpdateToPublish measures one task update through to a published
// Table, with 1,000 apps (10 tasks each) in the model.
func BenchmarkUpdateToPublish(b *testing.B) {
	var apps []App
	for i := range 1000 {
		ports := make([]uint16, 10)
		for j := range ports {
			ports[j] = uint16(20000 + 10*i + j)
		}
		apps = append(apps, webApp(fmt.Sprintf("/app%d", i), false, ports...))
	}
	rt := startReconciler(b, nil, nil, apps...)
	rt.waitSynced(b)
	sub, unsub := rt.r.Subscribe()
	defer unsub()
	states := []TaskState{TaskKilling, TaskRunning}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		gen := rt.r.Table().Generation
		rt.r.Update(Update{Kind: UpdateTask, AppID: "/app0", Task: webTask("/app0", 20000, states[i%2], HealthNone)})
		for rt.r.Table().Generation == gen {
			<-sub
		}
		i++
	}
}

// staticSource serves a fixed State.
type staticSource State

func (s staticSource) Snapshot(context.Context) (State, error) { return State(s), nil }

func ExampleReconciler() {
	web := App{ID: "/web", Framework: "marathon", Ports: []Port{{
		Kind: PortHost, Protocols: []Protocol{TCP}, Labels: []Label{{Key: "VIP_0", Value: "/web:80"}},
	}}, Tasks: []Task{{ID: "web.1", AgentIP: netip.MustParseAddr("10.0.0.1"), HostPorts: []uint16{31000}, State: TaskRunning}}}
	r, err := NewReconciler(Config{Sources: []SourceConfig{{Name: "marathon", Source: staticSource{Apps: []App{web}}}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	changed, unsubscribe := r.Subscribe()
	for !r.Status().Synced || r.Table().Stale {
		<-changed
	}
	unsubscribe()
	if e, err := r.Table().Lookup("web.marathon"); err == nil {
		fmt.Println("web.marathon", e.Ports[0].Protocol, e.Ports[0].Port)
	}
	cancel()
	fmt.Println(<-done)
	// Output:
	// web.marathon tcp 80
	// <nil>
}

// TestReconcilerConnectResyncsEverySource: the event stream has no replay,
// so a reconnect resyncs Mesos as well; other resync reasons only Marathon.
func TestReconcilerConnectResyncsEverySource(t *testing.T) {
	store := newMemStore()
	marathon, mesos := &fakeSource{}, &fakeSource{}
	r, err := NewReconciler(Config{Store: store, Sources: []SourceConfig{
		{Name: "marathon", Source: marathon, Interval: time.Hour},
		{Name: "mesos", Source: mesos, Interval: time.Hour},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitCalls := func(what string, src *fakeSource, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for src.callCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d snapshots, want %d", what, src.callCount(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls("initial marathon", marathon, 1)
	waitCalls("initial mesos", mesos, 1)

	r.Update(Update{Kind: UpdateResync, Reason: "deployment"})
	waitCalls("deployment resync", marathon, 2)
	r.Update(Update{Kind: UpdateResync, Reason: ResyncConnect})
	waitCalls("connect resync of marathon", marathon, 3)
	waitCalls("connect resync of mesos", mesos, 2)
	if got := mesos.callCount(); got != 2 {
		t.Errorf("mesos snapshots = %d, want 2 (initial + connect; a deployment resyncs Marathon only)", got)
	}
}

// TestReconcilerTableReceived: a table carries when the oldest event it
// reflects arrived, for the dataplane's event → kernel latency.
func TestReconcilerTableReceived(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	tab := rt.waitSummary(t, "web.marathon:80* 31000/1")
	if !tab.Received.IsZero() {
		t.Errorf("Received of a snapshot-only table = %v, want zero", tab.Received)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: webTask("/web", 31001, TaskRunning, HealthNone), Received: at})
	tab = rt.waitSummary(t, "web.marathon:80* 31000/1 31001/1")
	if !tab.Received.Equal(at) {
		t.Errorf("Received = %v, want the event's %v", tab.Received, at)
	}
}

// TestReconcilerLateEventResyncs: an update older than what the model knows
// shows events arriving out of order; the reconciler converges by a resync.
func TestReconcilerLateEventResyncs(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	before := rt.src.callCount()
	newer, older := webTask("/web", 31000, TaskRunning, HealthNone), webTask("/web", 31000, TaskStarting, HealthNone)
	newer.Updated, older.Updated = storeT0.Add(time.Minute), storeT0
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: newer})
	rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: older})
	deadline := time.Now().Add(20 * time.Second)
	for rt.src.callCount() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("snapshots = %d after a late event, want more than %d", rt.src.callCount(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReconcilerLateEventInsideWindowResyncs: a late update within
// lateResyncEvery of the resync the previous one asked for is not dropped:
// its resync follows when the window ends, so an event whose age could not
// be told is not left in place until the periodic resync.
func TestReconcilerLateEventInsideWindowResyncs(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
	waitSnapshots := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(lateResyncEvery + 20*time.Second)
		for rt.src.callCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: snapshots = %d, want %d", what, rt.src.callCount(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	late := func(at time.Duration) {
		newer, older := webTask("/web", 31000, TaskRunning, HealthNone), webTask("/web", 31000, TaskStarting, HealthNone)
		newer.Updated, older.Updated = storeT0.Add(at+time.Minute), storeT0.Add(at)
		rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: newer})
		rt.r.Update(Update{Kind: UpdateTask, AppID: "/web", Task: older})
	}
	before := rt.src.callCount()
	late(0)
	waitSnapshots("first late event", before+1)
	late(time.Hour) // the fake clock stands still: inside the window
	waitSnapshots("late event inside the window", before+2)
}

// TestReconcilerFirstSnapshotWaitsForStream: with StreamWait, the first
// snapshot is the one the event stream's connect asks for, so that a
// start-up takes one snapshot, not two.
func TestReconcilerFirstSnapshotWaitsForStream(t *testing.T) {
	store := newMemStore()
	src := &fakeSource{}
	src.set(nil, webApp("/web", false, 31000))
	r, err := NewReconciler(Config{
		Store:      store,
		Sources:    []SourceConfig{{Name: "marathon", Source: src, Interval: time.Hour}},
		StreamWait: time.Hour, // only the connect can start the first snapshot
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	changed, unsub := r.Subscribe()
	defer unsub()
	r.Update(Update{Kind: UpdateResync, Reason: ResyncConnect})
	deadline := time.After(30 * time.Second) // bounds a failing test only
	for !r.Status().Synced {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the connect's resync did not sync")
		}
	}
	if n := src.callCount(); n != 1 {
		t.Errorf("%d snapshots, want 1", n)
	}
}

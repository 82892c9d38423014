package main

// The status page (/ui/) in a real headless Chromium: it loads with the
// demo's VIPs from a daemon running on the simulator, shows a health flip
// as weight 0, filters with its search box, and renders 10,000 VIPs. It
// writes screenshots (desktop and phone) as test artifacts.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
)

// flipGoal is the goal from a health flip to weight 0 on the page;
// flipBound the bound past which the test fails (the machine is shared and
// loaded: the goal is logged, not asserted).
const (
	flipGoal  = 2 * time.Second
	flipBound = 10 * time.Second
)

// chromiumPath finds Debian's chromium, skipping the test without it
// (failing under CI=true, where scripts/deps.d/chromium.sh installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (scripts/deps.d/chromium.sh installs it)")
	}
	t.Skip("chromium not installed: run scripts/test-deps.sh")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab's context, ended at cleanup.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitPage polls expr in the page until cond holds; eventually bounds the
// wait.
func waitPage[T any](t *testing.T, tab context.Context, what, expr string, cond func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
		if err == nil && cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last %v, %v)", what, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// artifactDir is where screenshots go: $VIPBRIDGE_UI_ARTIFACTS, or a
// temporary directory. `make screenshot` points it at docs/.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("VIPBRIDGE_UI_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, tab context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// rowHealth is JS giving the health shown for task id, or "".
func rowHealth(id string) string {
	return fmt.Sprintf(`(() => { for (const td of document.querySelectorAll('td.task')) {
		if (td.textContent === %q) return td.parentElement.querySelector('td[data-label="Health"]').textContent; }
		return ""; })()`, id)
}

// rowWeight is JS giving the weight shown for task id, or -1.
func rowWeight(id string) string {
	return fmt.Sprintf(`(() => { for (const td of document.querySelectorAll('td.task')) {
		if (td.textContent === %q) return Number(td.parentElement.querySelector('td.weight').textContent); }
		return -1; })()`, id)
}

const shownVIPs = `document.querySelectorAll('article.vip').length`

func TestStatusPage(t *testing.T) {
	tab := newBrowser(t, 1280, 900)
	sim := startSim(t, "demo")
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()})
	const shop = "shopweb.marathon.l4lb.thisdcos.directory:80"
	ids := sim.TaskIDs("/shop/web")
	if len(ids) == 0 {
		t.Fatal("the demo has no /shop/web task")
	}
	waitFor(t, "shopweb to be served", func() bool { v, ok := d.vip(shop); return ok && len(v.Backend) == len(ids) })
	var vips []vip
	if err := d.getJSON("/v1/vips", &vips); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+d.addrs.HTTP.String()+"/ui/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	// /v1/vips lists each name once per protocol as the page does.
	waitPage(t, tab, "the demo's VIPs", shownVIPs, func(n int) bool { return n >= len(vips) })
	t.Logf("page loaded with %d VIPs in %v", len(vips), time.Since(start).Round(time.Millisecond))
	if !eval[bool](t, tab, fmt.Sprintf(`document.getElementById('vips').textContent.includes(%q)`, shop)) {
		t.Errorf("page does not show %s", shop)
	}
	if got := eval[string](t, tab, `document.getElementById('sources').textContent`); !strings.Contains(got, "marathon") {
		t.Errorf("sources = %q, want marathon listed", got)
	}
	if got := eval[int](t, tab, `document.querySelectorAll('#errors li:not(.empty)').length`); got == 0 {
		t.Errorf("no label error shown; the demo's /batch has one")
	}

	t.Run("health flip shows weight 0", func(t *testing.T) {
		waitPage(t, tab, "weight 1 before the flip", rowWeight(ids[0]), func(w int) bool { return w == 1 })
		flip := time.Now()
		if err := sim.SetHealth(ids[0], false); err != nil {
			t.Fatal(err)
		}
		waitPage(t, tab, "weight 0 after the flip", rowWeight(ids[0]), func(w int) bool { return w == 0 })
		took := time.Since(flip)
		t.Logf("health flip → weight 0 on the page: %v (goal %v)", took.Round(time.Millisecond), flipGoal)
		if took > flipGoal {
			t.Logf("note: over the %v goal; the machine is loaded (bound %v)", flipGoal, flipBound)
		}
		if took > flipBound {
			t.Errorf("health flip took %v to reach the page, over the %v bound", took, flipBound)
		}
		waitPage(t, tab, "the change logged", `document.getElementById('changes').textContent`,
			func(s string) bool { return strings.Contains(s, "w=1 → 0") })
		waitPage(t, tab, "the backend shown unhealthy", rowHealth(ids[0]), func(h string) bool { return h == "unhealthy" })
	})

	t.Run("search filters", func(t *testing.T) {
		if err := chromedp.Do(tab, chromedp.SendKeys("#search", "postgres")); err != nil {
			t.Fatal(err)
		}
		waitPage(t, tab, "one VIP left", shownVIPs, func(n int) bool { return n == 1 })
		if got := eval[string](t, tab, `document.querySelector('article.vip .vip-name').textContent`); !strings.Contains(got, "postgres") {
			t.Errorf("search postgres shows %q", got)
		}
		eval[bool](t, tab, `(() => { const s = document.getElementById('search'); s.value = ''; return s.dispatchEvent(new Event('input')); })()`)
		waitPage(t, tab, "every VIP back", shownVIPs, func(n int) bool { return n >= len(vips) })
	})

	// The desktop screenshot shows a search, the drained backend and the
	// change log; the phone one the top of the page.
	dir := artifactDir(t)
	if err := chromedp.Do(tab, chromedp.SendKeys("#search", "web")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, tab, "the web VIPs", `document.getElementById('vip-count').textContent`,
		func(s string) bool { return strings.Contains(s, " of ") })
	screenshot(t, tab, dir, "status-page.png")
	eval[bool](t, tab, `(() => { const s = document.getElementById('search'); s.value = ''; return s.dispatchEvent(new Event('input')); })()`)
	waitPage(t, tab, "every VIP back", shownVIPs, func(n int) bool { return n >= len(vips) })
	eval[chromedp.Void](t, tab, `window.scrollTo(0, 0)`)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if w := eval[int](t, tab, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a 390 px wide screen the page is %d px wide: it scrolls sideways", w)
	}
	screenshot(t, tab, dir, "status-page-phone.png")
}

// swapTables serves the table a test sets, synced.
type swapTables struct {
	t atomic.Pointer[discovery.Table]
}

func (f *swapTables) Table() *discovery.Table { return f.t.Load() }

func (f *swapTables) Status() discovery.Status {
	t := f.t.Load()
	return discovery.Status{Loaded: true, Synced: true, Generation: t.Generation,
		LastSync: map[string]time.Time{"marathon": t.Built}}
}

// bigTable builds n VIPs of two backends each, the first of VIP drained
// at weight 0 (-1: none).
func bigTable(n, drained int) *discovery.Table {
	apps := make([]discovery.App, n)
	for i := range apps {
		id := fmt.Sprintf("/app-%05d", i)
		apps[i] = discovery.App{ID: id, Framework: "marathon", HealthChecks: i == drained, Ports: []discovery.Port{{
			Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP},
			Labels: []discovery.Label{{Key: "VIP_0", Value: id + ":80"}},
		}}}
		for j := range 2 {
			health := discovery.HealthHealthy
			if i == drained && j == 0 {
				health = discovery.HealthUnhealthy
			}
			apps[i].Tasks = append(apps[i].Tasks, discovery.Task{
				ID: fmt.Sprintf("app-%05d.t%d", i, j), State: discovery.TaskRunning, Health: health,
				AgentIP:   netip.AddrFrom4([4]byte{10, byte(j), byte(i >> 8), byte(i)}),
				HostPorts: []uint16{31000},
			})
		}
	}
	t := discovery.Build(apps, discovery.NewAllocator(discovery.AllocConfig{}, nil), time.Now())
	t.Generation = 1
	return t.WithAnnounced(func(v *discovery.VIP) bool { return v.Ready() })
}

// servePage serves the API with a Feed over tables on loopback.
func servePage(t *testing.T, tables httpapi.Tables) string {
	t.Helper()
	feed, err := httpapi.NewFeed(httpapi.FeedConfig{Tables: tables, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(ln, httpapi.New(httpapi.Config{Tables: tables, Feed: feed}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = feed.Run(ctx) })
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

func TestStatusPageTenThousandVIPs(t *testing.T) {
	const n = 10_000
	tab := newBrowser(t, 1280, 900)
	tables := &swapTables{}
	tables.t.Store(bigTable(n, -1))
	drained := bigTable(n, 4321)
	drained.Generation = 2
	base := servePage(t, tables)

	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitPage(t, tab, "the snapshot", `window.vipbridgeUI.snapshotVIPs`, func(got int) bool { return got == n })
	loaded := time.Since(start)
	type timing struct {
		SnapshotMs   float64 `json:"snapshotMs"`
		LastRenderMs float64 `json:"lastRenderMs"`
	}
	first := eval[timing](t, tab, `window.vipbridgeUI`)
	if got := eval[int](t, tab, shownVIPs); got != 50 {
		t.Errorf("page shows %d VIPs of %d, want one page of 50", got, n)
	}

	if err := chromedp.Do(tab, chromedp.SendKeys("#search", "app-04321")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, tab, "the search", shownVIPs+` + ' ' + document.getElementById('vip-count').textContent`,
		func(s string) bool { return s == "1 (1 of 10000)" })
	search := eval[timing](t, tab, `window.vipbridgeUI`)

	flip := time.Now()
	tables.t.Store(drained)
	waitPage(t, tab, "the drained backend", rowWeight("app-04321.t0"), func(w int) bool { return w == 0 })
	live := time.Since(flip)
	t.Logf("status page at %d VIPs (snapshot %.1f MB): snapshot parsed, indexed and first page rendered in %.0f ms (in page); "+
		"navigation to rendered %v; a search re-renders in %.1f ms; a weight change reaches the page in %v (feed polling every 50 ms)",
		n, float64(snapshotBytes(t, base))/1e6, first.SnapshotMs, loaded.Round(time.Millisecond), search.LastRenderMs, live.Round(time.Millisecond))
}

// snapshotBytes is the size of /v1/watch's snapshot event.
func snapshotBytes(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read /v1/watch: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			return len(line)
		}
	}
}

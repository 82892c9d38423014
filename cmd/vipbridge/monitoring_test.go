package main

// The monitoring files (packaging/grafana/vipbridge.json,
// packaging/prometheus/alerts.yml, embedded as packaging.Monitoring)
// against a real daemon: every metric
// they name is in its /metrics, the rules pass promtool, the dashboard is
// well formed and shows what operators watch.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/packaging"
)

// The monitoring files, in packaging.Monitoring.
const (
	dashboardFile = "grafana/vipbridge.json"
	alertsFile    = "prometheus/alerts.yml"
	alertTests    = "prometheus/alerts_test.yml"
	// ipvsOnlyPrefix marks the metrics of the IPVS dataplane, which a
	// daemon with --lb none does not have.
	ipvsOnlyPrefix = "vipbridge_lb_"
)

var metricName = regexp.MustCompile(`\bvipbridge_[a-z0-9_]*[a-z0-9]\b`)

// namedMetrics returns the sorted metric names the monitoring files use.
func namedMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, f := range []string{dashboardFile, alertsFile} {
		b, err := packaging.Monitoring.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, metricName.FindAllString(string(b), -1)...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// exposedMetrics returns the sample names (histograms' _bucket, _sum and
// _count included) and family names of a /metrics page.
func exposedMetrics(t *testing.T, httpAddr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			names[strings.Fields(rest)[0]] = true
		} else if l != "" && !strings.HasPrefix(l, "#") {
			names[strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}
	return names
}

// checkNamedMetricsExposed checks every metric the monitoring files name
// against the daemon's /metrics; with ipvs false, the IPVS dataplane's
// may be missing.
func checkNamedMetricsExposed(t *testing.T, d *daemon, ipvs bool) {
	t.Helper()
	exposed := exposedMetrics(t, d.addrs.HTTP.String())
	var ipvsOnly []string
	for _, name := range namedMetrics(t) {
		switch {
		case exposed[name]:
		case !ipvs && strings.HasPrefix(name, ipvsOnlyPrefix):
			ipvsOnly = append(ipvsOnly, name)
		default:
			t.Errorf("%s or %s names %s, which the daemon's /metrics does not have", dashboardFile, alertsFile, name)
		}
	}
	if len(ipvsOnly) > 0 {
		t.Logf("%d IPVS dataplane metrics are not in /metrics with --lb none, as expected; TestMonitoringMetricsIPVS checks them: %v", len(ipvsOnly), ipvsOnly)
	}
}

// exerciseDaemon waits for the first sync of both sources and asks DNS a
// name that exists and one that does not.
func exerciseDaemon(t *testing.T, d *daemon) {
	t.Helper()
	waitFor(t, "both sources to sync", func() bool {
		return metricAtLeast(d, `vipbridge_resyncs_total{result="ok",source="marathon"}`, 1) &&
			metricAtLeast(d, `vipbridge_resyncs_total{result="ok",source="mesos"}`, 1)
	})
	waitFor(t, webName+" to resolve", func() bool {
		r, err := d.query(webName, dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	})
	if r, err := d.query("nope.marathon.l4lb.thisdcos.directory", dns.TypeA); err != nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("query nope.marathon: %v, %v; want NXDOMAIN", r, err)
	}
}

// TestMonitoringMetricsExist runs the daemon (--lb none) on the simulator
// and checks every metric the dashboard and the alerts name exists.
func TestMonitoringMetricsExist(t *testing.T) {
	names := namedMetrics(t)
	if len(names) < 10 {
		t.Fatalf("the monitoring files name %d metrics: %v; the name pattern is broken", len(names), names)
	}
	sim := startSim(t, "small")
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()})
	exerciseDaemon(t, d)
	checkNamedMetricsExposed(t, d, false)
}

// TestDashboardShows checks the dashboard is JSON Grafana imports (unique
// panel ids, positions, a query per target, the datasource and node
// variables) and charts what the operator watches.
func TestDashboardShows(t *testing.T) {
	b, err := packaging.Monitoring.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int                            `json:"id"`
			Type    string                         `json:"type"`
			Title   string                         `json:"title"`
			GridPos map[string]int                 `json:"gridPos"`
			Targets []struct{ RefID, Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" {
		t.Errorf("%s has no uid", dashboardFile)
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name+":"+v.Type)
	}
	if !slices.Contains(vars, "datasource:datasource") || !slices.Contains(vars, "instance:query") {
		t.Errorf("%s variables %v, want datasource:datasource and instance:query", dashboardFile, vars)
	}
	ids := map[int]bool{}
	var exprs strings.Builder
	for _, p := range dash.Panels {
		if ids[p.ID] || p.GridPos["w"] == 0 || p.GridPos["h"] == 0 {
			t.Errorf("panel %q: duplicate id %d or no size %v", p.Title, p.ID, p.GridPos)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" || !strings.Contains(q.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: target %+v lacks a refId, a query or the node filter", p.Title, q)
			}
			exprs.WriteString(q.Expr + "\n")
		}
	}
	for what, want := range map[string]string{
		"event → DNS latency":   "vipbridge_event_to_dns_seconds_bucket",
		"events by type":        "sum by (type, result) (rate(vipbridge_marathon_events_total",
		"resyncs":               "vipbridge_resyncs_total",
		"stale sources":         "vipbridge_stale",
		"DNS q/s by rcode":      "sum by (rcode) (rate(vipbridge_dns_queries_total",
		"dataplane sync time":   "vipbridge_lb_sync_duration_seconds_bucket",
		"dataplane errors":      "vipbridge_dataplane_apply_errors_total",
		"kernel write errors":   "vipbridge_lb_operation_errors_total",
		"Mesos events by type":  "vipbridge_mesos_events_total",
		"event → kernel (IPVS)": "vipbridge_lb_event_to_kernel_seconds_bucket",
	} {
		if !strings.Contains(exprs.String(), want) {
			t.Errorf("%s does not chart %s (no query with %q)", dashboardFile, what, want)
		}
	}
}

// TestAlertRules runs `promtool check rules` on the alerts and `promtool
// test rules` on their unit tests (alerts_test.yml).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found under CI (scripts/deps.d/prometheus.sh installs it): %v", err)
		}
		t.Skip("promtool not installed (scripts/test-deps.sh, Debian's prometheus package): skipping the rule checks")
	}
	dir := t.TempDir() // alerts_test.yml names alerts.yml beside it
	for _, f := range []string{alertsFile, alertTests} {
		b, err := packaging.Monitoring.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"check", "rules", path.Base(alertsFile)},
		{"test", "rules", path.Base(alertTests)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := packaging.Monitoring.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, alert := range []string{"VipbridgeSourceStale", "VipbridgeResyncsFailing", "VipbridgeDataplaneApplyFailing",
		"VipbridgeKernelWriteErrors", "VipbridgeDNSServfailRate"} {
		if !strings.Contains(string(b), "alert: "+alert+"\n") {
			t.Errorf("%s has no alert %s", alertsFile, alert)
		}
	}
}

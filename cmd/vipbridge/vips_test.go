package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// vipsScenario is two apps with a VIP each: web (2 tasks, TCP) and dns
// (1 task, UDP).
const vipsScenario = `{
	"agents": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
	"apps": [
		{"id": "/web", "instances": 2, "network": "host", "ports": [{"name": "http", "labels": {"VIP_0": "/web:80"}}]},
		{"id": "/dns", "instances": 1, "network": "host", "ports": [{"name": "dns", "protocol": "udp", "labels": {"VIP_0": "/dns:53"}}]}
	]
}`

// vipsOutput runs `vipbridge vips` against the API at addr.
func vipsOutput(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runVIPs(context.Background(), append([]string{"--http-addr", addr}, args...), &out, io.Discard)
	return out.String(), err
}

// backendLines returns the backend lines ("  -> ...") of out.
func backendLines(out string) []string {
	var bs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  -> ") && !strings.HasPrefix(l, "  -> RemoteAddress") {
			bs = append(bs, l)
		}
	}
	return bs
}

// TestVIPsFromDaemon runs the real daemon (--lb none) on the simulator and
// prints its VIPs, all of them and one by name, short and full.
func TestVIPsFromDaemon(t *testing.T) {
	sc, err := marathontest.ParseScenario([]byte(vipsScenario))
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc)
	t.Cleanup(sim.Close)
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()})
	waitFor(t, "both VIPs", func() bool {
		_, web := d.vip(webName + ":80")
		_, dns := d.vip("dns.marathon.l4lb.thisdcos.directory:53")
		return web && dns
	})
	addr := d.addrs.HTTP.String()
	webTasks := map[string]bool{}
	for _, id := range sim.TaskIDs("/web") {
		webTasks[id] = true
	}

	all, err := vipsOutput(t, addr)
	if err != nil {
		t.Fatalf("vipbridge vips: %v", err)
	}
	t.Logf("vipbridge vips:\n%s", all)
	for _, re := range []string{
		`(?m)^Prot LocalAddress:Port Scheduler State VIP\n  -> RemoteAddress:Port +Weight +ActiveConn +InActConn +Task$`,
		`(?m)^TCP +11\.\d+\.\d+\.\d+:80 +- +- +` + regexp.QuoteMeta(webName+":80") + `$`,
		`(?m)^UDP +11\.\d+\.\d+\.\d+:53 +- +- +dns\.marathon\.l4lb\.thisdcos\.directory:53$`,
		`(?m)^\(dataplane none: `,
	} {
		if !regexp.MustCompile(re).MatchString(all) {
			t.Errorf("vipbridge vips prints no line matching %s", re)
		}
	}
	if got := len(backendLines(all)); got != 3 {
		t.Errorf("vipbridge vips prints %d backends, want 3 (2 web, 1 dns)", got)
	}

	for _, name := range []string{"web.marathon", webName, webName + "."} {
		out, err := vipsOutput(t, addr, name)
		if err != nil {
			t.Fatalf("vipbridge vips %s: %v", name, err)
		}
		if strings.Contains(out, "dns.marathon") || !strings.Contains(out, webName+":80") {
			t.Errorf("vipbridge vips %s shows other VIPs or not web's:\n%s", name, out)
		}
		bs := backendLines(out)
		if len(bs) != 2 {
			t.Errorf("vipbridge vips %s prints %d backends, want 2:\n%s", name, len(bs), out)
		}
		for _, b := range bs {
			f := strings.Fields(b)
			if len(f) != 6 || f[2] != "1" || f[3] != "-" || f[4] != "-" || !webTasks[f[5]] {
				t.Errorf("vipbridge vips %s: backend line %q, want address, weight 1, no counts, one of web's tasks %v", name, b, webTasks)
			}
		}
	}
	var named bytes.Buffer
	if err := runVIPs(context.Background(), []string{"web.marathon", "--http-addr", addr}, &named, io.Discard); err != nil || len(backendLines(named.String())) != 2 {
		t.Errorf("vipbridge vips web.marathon --http-addr %s (flags after NAME) = %v:\n%s", addr, err, named.String())
	}
	if _, err := vipsOutput(t, addr, "web.marathon", "extra"); err == nil {
		t.Errorf("vipbridge vips web.marathon extra = nil error, want unexpected arguments")
	}
	if _, err := vipsOutput(t, addr, "nope.marathon"); err == nil || !strings.Contains(err.Error(), "no VIP of that name") {
		t.Errorf("vipbridge vips nope.marathon = %v, want a no-such-VIP error", err)
	}
}

// kernelStates is an httpapi.Dataplane reporting every VIP programmed with
// fixed connection counts and one extra draining backend, as lb.IPVS
// reports the kernel.
type kernelStates struct{ t *discovery.Table }

func (k kernelStates) State() map[discovery.VIPKey][]lb.ServiceState {
	out := map[discovery.VIPKey][]lb.ServiceState{}
	for v := range k.t.VIPs.All() {
		s := lb.ServiceState{Protocol: v.Key.Protocol, Addr: netip.AddrPortFrom(v.Addr4, v.Key.Port), Scheduler: "wlc", Status: lb.StatusProgrammed}
		for i, b := range v.Backends {
			s.Backends = append(s.Backends, lb.BackendState{Addr: b.Addr, Weight: int(b.Weight), ActiveConns: 3 + i, InactiveConns: 7})
		}
		s.Backends = append(s.Backends, lb.BackendState{Addr: netip.MustParseAddrPort("10.0.0.9:31999"), ActiveConns: 1, Draining: true})
		out[v.Key] = append(out[v.Key], s)
	}
	return out
}

// TestVIPsShowsKernelState serves the real HTTP API over a table and a
// dataplane reporting IPVS's state, and checks the scheduler, connection
// counts and draining backends are printed as ipvsadm -Ln does.
func TestVIPsShowsKernelState(t *testing.T) {
	running := func(id, agent string, port uint16) discovery.Task {
		return discovery.Task{ID: id, State: discovery.TaskRunning, AgentIP: netip.MustParseAddr(agent), HostPorts: []uint16{port}}
	}
	tbl := discovery.Build([]discovery.App{{
		ID: "/web", Framework: "marathon",
		Ports: []discovery.Port{{Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP},
			Labels: []discovery.Label{{Key: "VIP_0", Value: "/web:80"}}}},
		Tasks: []discovery.Task{running("web.1", "10.0.0.1", 31000), running("web.2", "10.0.0.2", 31001)},
	}}, discovery.NewAllocator(discovery.AllocConfig{}, nil), time.Now())
	tbl = tbl.WithAnnounced(func(*discovery.VIP) bool { return true })
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Tables: apiTables{tbl}, Dataplane: kernelStates{tbl}}))
	t.Cleanup(srv.Close)

	out, err := vipsOutput(t, strings.TrimPrefix(srv.URL, "http://"), "web.marathon")
	if err != nil {
		t.Fatalf("vipbridge vips web.marathon: %v", err)
	}
	t.Logf("vipbridge vips web.marathon:\n%s", out)
	var vip netip.Addr
	for v := range tbl.VIPs.All() {
		vip = v.Addr4
	}
	for _, re := range []string{
		fmt.Sprintf(`(?m)^TCP +%s:80 +wlc +programmed +%s:80$`, regexp.QuoteMeta(vip.String()), regexp.QuoteMeta(webName)),
		`(?m)^  -> 10\.0\.0\.1:31000 +1 +3 +7 +web\.1$`,
		`(?m)^  -> 10\.0\.0\.2:31001 +1 +4 +7 +web\.2$`,
		`(?m)^  -> 10\.0\.0\.9:31999 +0 +1 +0 +- \(draining\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("vipbridge vips prints no line matching %s", re)
		}
	}
	if strings.Contains(out, "dataplane none") {
		t.Errorf("vipbridge vips says dataplane none with a dataplane:\n%s", out)
	}
}

// FuzzPrintVIPs feeds printVIPs whatever JSON a daemon (or something else
// on its port) could answer: it must print the header and never panic.
func FuzzPrintVIPs(f *testing.F) {
	for _, seed := range []string{
		`{"vips": []}`,
		`{"stale": true, "vips": [{"vip": "web.marathon.l4lb.thisdcos.directory:80", "protocol": "tcp", "addresses": ["11.0.0.1", "fd01:c::1"],
			"backends": [{"ip": "10.0.0.1", "port": 31000, "weight": 1, "task_id": "web.1"}, {"ip": "fd00::1", "port": 31000, "weight": 0}]}]}`,
		`{"vips": [{"vip": "10.10.0.1:5000", "protocol": "udp", "addresses": ["10.10.0.1"], "backends": [],
			"dataplane": {"status": "error", "reason": "add service: file exists", "services": [{"addr": "10.10.0.1:5000", "scheduler": "wlc", "status": "error",
			"backends": [{"addr": "10.0.0.3:31500", "weight": 1, "active_conns": 2, "inactive_conns": 5, "draining": true}]}]}}]}`,
		`{"vips": [{"vip": ":", "addresses": ["not an ip", ""], "backends": [{"ip": "x"}], "dataplane": {"services": []}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc vipsDoc
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		var out bytes.Buffer
		if err := printVIPs(&out, doc); err != nil {
			t.Fatalf("printVIPs: %v", err)
		}
		if !strings.HasPrefix(out.String(), "Prot LocalAddress:Port Scheduler State VIP\n") {
			t.Fatalf("printVIPs printed no header:\n%s", out.String())
		}
	})
}

package httpapi

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// fakeTables is a Tables whose table and status the test sets.
type fakeTables struct {
	mu sync.Mutex
	t  *discovery.Table
	st discovery.Status
}

func (f *fakeTables) Table() *discovery.Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTables) Status() discovery.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeTables) setStatus(st discovery.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
}

// built is the build time of every test table, fixed for golden files.
var built = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// testTable builds a small table covering named, IP, dual-stack, IPv6-only,
// not yet announced VIPs and a label error. Names are announced only when
// their VIP is Ready, as the reconciler does.
func testTable(tb testing.TB) *discovery.Table {
	tb.Helper()
	ip := netip.MustParseAddr
	port := func(kind discovery.PortKind, cport uint16, labels ...string) discovery.Port {
		p := discovery.Port{Kind: kind, ContainerPort: cport, Protocols: []discovery.Protocol{discovery.TCP}}
		for i := 0; i+1 < len(labels); i += 2 {
			p.Labels = append(p.Labels, discovery.Label{Key: labels[i], Value: labels[i+1]})
		}
		return p
	}
	running := func(id string, agent string, hostPort uint16, ips ...netip.Addr) discovery.Task {
		t := discovery.Task{ID: id, State: discovery.TaskRunning, IPs: ips}
		if agent != "" {
			t.AgentIP, t.HostPorts = ip(agent), []uint16{hostPort}
		}
		return t
	}
	bar := port(discovery.PortContainer, 8080, "VIP_0", "bar:8080")
	bar.Protocols = []discovery.Protocol{discovery.TCP, discovery.UDP}
	killing := running("foo.t3", "10.0.0.4", 31002)
	killing.State = discovery.TaskKilling
	apps := []discovery.App{
		{ID: "/foo", Framework: "marathon", Ports: []discovery.Port{port(discovery.PortHost, 0, "VIP_0", "/foo:80")},
			Tasks: []discovery.Task{running("foo.t1", "10.0.0.1", 31000), running("foo.t2", "10.0.0.2", 31001), killing}},
		{ID: "/bar", Framework: "marathon", Ports: []discovery.Port{bar},
			Tasks: []discovery.Task{running("bar.t1", "", 0, ip("10.1.0.5"), ip("fd00::5"))}},
		{ID: "/ipvip", Framework: "marathon", Ports: []discovery.Port{port(discovery.PortMapped, 0, "VIP_0", "10.10.0.1:5000", "VIP_1", "nocolon")},
			Tasks: []discovery.Task{running("ipvip.t1", "10.0.0.3", 31500)}},
		{ID: "/v6", Framework: "marathon", Ports: []discovery.Port{port(discovery.PortContainer, 9000, "VIP_0", "fd01:d::1:9000")},
			Tasks: []discovery.Task{running("v6.t1", "", 0, ip("fd00::7"))}},
		{ID: "/db", Framework: "marathon", HealthChecks: true, Ports: []discovery.Port{port(discovery.PortHost, 0, "VIP_0", "/db:5432")},
			Tasks: []discovery.Task{running("db.t1", "10.0.0.5", 31600)}},
		{ID: "hello-world/web-0", Framework: "hello-world", Ports: []discovery.Port{port(discovery.PortContainer, 443, "VIP_0", "web.svc:443")},
			Tasks: []discovery.Task{running("web-0", "", 0, ip("fd00::9"))}},
	}
	t := discovery.Build(apps, discovery.NewAllocator(discovery.AllocConfig{}, nil), built)
	t = t.WithAnnounced(func(v *discovery.VIP) bool { return v.Ready() })
	t.Generation = 7
	return t
}

// refusing is a Resolver that refuses every query, as the DNS server does
// for zones it does not serve: golden files of what falls back without DNS
// (the mesos zone's SOA) stay fixed whatever dnsserver learns.
type refusing struct{}

func (refusing) Answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeRefused)
	return m
}

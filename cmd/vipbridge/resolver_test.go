package main

import (
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParseForwardFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c forwardConfig)
		wantErr bool
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c forwardConfig) {
				if c.UpstreamsSet || c.Upstreams != nil || c.Zones != nil || c.Allow != nil {
					t.Errorf("got upstreams %v (set %v) zones %v allow %v", c.Upstreams, c.UpstreamsSet, c.Zones, c.Allow)
				}
				if c.Timeout != 5*time.Second || !c.Cache || c.CacheSize != 10000 || c.MaxInflight != 1000 {
					t.Errorf("got timeout %v cache %v size %d inflight %d", c.Timeout, c.Cache, c.CacheSize, c.MaxInflight)
				}
			},
		},
		{
			name: "every flag",
			args: []string{"--upstream", "10.0.0.1, 10.0.0.2:5353", "--forward-zone", "mesos=10.0.0.1:61053,10.0.0.2:61053",
				"--forward-zone", "corp.example.=10.9.9.9", "--forward-timeout", "2s", "--forward-cache=false",
				"--forward-cache-size", "50", "--forward-max-inflight", "7", "--dns-allow", "10.0.0.0/8, 192.168.1.1, ::ffff:172.16.0.0/108"},
			check: func(t *testing.T, c forwardConfig) {
				if got := addrs(c.Upstreams); got != "10.0.0.1:53 10.0.0.2:5353" || !c.UpstreamsSet {
					t.Errorf("Upstreams = %s", got)
				}
				if len(c.Zones) != 2 || c.Zones[0].Name != "mesos." || len(c.Zones[0].Upstreams) != 2 || c.Zones[1].Name != "corp.example." {
					t.Errorf("Zones = %v", c.Zones)
				}
				if c.Timeout != 2*time.Second || c.Cache || c.CacheSize != 50 || c.MaxInflight != 7 {
					t.Errorf("got timeout %v cache %v size %d inflight %d", c.Timeout, c.Cache, c.CacheSize, c.MaxInflight)
				}
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("172.16.0.0/12")}
				if !slices.Equal(c.Allow, want) {
					t.Errorf("Allow = %v, want %v", c.Allow, want)
				}
			},
		},
		{
			name: "env",
			env:  map[string]string{"VIPBRIDGE_UPSTREAM": "none", "VIPBRIDGE_FORWARD_ZONE": "mesos=10.0.0.1:61053 a.b=10.0.0.2", "VIPBRIDGE_DNS_ALLOW": "127.0.0.1"},
			check: func(t *testing.T, c forwardConfig) {
				if !c.UpstreamsSet || c.Upstreams != nil || len(c.Zones) != 2 || len(c.Allow) != 1 {
					t.Errorf("got upstreams %v (set %v) zones %v allow %v", c.Upstreams, c.UpstreamsSet, c.Zones, c.Allow)
				}
			},
		},
		{name: "bad upstream", args: []string{"--upstream", "dns.example"}, wantErr: true},
		{name: "bad zone", args: []string{"--forward-zone", "mesos"}, wantErr: true},
		{name: "bad allow", args: []string{"--dns-allow", "everyone"}, wantErr: true},
		{name: "zero timeout", args: []string{"--forward-timeout", "0s"}, wantErr: true},
		{name: "zero cache", args: []string{"--forward-cache-size", "0"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("run", append([]string{"--marathon", "http://m:8080"}, tt.args...), env(tt.env), io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Forward)
		})
	}
}

func addrs(as []netip.AddrPort) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

func TestResolvConfNameservers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# generated\nsearch example\nnameserver 10.0.0.1\nnameserver  ::1\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := resolvConfNameservers(path)
	if err != nil || addrs(got) != "10.0.0.1:53 [::1]:53" {
		t.Errorf("resolvConfNameservers = %s, %v", addrs(got), err)
	}
	if _, err := resolvConfNameservers(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSelfAddrsAndDefaultAllow(t *testing.T) {
	local := []net.Addr{
		&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(16, 32)},
		&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPNet{IP: net.ParseIP("2001:db8::5"), Mask: net.CIDRMask(64, 128)},
	}
	self := addrs(selfAddrs(":53,198.51.100.1:5353", local))
	if want := "0.0.0.0:53 127.0.0.1:53 10.1.2.3:53 [2001:db8::5]:53 198.51.100.1:5353"; self != want {
		t.Errorf("selfAddrs = %s, want %s", self, want)
	}
	allow := defaultAllow(local)
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/64")}
	if !slices.Equal(allow, want) {
		t.Errorf("defaultAllow = %v, want %v", allow, want)
	}
}

// startResolverUpstream is a miekg/dns server on 127.0.0.1 answering
// www.example. A 192.0.2.1 and NXDOMAIN for other names.
func startResolverUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if strings.EqualFold(r.Question[0].Name, "www.example.") && r.Question[0].Qtype == dns.TypeA {
			a, _ := dns.NewRR("www.example. 60 IN A 192.0.2.1")
			m.Answer = []dns.RR{a}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	up := make(chan struct{})
	s.NotifyStartedFunc = func() { close(up) }
	go func() { _ = s.ActivateAndServe() }()
	<-up
	t.Cleanup(func() { _ = s.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestDaemonForwards(t *testing.T) {
	sim := startSim(t, "small")
	up := startResolverUpstream(t)
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, nil, func(c *config) {
		c.Forward.Upstreams, c.Forward.UpstreamsSet = []netip.AddrPort{up}, true
	})
	r, err := d.query("www.example.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if !r.RecursionAvailable || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("forwarded answer: %v", r)
	}
	waitFor(t, "the VIP name", func() bool {
		r, err := d.query(webName, dns.TypeA)
		return err == nil && r.Authoritative && len(r.Answer) == 1
	})
	var hosts []map[string]string
	if err := d.getJSON("/v1/hosts/www.example", &hosts); err != nil || len(hosts) != 1 || hosts[0]["ip"] != "192.0.2.1" {
		t.Errorf("/v1/hosts/www.example through the forwarder = %v, %v; want 192.0.2.1", hosts, err)
	}
	if !metricAtLeast(d, `vipbridge_dns_forward_upstream_queries_total{result="ok",upstream="`+up.String()+`"}`, 1) {
		t.Error("no upstream metric")
	}
}

// An upstream that is vipbridge itself is dropped: the daemon runs and
// refuses other names rather than forwarding them to itself.
func TestDaemonDropsItselfAsUpstream(t *testing.T) {
	sim := startSim(t, "small")
	// A loopback address no other test binds, and a port free for UDP and
	// TCP there: the daemon must listen on exactly the address it is told
	// to drop as an upstream (port 0 would not do), and 127.0.0.1's
	// ephemeral ports are taken and freed by every other test meanwhile.
	var addr string
	for attempt := 0; addr == "" && attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.77:0")
		if err != nil {
			t.Fatal(err)
		}
		if ln, err := net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			addr = pc.LocalAddr().String()
			ln.Close()
		}
		pc.Close()
	}
	if addr == "" {
		t.Fatal("no port on 127.0.0.77 free for both UDP and TCP in 20 attempts")
	}
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, nil, func(c *config) {
		c.DNSAddr = addr
		c.Forward.Upstreams, c.Forward.UpstreamsSet = []netip.AddrPort{netip.MustParseAddrPort(addr)}, true
	})
	r, err := d.query("www.example.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeRefused {
		t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if !strings.Contains(d.logs.String(), "dropped upstream") {
		t.Errorf("no log line of the dropped upstream:\n%s", d.logs)
	}
}

// TestForwardZoneOverMesosDomain: --forward-zone mesos=... sends .mesos to
// mesos-dns instead of serving it (issue 11), so the mesos domain is not
// served; other forward zones leave it.
func TestForwardZoneOverMesosDomain(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--forward-zone", "mesos=127.0.0.1:61053"}, ""},
		{[]string{"--forward-zone", "mesos.=127.0.0.1:61053"}, ""},
		{[]string{"--mesos-domain", "dc1.example", "--forward-zone", "example=127.0.0.1:53"}, ""},
		{[]string{"--forward-zone", "example=127.0.0.1:53"}, "mesos"},
		{[]string{"--forward-zone", "marathon.mesos=127.0.0.1:53"}, "mesos"},
	} {
		args := append([]string{"--marathon", "http://127.0.0.1:8080", "--upstream", "none"}, tt.args...)
		c, err := parseConfig("run", args, func(string) (string, bool) { return "", false }, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if c.MesosDomain != tt.want {
			t.Errorf("%v: mesos domain %q, want %q", tt.args, c.MesosDomain, tt.want)
		}
	}
}

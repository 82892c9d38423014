// resolver.go: the daemon as a node's resolver: the forwarding flags, their
// defaults taken from the node (/etc/resolv.conf, the interfaces'
// addresses), and the Forwarder they build.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/dnsserver"
	"github.com/vipbridge/vipbridge/dnsserver/forward"
)

// defaultResolvConf is where the default upstreams come from.
const defaultResolvConf = "/etc/resolv.conf"

// forwardConfig are the forwarding settings.
type forwardConfig struct {
	upstream, allow string // the flags as given

	// Upstreams are --upstream's; UpstreamsSet false means the
	// nameservers of ResolvConf instead.
	Upstreams    []netip.AddrPort
	UpstreamsSet bool
	Zones        []forward.Zone
	Timeout      time.Duration
	Cache        bool
	CacheSize    int
	MaxInflight  int
	// Allow are --dns-allow's clients; nil means loopback and the
	// networks of the node's interface addresses.
	Allow []netip.Prefix

	// Not flags: tests point these elsewhere. "" means
	// defaultResolvConf; nil means net.InterfaceAddrs.
	ResolvConf     string
	InterfaceAddrs func() ([]net.Addr, error)
}

func forwardFlags(fs *flag.FlagSet, c *forwardConfig) {
	fs.StringVar(&c.upstream, "upstream", "", "upstream resolvers for names outside vipbridge's zones, ip[:port] comma separated, or none (default: the nameservers of /etc/resolv.conf, without vipbridge's own addresses)")
	fs.Func("forward-zone", "ZONE=ip[:port],...: forward names in ZONE to these servers instead (repeatable, or several separated by spaces; the longest zone wins; e.g. mesos=10.0.0.1:61053)", func(v string) error {
		for _, item := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ';' }) {
			z, err := forward.ParseZone(item)
			if err != nil {
				return err
			}
			c.Zones = append(c.Zones, z)
		}
		return nil
	})
	fs.DurationVar(&c.Timeout, "forward-timeout", 5*time.Second, "time limit of a forwarded query; SERVFAIL after it")
	fs.BoolVar(&c.Cache, "forward-cache", true, "cache forwarded answers (as long as their TTLs say)")
	fs.IntVar(&c.CacheSize, "forward-cache-size", 10000, "entries of the forwarding cache at most")
	fs.IntVar(&c.MaxInflight, "forward-max-inflight", 1000, "forwarded queries in flight at most; beyond, SERVFAIL at once")
	fs.StringVar(&c.allow, "dns-allow", "", "clients (CIDRs or addresses, comma separated) whose queries for other names are forwarded; others get REFUSED (default: loopback and the networks of this node's interface addresses)")
}

// parse checks the flags as given.
func (c *forwardConfig) parse() error {
	if s := strings.TrimSpace(c.upstream); s != "" {
		c.UpstreamsSet = true
		if s != "none" {
			ups, err := forward.ParseUpstreams(s)
			if err != nil {
				return fmt.Errorf("--upstream: %w", err)
			}
			c.Upstreams = ups
		}
	}
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("--forward-timeout: %v is not positive", c.Timeout)
	case c.CacheSize <= 0:
		return fmt.Errorf("--forward-cache-size: %d is not positive", c.CacheSize)
	case c.MaxInflight <= 0:
		return fmt.Errorf("--forward-max-inflight: %d is not positive", c.MaxInflight)
	}
	for _, item := range splitList(c.allow) {
		p, err := parseAllow(item)
		if err != nil {
			return fmt.Errorf("--dns-allow: %w", err)
		}
		c.Allow = append(c.Allow, p)
	}
	return nil
}

// parseAllow parses a CIDR or a single address.
func parseAllow(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix shorter than /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// newForwarder builds the Forwarder of cfg and the clients it serves; a
// nil Forwarder when forwarding is off (no upstream and no forward zone
// left), which dnsserver takes as "REFUSE other names".
func newForwarder(cfg config, reg prometheus.Registerer, log *slog.Logger) (*forward.Forwarder, []netip.Prefix, error) {
	fc := cfg.Forward
	ifaces := fc.InterfaceAddrs
	if ifaces == nil {
		ifaces = net.InterfaceAddrs
	}
	local, err := ifaces()
	if err != nil {
		log.Warn("no interface addresses: forwarding serves loopback clients only", "err", err)
	}
	ups := fc.Upstreams
	if !fc.UpstreamsSet {
		path := fc.ResolvConf
		if path == "" {
			path = defaultResolvConf
		}
		if ups, err = resolvConfNameservers(path); err != nil {
			log.Warn("no default upstreams", "err", err)
		}
	}
	if len(ups) == 0 && len(fc.Zones) == 0 {
		log.Info("dns forwarding off: no upstream and no forward zone")
		return nil, nil, nil
	}
	f, err := forward.New(forward.Config{
		Upstreams:   ups,
		Zones:       fc.Zones,
		Self:        selfAddrs(cfg.DNSAddr, local),
		Own:         dnsserver.Zones(cfg.MesosDomain),
		Timeout:     fc.Timeout,
		NoCache:     !fc.Cache,
		CacheSize:   fc.CacheSize,
		MaxInflight: fc.MaxInflight,
		Registerer:  reg,
		Logger:      log,
	})
	if err != nil {
		return nil, nil, err
	}
	if !f.Enabled() {
		log.Warn("dns forwarding off: every upstream is vipbridge itself")
		return nil, nil, nil
	}
	allow := fc.Allow
	if allow == nil {
		allow = defaultAllow(local)
	}
	log.Info("dns forwarding on", "upstreams", len(ups), "forward_zones", len(fc.Zones), "allow", len(allow))
	return f, allow, nil
}

// resolvConfNameservers returns the nameserver lines of a resolv.conf.
func resolvConfNameservers(path string) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read nameservers: %w", err)
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		// A zone ("fe80::1%eth0") or garbage: skipped, as the libc
		// resolver skips what it cannot use.
		if a, err := netip.ParseAddr(fields[1]); err == nil && a.Zone() == "" {
			out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// selfAddrs are the addresses vipbridge's DNS listens on: each of
// dnsAddr's, and for an unspecified host every local address at its port.
func selfAddrs(dnsAddr string, local []net.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range splitList(dnsAddr) {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if host == "" {
			host = "0.0.0.0"
		}
		ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		if ap.Addr().IsUnspecified() {
			for _, p := range localPrefixes(local) {
				out = append(out, netip.AddrPortFrom(p.Addr(), ap.Port()))
			}
		}
	}
	return out
}

// defaultAllow is loopback and the networks of the local addresses.
func defaultAllow(local []net.Addr) []netip.Prefix {
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, p := range localPrefixes(local) {
		allow = append(allow, p.Masked())
	}
	return allow
}

// localPrefixes are the interface addresses with their prefix lengths;
// IPv6 link-local ones are left out (they need a zone to be used).
func localPrefixes(local []net.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range local {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		ones, _ := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out
}

// dropForwardedMesosDomain stops serving the mesos domain when a
// --forward-zone covers it: `--forward-zone mesos=10.0.0.1:61053` sends
// .mesos to mesos-dns instead (issue 11), and the fast path of every
// other zone stays on (a forward zone over a served zone turns it off).
func (c *config) dropForwardedMesosDomain() {
	if c.MesosDomain == "" {
		return
	}
	d := strings.ToLower(strings.TrimSuffix(c.MesosDomain, ".") + ".")
	for _, z := range c.Forward.Zones {
		if d == z.Name || strings.HasSuffix(d, "."+z.Name) {
			c.MesosDomain = ""
			return
		}
	}
}

// apiResolver answers the HTTP API's /v1/hosts and /v1/services as DNS
// answers a local client, as dcos-dns's do: the served zones from the
// table, every other name through the forwarder (when forwarding is on).
type apiResolver struct {
	dns     *dnsserver.Server
	fwd     *forward.Forwarder // nil: forwarding is off
	timeout time.Duration
}

func (r apiResolver) Answer(req *dns.Msg) *dns.Msg {
	if r.fwd == nil || len(req.Question) != 1 || r.dns.Serves(req.Question[0].Name) {
		return r.dns.Answer(req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	return r.fwd.Forward(ctx, req, false)
}

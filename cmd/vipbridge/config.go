package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// config is every setting of the daemon, parsed from flags and VIPBRIDGE_*
// environment variables.
type config struct {
	Marathon     []string
	Mesos        []string
	DataDir      string
	DNSAddr      string
	HTTPAddr     string
	LB           string // "none", "ipvs", "nftables" or "auto" (resolved by lbKind)
	LBInterface  string
	LBScheduler  string
	LBDrain      time.Duration
	MarathonUser string // user:password for basic auth
	TokenFile    string
	// Mesos's credentials; both empty: Marathon's.
	MesosUser      string
	MesosTokenFile string
	CAFile         string
	TTL            time.Duration
	// The mesos-dns zone: its domain ("" serves none), TTL, IP sources
	// and label rules.
	MesosDomain        string
	MesosTTL           time.Duration
	MesosIPSources     []string
	MesosEnforceRFC952 bool
	VIPRange           netip.Prefix
	VIP6Range          netip.Prefix
	ResyncInterval     time.Duration
	MesosInterval      time.Duration
	LogLevel           slog.Level
	LogFormat          string
	SimulateEvery      time.Duration // demo only
	DataDirSet         bool          // --data-dir or VIPBRIDGE_DATA_DIR given
	Forward            forwardConfig // --upstream, --forward-*, --dns-allow (resolver.go)
	Cluster            clusterConfig // --role, --etcd* (cluster.go)

	// Not flags: tests (chaos_test.go) shorten the event stream's limits;
	// 0 keeps marathon.Config's defaults (30 s idle, 16 MiB events).
	StreamIdleTimeout time.Duration
	MaxEventSize      int
	HealthGrace       time.Duration // 0: discovery's 60 s
	// MesosFailoverGrace: 0 keeps marathon.Config's 10 min.
	MesosFailoverGrace time.Duration
	// LBRepairInterval: 0 keeps the dataplane's 30 s (nftables).
	LBRepairInterval time.Duration
}

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return "VIPBRIDGE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseConfig parses args for command cmd ("run" or "demo"); a flag not
// given on the command line is taken from its VIPBRIDGE_* variable.
func parseConfig(cmd string, args []string, lookupEnv func(string) (string, bool), out io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("vipbridge "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	var marathon, mesos, vipRange, vip6Range, level string
	dnsDefault, httpDefault, lbDefault := ":53", "127.0.0.1:62080", "auto"
	if cmd == "demo" {
		dnsDefault, lbDefault = "127.0.0.1:8053", "none"
	}
	fs.StringVar(&marathon, "marathon", "", "Marathon base URLs, comma separated (tried in turn; the leader is followed; optional with --mesos)")
	fs.StringVar(&mesos, "mesos", "", "Mesos master base URLs, comma separated (tasks of other frameworks; alone, of every framework)")
	fs.StringVar(&c.DataDir, "data-dir", "/var/lib/vipbridge", "directory of the bbolt state file (demo: a temporary directory)")
	fs.StringVar(&c.DNSAddr, "dns-addr", dnsDefault, "DNS listen addresses, UDP and TCP, comma separated")
	fs.StringVar(&c.HTTPAddr, "http-addr", httpDefault, "HTTP API listen address")
	fs.StringVar(&c.LB, "lb", lbDefault, "dataplane: ipvs, nftables, none, or auto (ipvs when the kernel has IPVS, else nftables when the kernel takes its probe, else none)")
	fs.StringVar(&c.LBInterface, "lb-interface", "vipbridge0", "dummy interface through which VIP addresses are made local (ipvs)")
	fs.StringVar(&c.LBScheduler, "lb-scheduler", "wlc", "IPVS scheduler of every VIP (ipvs)")
	fs.DurationVar(&c.LBDrain, "lb-drain", 30*time.Second, "how long a TCP backend that left keeps its established connections (ipvs, nftables)")
	fs.StringVar(&c.MarathonUser, "marathon-credentials", "", "user:password for Marathon HTTP basic auth")
	fs.StringVar(&c.TokenFile, "marathon-token-file", "", "file holding a DC/OS auth token, sent as 'Authorization: token=...' (re-read when it changes)")
	fs.StringVar(&c.MesosUser, "mesos-credentials", "", "user:password for Mesos master HTTP basic auth (default: Marathon's credentials)")
	fs.StringVar(&c.MesosTokenFile, "mesos-token-file", "", "file holding a DC/OS auth token for the Mesos masters (default: Marathon's credentials)")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM CA bundle to verify Marathon and Mesos TLS certificates")
	fs.DurationVar(&c.TTL, "ttl", 5*time.Second, "TTL of DNS answers (l4lb, dcos and mesos.thisdcos.directory zones)")
	var ipSources string
	fs.StringVar(&c.MesosDomain, "mesos-domain", "mesos", "domain of the mesos-dns compatible zone; empty serves none")
	fs.DurationVar(&c.MesosTTL, "mesos-ttl", 60*time.Second, "TTL of the mesos-dns compatible zone's answers")
	fs.StringVar(&ipSources, "mesos-ip-sources", "host,netinfo", "mesos-dns IPSources for task names, in order: host, netinfo, docker, mesos")
	fs.BoolVar(&c.MesosEnforceRFC952, "mesos-enforce-rfc952", false, "normalise mesos-dns labels as RFC 952 (mesos-dns EnforceRFC952) instead of RFC 1123")
	fs.StringVar(&vipRange, "vip-range", "11.0.0.0/8", "IPv4 range for named VIP addresses")
	fs.StringVar(&vip6Range, "vip6-range", "fd01:c::/64", "IPv6 range for named VIP addresses")
	fs.DurationVar(&c.ResyncInterval, "resync-interval", 5*time.Minute, "full resync period (a resync also follows every reconnect)")
	fs.DurationVar(&c.MesosInterval, "mesos-interval", 30*time.Second, "period of the /master/state poll when the Mesos master has no operator event stream (SUBSCRIBE); a followed stream is resynced every --resync-interval")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	forwardFlags(fs, &c.Forward)
	clusterFlags(fs, &c.Cluster)
	if cmd == "demo" {
		fs.DurationVar(&c.SimulateEvery, "simulate-every", 3*time.Second, "how often the simulated cluster scales an app")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, flag.ErrHelp
		}
		return c, errUsage
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	c.Marathon = splitList(marathon)
	c.Mesos = splitList(mesos)
	c.MesosIPSources = splitList(ipSources)
	if err := c.names().Validate(); err != nil {
		return c, fmt.Errorf("--mesos-ip-sources: %w", err)
	}
	var err error
	if c.VIPRange, err = parsePrefix(vipRange, false); err != nil {
		return c, fmt.Errorf("--vip-range: %w", err)
	}
	if c.VIP6Range, err = parsePrefix(vip6Range, true); err != nil {
		return c, fmt.Errorf("--vip6-range: %w", err)
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("--log-level: %w", err)
	}
	switch c.LB {
	case "auto", "none", "ipvs", "nftables":
	default:
		return c, fmt.Errorf("--lb: want ipvs, nftables, none or auto, got %q", c.LB)
	}
	if err := c.Forward.parse(); err != nil {
		return c, err
	}
	c.dropForwardedMesosDomain()
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format: want text or json, got %q", c.LogFormat)
	}
	if err := c.Cluster.parse(c); err != nil {
		return c, err
	}
	if cmd == "run" && len(c.Marathon) == 0 && len(c.Mesos) == 0 && c.Cluster.Role != roleNode {
		return c, errors.New("--marathon or --mesos (or VIPBRIDGE_MARATHON, VIPBRIDGE_MESOS) is required")
	}
	_, envDir := lookupEnv(envName("data-dir"))
	c.DataDirSet = set["data-dir"] || envDir
	return c, nil
}

// names is the configuration of the task zones' names.
func (c config) names() discovery.NamesConfig {
	longest := "mesos.thisdcos.directory"
	if d := strings.TrimSuffix(c.MesosDomain, "."); len(d) > len(longest) {
		longest = d
	}
	return discovery.NamesConfig{IPSources: c.MesosIPSources, EnforceRFC952: c.MesosEnforceRFC952, LongestDomain: longest}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.TrimRight(p, "/"))
		}
	}
	return out
}

func parsePrefix(s string, v6 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p.Addr().Is6() != v6 {
		return p, fmt.Errorf("%s is not an IPv%s range", s, map[bool]string{false: "4", true: "6"}[v6])
	}
	return p.Masked(), nil
}

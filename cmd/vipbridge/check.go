package main

// `vipbridge check`: tests a configuration (run's flags and VIPBRIDGE_*
// environment) before it is deployed, one verdict line per item.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/lb"
)

// verdict is the outcome of one checked item.
type verdict string

const (
	verdictOK   verdict = "ok"
	verdictFail verdict = "FAIL"
	// verdictSkip means the item was not tested; the detail says why.
	verdictSkip verdict = "skip"
)

// checkLine is one line of `vipbridge check`'s report.
type checkLine struct {
	Verdict verdict
	Item    string
	Detail  string
}

func okLine(item, format string, a ...any) checkLine {
	return checkLine{verdictOK, item, fmt.Sprintf(format, a...)}
}

func failLine(item, format string, a ...any) checkLine {
	return checkLine{verdictFail, item, fmt.Sprintf(format, a...)}
}

func skipLine(item, format string, a ...any) checkLine {
	return checkLine{verdictSkip, item, fmt.Sprintf(format, a...)}
}

// checkFunc tests one part of a configuration and reports one line or
// more (one per URL, per address).
type checkFunc func(ctx context.Context, cfg config) []checkLine

// checks returns every check, in report order. A new check is one more
// entry here.
func checks() []checkFunc {
	return []checkFunc{
		checkMarathon,
		checkMesos,
		checkSnapshots,
		checkEtcd,
		checkDataplane,
		checkDNSPorts,
		checkHTTPPort,
		checkDataDir,
	}
}

// checkTimeout bounds each network check.
const checkTimeout = 10 * time.Second

// runCheck is `vipbridge check [run's flags]`: it runs every check of
// checks and prints one line per item; any FAIL makes it return an
// error (exit status 1).
func runCheck(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, err := parseConfig("check", args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(cfg.Marathon) == 0 && len(cfg.Mesos) == 0 && cfg.Cluster.Role != roleNode {
		return errors.New("--marathon or --mesos (or VIPBRIDGE_MARATHON, VIPBRIDGE_MESOS) is required")
	}
	failed := 0
	for _, check := range checks() {
		for _, l := range check(ctx, cfg) {
			fmt.Fprintf(stdout, "%-4s  %-20s %s\n", l.Verdict, l.Item, l.Detail)
			if l.Verdict == verdictFail {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d item(s) failed", failed)
	}
	fmt.Fprintln(stdout, "every check passed")
	return nil
}

// checkDataplane tests the kernel support --lb needs: IPVS for ipvs; for
// auto, whether the daemon will run with IPVS or without a dataplane.
func checkDataplane(_ context.Context, cfg config) []checkLine {
	const item = "dataplane"
	if cfg.LB == "none" {
		return []checkLine{skipLine(item, "--lb none: no dataplane")}
	}
	ipvsErr := lb.CheckIPVS()
	if cfg.LB == "ipvs" {
		if ipvsErr != nil {
			return []checkLine{failLine(item, "--lb ipvs: %v", ipvsErr)}
		}
		return []checkLine{okLine(item, "--lb ipvs: the kernel has IPVS")}
	}
	if cfg.LB == "auto" && ipvsErr == nil {
		return []checkLine{okLine(item, "--lb auto: the kernel has IPVS, the daemon will use it")}
	}
	nftErr := lb.ProbeNFTables()
	switch {
	case cfg.LB == "nftables" && nftErr != nil:
		return []checkLine{failLine(item, "--lb nftables: %v", nftErr)}
	case cfg.LB == "nftables":
		return []checkLine{okLine(item, "--lb nftables: the kernel takes the nftables dataplane's probe")}
	case nftErr == nil:
		return []checkLine{okLine(item, "--lb auto: no IPVS (%v); the kernel takes the nftables probe, the daemon will use nftables", ipvsErr)}
	}
	return []checkLine{skipLine(item, "--lb auto: no IPVS (%v) and no nftables (%v): the daemon will run without a dataplane", ipvsErr, nftErr)}
}

// checkDNSPorts binds every --dns-addr, UDP and TCP, and lets it go.
func checkDNSPorts(_ context.Context, cfg config) []checkLine {
	var out []checkLine
	for _, addr := range splitList(cfg.DNSAddr) {
		if err := bindUDP(addr); err != nil {
			out = append(out, failLine("dns port", "%s udp: %v%s", addr, err, bindHint(err)))
			continue
		}
		if err := bindTCP(addr); err != nil {
			out = append(out, failLine("dns port", "%s tcp: %v%s", addr, err, bindHint(err)))
			continue
		}
		out = append(out, okLine("dns port", "%s: bindable, udp and tcp", addr))
	}
	return out
}

// checkHTTPPort binds --http-addr and lets it go.
func checkHTTPPort(_ context.Context, cfg config) []checkLine {
	if err := bindTCP(cfg.HTTPAddr); err != nil {
		return []checkLine{failLine("http port", "%s: %v%s", cfg.HTTPAddr, err, bindHint(err))}
	}
	return []checkLine{okLine("http port", "%s: bindable", cfg.HTTPAddr)}
}

func bindUDP(addr string) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func bindTCP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// bindHint says what usually causes a bind error.
func bindHint(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
	case strings.Contains(err.Error(), "address already in use"):
		return " (another process, a running vipbridge or a local resolver, has it)"
	}
	return ""
}

// checkDataDir tests that the daemon can create its state file in
// --data-dir without creating anything: in the directory if it exists,
// else in its nearest existing parent, where the daemon would create it.
func checkDataDir(_ context.Context, cfg config) []checkLine {
	const item = "data dir"
	dir := filepath.Clean(cfg.DataDir)
	missing := ""
	for {
		fi, err := os.Stat(dir)
		if err == nil && !fi.IsDir() {
			return []checkLine{failLine(item, "%s: %s is not a directory", cfg.DataDir, dir)}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(dir) == dir {
			return []checkLine{failLine(item, "%v", err)}
		}
		missing, dir = dir, filepath.Dir(dir)
	}
	f, err := os.CreateTemp(dir, ".vipbridge-check-*")
	if err != nil {
		return []checkLine{failLine(item, "%s: not writable: %v", cfg.DataDir, err)}
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return []checkLine{failLine(item, "remove %s: %v", name, err)}
	}
	if missing != "" {
		return []checkLine{okLine(item, "%s: does not exist yet; the daemon can create it in %s", cfg.DataDir, dir)}
	}
	return []checkLine{okLine(item, "%s: writable", cfg.DataDir)}
}

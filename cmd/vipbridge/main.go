// Command vipbridge is the vipbridge daemon: it follows Marathon's event
// stream and Mesos state, answers DNS for the l4lb.thisdcos.directory zone
// with stable virtual IPs and serves the /records HTTP API.
//
//	vipbridge run  --marathon http://marathon:8080 [flags]   the daemon
//	vipbridge demo                                          the daemon against a simulated cluster
//	vipbridge vips [NAME]                                   a running daemon's VIPs, as ipvsadm -Ln
//	vipbridge check [flags]                                 test run's configuration before deploying it
//	vipbridge version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "vipbridge:", err)
	}
	if err != nil {
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `vipbridge: Marathon/Mesos service discovery with stable virtual IPs

Usage:
  vipbridge run [flags]    run the daemon (vipbridge run -h lists the flags)
  vipbridge demo [flags]   run the daemon against a built-in simulated Marathon and Mesos
  vipbridge zone [flags]   print a running daemon's zone as an RFC 1035 master file
  vipbridge vips [NAME]    print a running daemon's VIPs and backends as ipvsadm -Ln does
                           (NAME: web.marathon or web.marathon.l4lb.thisdcos.directory)
  vipbridge check [flags]  test a configuration (run's flags and VIPBRIDGE_* environment)
                           before deploying it: one line per item, exit 1 if any fails
  vipbridge version        print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "run":
		cfg, err := parseConfig("run", args[1:], os.LookupEnv, stderr)
		if err != nil {
			return err
		}
		return runDaemon(ctx, cfg, stderr, nil)
	case "demo":
		cfg, err := parseConfig("demo", args[1:], os.LookupEnv, stderr)
		if err != nil {
			return err
		}
		return runDemo(ctx, cfg, stdout, stderr)
	case "zone":
		return runZone(ctx, args[1:], stdout, stderr)
	case "vips":
		return runVIPs(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, args[1:], os.LookupEnv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "vipbridge", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "vipbridge: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

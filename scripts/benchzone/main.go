// Command benchzone is the helper of scripts/bench-dns.sh and of
// TestBenchPropagation (scripts/bench-propagation.sh). It has two modes:
//
//	benchzone serve -apps 10000 -urls FILE
//	    runs the simulated Marathon + Mesos (marathontest) with that many
//	    apps, one task and one named VIP each (/appNNNNN:80), writes
//	    "MARATHON=<url>\nMESOS=<url>\n" to FILE once it serves, and stops on
//	    SIGINT/SIGTERM;
//	benchzone serve -apps 10000 -tasks 1 -probe /probe -control 127.0.0.1:0 -urls FILE
//	    the same with marathontest.SizedScenario(apps, tasks) instead
//	    (/load/appNNNNN), an app -probe with no task and one named VIP
//	    (<probe>:80), and a loopback HTTP control API (control.go) whose
//	    URL is written to FILE as "CONTROL=<url>": the simulator of the
//	    propagation benchmark, in its own process as real Marathon is;
//	benchzone queries -zone FILE -n 200000 -o FILE
//	    writes a dnsperf query file from a zone file: 90 % existing names
//	    (A 70 %, AAAA 10 %, SRV 10 % of all) and 10 % names that do not
//	    exist (NXDOMAIN), names drawn with a fixed seed;
//	benchzone taskqueries -mesos FILE -dcos FILE [-mirror FILE] -n 200000 -o FILE
//	    writes the task-name mix (taskmix.go) from the task zones' files
//	    (GET /v1/zone?zone=mesos, dcos.thisdcos.directory and
//	    mesos.thisdcos.directory): A and SRV of task names in the mesos zone
//	    and autoip, canonical and .slave names, the mirror, 10 % NXDOMAIN.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchzone:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchzone serve|queries|taskqueries [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "serve":
		var o serveOpts
		fs.IntVar(&o.apps, "apps", 10000, "apps, one named VIP each")
		fs.IntVar(&o.tasks, "tasks", 0, "tasks per app: > 0 serves marathontest.SizedScenario(apps, tasks)")
		fs.StringVar(&o.probe, "probe", "", "id of an extra app with no task and one named VIP (<id>:80)")
		fs.StringVar(&o.control, "control", "", "loopback address of the control API (e.g. 127.0.0.1:0)")
		fs.StringVar(&o.urls, "urls", "", "file to write the simulator URLs to")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if o.urls == "" {
			return errors.New("serve: -urls is required")
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, o)
	case "queries":
		zone := fs.String("zone", "", "zone file written by vipbridge zone")
		n := fs.Int("n", 200000, "queries")
		out := fs.String("o", "", "query file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return queries(*zone, *n, *out)
	case "taskqueries":
		mesos := fs.String("mesos", "", "the mesos zone's file")
		dcos := fs.String("dcos", "", "the dcos.thisdcos.directory zone's file")
		mirror := fs.String("mirror", "", "the mesos.thisdcos.directory zone's file (optional)")
		n := fs.Int("n", 200000, "queries")
		out := fs.String("o", "", "query file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *mesos == "" || *dcos == "" || *out == "" {
			return errors.New("taskqueries: -mesos, -dcos and -o are required")
		}
		return taskQueries(*mesos, *dcos, *mirror, *n, *out)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// scenario is n host-networked apps with one task and VIP each, spread
// over 10 loopback agents.
func scenario(n int) *marathontest.Scenario {
	sc := &marathontest.Scenario{}
	for i := range 10 {
		sc.Agents = append(sc.Agents, marathontest.Agent{IP: netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})})
	}
	for i := range n {
		sc.Apps = append(sc.Apps, marathontest.AppSpec{
			ID:        fmt.Sprintf("/app%05d", i),
			Instances: 1,
			Ports: []marathontest.PortSpec{{
				Name:   "http",
				Labels: map[string]string{"VIP_0": fmt.Sprintf("/app%05d:80", i)},
			}},
		})
	}
	return sc
}

type serveOpts struct {
	apps, tasks          int
	probe, control, urls string
}

// serve runs the simulator (and the control API) until ctx ends.
func serve(ctx context.Context, o serveOpts) error {
	sc := scenario(o.apps)
	var opts []marathontest.Option
	if o.tasks > 0 {
		sc = marathontest.SizedScenario(o.apps, o.tasks)
	}
	if o.control != "" {
		// Bursts wait for room in the stream rather than drop; a deep
		// queue keeps the daemon's reads, not the buffer, the limit.
		opts = append(opts, marathontest.WithMaxOutstanding(1<<16))
	}
	sim, err := marathontest.Start(sc, opts...)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()
	if o.probe != "" {
		if err := sim.AddApp(marathontest.AppSpec{ID: o.probe, Instances: 0,
			Ports: []marathontest.PortSpec{{Labels: map[string]string{"VIP_0": o.probe + ":80"}}}}); err != nil {
			return fmt.Errorf("add probe app: %w", err)
		}
	}
	body := "MARATHON=" + sim.URL() + "\nMESOS=" + sim.MesosURL() + "\n"
	if o.control != "" {
		ctl, err := startControl(ctx, sim, o.control)
		if err != nil {
			return err
		}
		defer ctl.close()
		body += "CONTROL=" + ctl.url + "\n"
	}
	if err := os.WriteFile(o.urls+".tmp", []byte(body), 0o644); err != nil {
		return err
	}
	if err := os.Rename(o.urls+".tmp", o.urls); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func queries(zoneFile string, n int, out string) error {
	f, err := os.Open(zoneFile)
	if err != nil {
		return err
	}
	defer f.Close()
	var names, srvs []string
	var origin string
	zp := dns.NewZoneParser(f, "", zoneFile)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			origin = rr.Header().Name
		case dns.TypeA:
			names = append(names, rr.Header().Name)
		case dns.TypeSRV:
			srvs = append(srvs, rr.Header().Name)
		}
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("parse %s: %w", zoneFile, err)
	}
	if len(names) == 0 || len(srvs) == 0 {
		return fmt.Errorf("%s: no A or SRV records", zoneFile)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for i := range n {
		switch r := i % 10; {
		case r < 7:
			fmt.Fprintf(bw, "%s A\n", names[rng.IntN(len(names))])
		case r == 7:
			fmt.Fprintf(bw, "%s AAAA\n", names[rng.IntN(len(names))])
		case r == 8:
			fmt.Fprintf(bw, "%s SRV\n", srvs[rng.IntN(len(srvs))])
		default:
			fmt.Fprintf(bw, "missing%06d.marathon.%s A\n", rng.IntN(1000000), strings.TrimSuffix(origin, ".")+".")
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}

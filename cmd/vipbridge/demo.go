package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"text/template"

	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// demoScenario is the built-in scenario: host, bridge and container
// networking, named VIPs and an IP VIP, one non-Marathon framework.
const demoScenario = "demo"

var demoHints = template.Must(template.New("hints").Parse(`
vipbridge demo is running against a simulated Marathon ({{.Marathon}}) and Mesos ({{.Mesos}}).
State lives in {{.DataDir}} (removed on exit); the simulated cluster scales an app every {{.Every}}.

Try:
  dig @{{.DNSHost}} -p {{.DNSPort}} shopweb.marathon.l4lb.thisdcos.directory +short
  dig @{{.DNSHost}} -p {{.DNSPort}} _shopweb._tcp.marathon.l4lb.thisdcos.directory SRV +short
  dig @{{.DNSHost}} -p {{.DNSPort}} nosuchapp.marathon.l4lb.thisdcos.directory
  dig @{{.DNSHost}} -p {{.DNSPort}} web.marathon.mesos +short
  dig @{{.DNSHost}} -p {{.DNSPort}} postgres-db.marathon.autoip.dcos.thisdcos.directory +short
    (mesos-dns and dcos-dns names use the Mesos task name: app /db/postgres → postgres-db)
  curl -s http://{{.HTTP}}/records
  curl -s http://{{.HTTP}}/v1/vips
  open http://{{.HTTP}}/ui/ in a browser: the live status page
  curl -s http://{{.HTTP}}/metrics | grep ^vipbridge_

Press Ctrl-C to stop.
`))

// runDemo starts the simulator, then the daemon against it, and keeps
// changing the simulated cluster until ctx ends.
func runDemo(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	sc, err := marathontest.LoadScenario(demoScenario)
	if err != nil {
		return fmt.Errorf("load demo scenario: %w", err)
	}
	sim, err := marathontest.Start(sc)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()

	if !cfg.DataDirSet {
		dir, err := os.MkdirTemp("", "vipbridge-demo-")
		if err != nil {
			return fmt.Errorf("create demo data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	cfg.Marathon = []string{sim.URL()}
	cfg.Mesos = []string{sim.MesosURL()}

	ready := make(chan listening, 1)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runDaemon(ctx, cfg, stderr, ready) })
	g.Go(func() error {
		select {
		case l := <-ready:
			host, port, _ := net.SplitHostPort(l.DNS.String())
			_ = demoHints.Execute(stdout, map[string]any{
				"Marathon": sim.URL(), "Mesos": sim.MesosURL(), "DataDir": cfg.DataDir, "Every": cfg.SimulateEvery,
				"DNSHost": host, "DNSPort": port, "HTTP": l.HTTP.String(),
			})
		case <-ctx.Done():
			return nil
		}
		return sim.Simulate(ctx, cfg.SimulateEvery, rand.New(rand.NewPCG(1, 2)))
	})
	return g.Wait()
}

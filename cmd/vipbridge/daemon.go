package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster"
	"github.com/vipbridge/vipbridge/discovery/store"
	"github.com/vipbridge/vipbridge/dnsserver"
	"github.com/vipbridge/vipbridge/lb"
	"github.com/vipbridge/vipbridge/marathon"
)

// listening reports the bound addresses once both servers listen; tests and
// the demo use it to learn ports chosen with ":0".
type listening struct {
	DNS  net.Addr
	HTTP net.Addr
	// Reconciler is the running reconciler, for in-process benchmarks.
	Reconciler *discovery.Reconciler
	// Dataplane is the running dataplane, for in-process benchmarks.
	Dataplane discovery.Dataplane
	// Node is the etcd-fed table of --role node (cluster.go), for
	// in-process tests and benchmarks.
	Node *cluster.Node
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// streamWait is how long the first snapshots wait for Marathon's event
// stream to connect (discovery.Config.StreamWait): on a healthy cluster
// it connects in milliseconds; with Marathon down, the stored state is
// served meanwhile.
const streamWait = 2 * time.Second

// runDaemon runs every part of vipbridge until ctx ends or one part fails.
// ready, if not nil, receives the listening addresses once.
func runDaemon(ctx context.Context, cfg config, logw io.Writer, ready chan<- listening) error {
	log := newLogger(cfg, logw)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "vipbridge.db"), store.Config{Timeout: time.Second, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close() // after rec.Run, which flushes it once on its way out

	// The dataplane --lb chose: IPVS runs beside the reconciler and
	// reports its state to the API; None only takes the tables.
	var (
		dataplane discovery.Dataplane = &lb.None{}
		states    httpapi.Dataplane
		ipvs      *lb.IPVS
	)
	if lbKind(cfg, log) == "ipvs" {
		if ipvs, err = newIPVS(cfg, reg, log); err != nil {
			return err
		}
		defer ipvs.Close()
		dataplane, states = ipvs, ipvs
	}
	// --role node serves from etcd alone; --role publisher adds etcd to
	// what follows (cluster.go).
	if cfg.Cluster.Role == roleNode {
		return runNode(ctx, cfg, log, reg, dataplane, states, ipvs, ready)
	}
	role, err := newClusterRole(cfg, reg, log, dataplane)
	if err != nil {
		return err
	}
	defer role.close()

	// Marathon's and Mesos's snapshots feed the reconciler, which then
	// takes Marathon's event stream.
	client, err := marathon.New(marathon.Config{
		MarathonURLs:       cfg.Marathon,
		MesosURLs:          cfg.Mesos,
		BasicAuth:          cfg.MarathonUser,
		TokenFile:          cfg.TokenFile,
		MesosBasicAuth:     cfg.MesosUser,
		MesosTokenFile:     cfg.MesosTokenFile,
		MesosFailoverGrace: cfg.MesosFailoverGrace,
		CAFile:             cfg.CAFile,
		MesosInterval:      cfg.MesosInterval,
		IdleTimeout:        cfg.StreamIdleTimeout,
		MaxEventSize:       cfg.MaxEventSize,
		Registerer:         reg,
		Logger:             log,
	})
	if err != nil {
		return err
	}
	// Without --marathon (Mesos-only mode) there is no event stream: the
	// Mesos source, polled, has every framework's tasks.
	var sources []discovery.SourceConfig
	wait := time.Duration(0)
	if m := client.Marathon(); m != nil {
		sources = append(sources, discovery.SourceConfig{Name: "marathon", Source: m, Interval: cfg.ResyncInterval})
		wait = streamWait
	}
	// The Mesos source follows the leading master's operator stream
	// (polling its state when it has none).
	mesos := client.MesosStream()
	if mesos != nil {
		sources = append(sources, discovery.SourceConfig{Name: marathon.MesosSource, Source: mesos, Interval: cfg.MesosInterval})
	}
	rec, err := discovery.NewReconciler(discovery.Config{
		Store:       db,
		Sources:     sources,
		Dataplane:   role.reconcilerDataplane(dataplane),
		Alloc:       discovery.AllocConfig{V4: cfg.VIPRange, V6: cfg.VIP6Range},
		Names:       cfg.names(),
		HealthGrace: cfg.HealthGrace,
		Registerer:  reg,
		Logger:      log,
		StreamWait:  wait,
	})
	if err != nil {
		return err
	}
	var events interface{ Run(context.Context) error }
	if client.Marathon() != nil {
		events = client.Stream(rec)
	}

	fwd, allow, err := newForwarder(cfg, reg, log)
	if err != nil {
		return err
	}
	if fwd != nil {
		defer fwd.Close() // after dns.Run, which stops forwarding
	}
	dnsReady := make(chan net.Addr, 1)
	dnsCfg := dnsserver.Config{
		Addr:        cfg.DNSAddr,
		TTL:         cfg.TTL,
		MesosDomain: cfg.MesosDomain,
		MesosTTL:    cfg.MesosTTL,
		Tables:      role.tables(rec),
		Registerer:  reg,
		Logger:      log,
		Ready:       func(udp, _ net.Addr) { dnsReady <- udp },
		Allow:       allow,
	}
	if fwd != nil { // a nil *forward.Forwarder must not become a non-nil interface
		dnsCfg.Forwarder = fwd
	}
	dns, err := dnsserver.New(dnsCfg)
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w", cfg.HTTPAddr, err)
	}
	api := httpapi.NewServer(httpLn, httpapi.New(httpapi.Config{
		Tables: role.tables(rec), Dataplane: states, TTL: cfg.TTL, Version: version, Gatherer: reg, Logger: log,
		Resolver: apiResolver{dns: dns, fwd: fwd, timeout: cfg.Forward.Timeout}, MesosDomain: cfg.MesosDomain, MesosTTL: cfg.MesosTTL, MesosRefresh: cfg.MesosInterval,
		Settings: cfg,
	}), log)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rec.Run(ctx) })
	role.start(ctx, g, rec, reg, log)
	if events != nil {
		g.Go(func() error { return events.Run(ctx) })
	}
	if mesos != nil {
		g.Go(func() error { return mesos.Run(ctx, rec) })
	}
	g.Go(func() error { return dns.Run(ctx) })
	g.Go(func() error { return api.Run(ctx) })
	if ipvs != nil {
		g.Go(func() error { return ipvs.Run(ctx) })
	}
	g.Go(func() error {
		select {
		case addr := <-dnsReady:
			log.Info("vipbridge started", "version", version, "dns", addr.String(), "http", httpLn.Addr().String(),
				"data_dir", cfg.DataDir, "marathon", len(cfg.Marathon), "mesos", len(cfg.Mesos))
			if ready != nil {
				ready <- listening{DNS: addr, HTTP: httpLn.Addr(), Reconciler: rec, Dataplane: dataplane}
			}
		case <-ctx.Done():
		}
		return nil
	})
	return g.Wait()
}

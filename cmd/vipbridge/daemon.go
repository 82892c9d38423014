package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster"
	"github.com/vipbridge/vipbridge/dnsserver"
	"github.com/vipbridge/vipbridge/lb"
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
	sd := newSystemd(log) // systemd.go: readiness, status, watchdog
	socks, err := takeActivated(splitList(cfg.DNSAddr), cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer socks.close() // each user closed its own; a no-op then
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}

	// The dataplane --lb chose: IPVS and nftables run beside the
	// reconciler and report their state to the API; None only takes the
	// tables.
	var (
		dataplane discovery.Dataplane = &lb.None{}
		states    httpapi.Dataplane
		ipvs      *lb.IPVS
		nft       *lb.NFTables
	)
	cfg.LB = lbKind(cfg, log) // /v1/config shows the dataplane chosen
	if cfg.LB == "ipvs" {
		if ipvs, err = newIPVS(cfg, reg, log); err != nil {
			return err
		}
		defer ipvs.Close()
		dataplane, states = ipvs, ipvs
	}
	if cfg.LB == "nftables" {
		if nft, err = newNFTables(cfg, reg, log); err != nil {
			return err
		}
		defer nft.Close()
		dataplane, states = nft, nft
	}

	// In cluster mode (cluster.go) DNS, the API and the dataplane serve
	// what etcd holds; a publisher also follows Marathon and Mesos, a node
	// never does.
	role, err := newClusterRole(cfg, reg, log, dataplane)
	if err != nil {
		return err
	}
	defer role.close()
	var up *upstream
	if cfg.Cluster.Role != roleNode {
		if up, err = newUpstream(cfg, role.reconcilerDataplane(dataplane), sd, reg, log); err != nil {
			return err
		}
		defer up.close() // after rec.Run, which flushes the store once on its way out
	}
	served := role.tables(up)

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
		Tables:      served,
		Registerer:  reg,
		Logger:      log,
		Ready:       func(udp, tcp net.Addr) { dnsReady <- firstAddr(udp, tcp) },
		Allow:       allow,
		PacketConns: socks.dnsUDP,
		Listeners:   socks.dnsTCP,
	}
	if fwd != nil { // a nil *forward.Forwarder must not become a non-nil interface
		dnsCfg.Forwarder = fwd
	}
	dns, err := dnsserver.New(dnsCfg)
	if err != nil {
		return err
	}
	httpLn := socks.http
	if httpLn == nil {
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen http on %s: %w", cfg.HTTPAddr, err)
		}
	}
	// The status page's live feed (/ui/, /v1/watch).
	feed, err := httpapi.NewFeed(httpapi.FeedConfig{Tables: served, Dataplane: states, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	api := httpapi.NewServer(httpLn, httpapi.New(httpapi.Config{
		Tables: served, Dataplane: states, TTL: cfg.TTL, Version: version, DataplaneKind: cfg.LB, Gatherer: reg, Logger: log,
		Resolver: apiResolver{dns: dns, fwd: fwd, timeout: cfg.Forward.Timeout}, MesosDomain: cfg.MesosDomain, MesosTTL: cfg.MesosTTL, MesosRefresh: cfg.MesosInterval,
		Settings: cfg, Feed: feed, Cluster: role.api(),
	}), log)

	g, ctx := errgroup.WithContext(ctx)
	var rec *discovery.Reconciler
	if up != nil {
		rec = up.rec
		up.start(ctx, g)
	}
	role.start(ctx, g, rec, reg, log)
	g.Go(func() error { return dns.Run(ctx) })
	g.Go(func() error { return api.Run(ctx) })
	g.Go(func() error { return feed.Run(ctx) })
	if ipvs != nil {
		g.Go(func() error { return ipvs.Run(ctx) })
	}
	if nft != nil {
		g.Go(func() error { return nft.Run(ctx) })
	}
	started := make(chan struct{})
	g.Go(func() error { return sd.run(ctx, served, started) })
	g.Go(func() error {
		select {
		case addr := <-dnsReady:
			log.Info("vipbridge started", "version", version, "role", cmp.Or(cfg.Cluster.Role, roleSingle), "dns", addr.String(),
				"http", httpLn.Addr().String(), "data_dir", cfg.DataDir, "marathon", len(cfg.Marathon), "mesos", len(cfg.Mesos))
			close(started)
			if ready != nil {
				ready <- listening{DNS: addr, HTTP: httpLn.Addr(), Reconciler: rec, Dataplane: dataplane, Node: role.nodeTables()}
			}
		case <-ctx.Done():
		}
		return nil
	})
	return g.Wait()
}

// firstAddr is the first of addrs that is not nil.
func firstAddr(addrs ...net.Addr) net.Addr {
	for _, a := range addrs {
		if a != nil {
			return a
		}
	}
	return nil
}

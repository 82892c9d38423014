package main

// The daemon's upstream half (single-node mode and --role publisher): the
// store, the Marathon and Mesos client, and the reconciler that turns
// their snapshots and events into Tables. --role node has none of it.

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/store"
	"github.com/vipbridge/vipbridge/marathon"
)

// upstream is the reconciler with what feeds it.
type upstream struct {
	db     *store.DB
	rec    *discovery.Reconciler
	events interface{ Run(context.Context) error } // Marathon's event stream; nil in Mesos-only mode
	mesos  *marathon.MesosStream                   // nil without --mesos
}

// newUpstream opens the store and builds the reconciler over Marathon's
// and Mesos's sources; dp is the dataplane the reconciler applies (nil
// when a cluster node programs it).
func newUpstream(cfg config, dp discovery.Dataplane, sd *systemd, reg prometheus.Registerer, log *slog.Logger) (*upstream, error) {
	db, err := store.Open(filepath.Join(cfg.DataDir, "vipbridge.db"), store.Config{Timeout: time.Second, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	u := &upstream{db: db}
	if err := u.build(cfg, dp, sd, reg, log); err != nil {
		db.Close()
		return nil, err
	}
	return u, nil
}

func (u *upstream) build(cfg config, dp discovery.Dataplane, sd *systemd, reg prometheus.Registerer, log *slog.Logger) error {
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
	// Without --marathon (Mesos-only mode) there is no Marathon event
	// stream: the Mesos source has every framework's tasks.
	var sources []discovery.SourceConfig
	wait := time.Duration(0)
	if m := client.Marathon(); m != nil {
		sources = append(sources, discovery.SourceConfig{Name: "marathon", Source: m, Interval: cfg.ResyncInterval})
		wait = streamWait
	}
	// The Mesos source follows the leading master's operator stream and
	// is resynced as rarely as Marathon's; a master without the stream is
	// polled every --mesos-interval (the source asks for those resyncs).
	if u.mesos = client.MesosStream(); u.mesos != nil {
		sources = append(sources, discovery.SourceConfig{Name: marathon.MesosSource, Source: u.mesos, Interval: cfg.ResyncInterval})
	}
	u.rec, err = discovery.NewReconciler(discovery.Config{
		Store:       u.db,
		Sources:     sources,
		Dataplane:   dp,
		Alloc:       discovery.AllocConfig{V4: cfg.VIPRange, V6: cfg.VIP6Range},
		Names:       cfg.names(),
		HealthGrace: cfg.HealthGrace,
		Registerer:  reg,
		Logger:      log,
		StreamWait:  wait,

		Heartbeat:      sd.heartbeat(),
		HeartbeatEvery: sd.heartbeatEvery(),
	})
	if err != nil {
		return err
	}
	if client.Marathon() != nil {
		u.events = client.Stream(u.rec)
	}
	return nil
}

// start runs the reconciler and the streams that feed it in g.
func (u *upstream) start(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return u.rec.Run(ctx) })
	if u.events != nil {
		g.Go(func() error { return u.events.Run(ctx) })
	}
	if u.mesos != nil {
		g.Go(func() error { return u.mesos.Run(ctx, u.rec) })
	}
}

// close closes the store, once the reconciler has flushed it on its way
// out of Run.
func (u *upstream) close() { u.db.Close() }

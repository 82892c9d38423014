package main

// Cluster mode's wiring (--role publisher, --role node; README "Cluster
// mode"): the etcd flags, the etcd client, the node that feeds DNS, the
// API and the dataplane from etcd, and the publisher that writes the
// reconciler's Tables to etcd while it is elected. A node follows neither
// Marathon nor Mesos: runDaemon builds no upstream (upstream.go) for it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster"
)

// The roles of --role.
const (
	roleSingle    = "single"
	rolePublisher = "publisher"
	roleNode      = "node"
)

// clusterConfig is the --role and --etcd-* flags. The TLS and credentials
// files are paths; their contents are never logged or shown.
type clusterConfig struct {
	Role                string
	Etcd                []string
	EtcdPrefix          string
	EtcdCAFile          string
	EtcdCertFile        string
	EtcdKeyFile         string
	EtcdCredentialsFile string
	EtcdSessionTTL      time.Duration

	etcd string // --etcd as given
	// Not flags: in-process tests and benchmarks skip the node cache's
	// fsync, and name their publishers.
	CacheNoSync bool
	PublisherID string
}

func clusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	fs.StringVar(&c.Role, "role", roleSingle, "single (follow Marathon and Mesos alone), publisher (follow them; write the table to etcd while elected) or node (serve what etcd holds; never talk to Marathon or Mesos)")
	fs.StringVar(&c.etcd, "etcd", "", "etcd client URLs, comma separated (--role publisher and node)")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", cluster.DefaultPrefix, "prefix of every etcd key vipbridge reads or writes, the election's included")
	fs.StringVar(&c.EtcdCAFile, "etcd-ca-file", "", "PEM CA bundle to verify etcd's certificates")
	fs.StringVar(&c.EtcdCertFile, "etcd-cert-file", "", "PEM client certificate for etcd (with --etcd-key-file)")
	fs.StringVar(&c.EtcdKeyFile, "etcd-key-file", "", "PEM client key for etcd")
	fs.StringVar(&c.EtcdCredentialsFile, "etcd-credentials-file", "", "file holding user:password for etcd's authentication")
	fs.DurationVar(&c.EtcdSessionTTL, "etcd-session-ttl", 5*time.Second, "the publishers' election lease: how long a crashed leader keeps the election")
}

// parse checks the role against the other flags.
func (c *clusterConfig) parse(cfg config) error {
	c.Etcd = splitList(c.etcd)
	switch c.Role {
	case roleSingle:
		if len(c.Etcd) > 0 {
			return errors.New("--etcd needs --role publisher or --role node")
		}
		return nil
	case rolePublisher, roleNode:
	default:
		return fmt.Errorf("--role: want single, publisher or node, got %q", c.Role)
	}
	if len(c.Etcd) == 0 {
		return fmt.Errorf("--role %s needs --etcd", c.Role)
	}
	if c.Role == roleNode && (len(cfg.Marathon) > 0 || len(cfg.Mesos) > 0) {
		return errors.New("--role node never talks to Marathon or Mesos: drop --marathon and --mesos")
	}
	if c.EtcdSessionTTL < 2*time.Second {
		return errors.New("--etcd-session-ttl: at least 2s (etcd's minimum lease)")
	}
	return nil
}

// clusterRole is a publisher's or node's etcd part; nil in single-node
// mode, where every method does what single-node mode does.
type clusterRole struct {
	cfg  clusterConfig
	cli  *clientv3.Client
	node *cluster.Node
}

// newClusterRole connects to etcd (lazily) and loads the node's cache; dp
// is the dataplane the node programs.
func newClusterRole(cfg config, reg prometheus.Registerer, log *slog.Logger, dp discovery.Dataplane) (*clusterRole, error) {
	c := cfg.Cluster
	if c.Role == roleSingle || c.Role == "" {
		return nil, nil
	}
	cli, err := cluster.NewClient(cluster.ClientConfig{Endpoints: c.Etcd, CAFile: c.EtcdCAFile, CertFile: c.EtcdCertFile,
		KeyFile: c.EtcdKeyFile, CredentialsFile: c.EtcdCredentialsFile})
	if err != nil {
		return nil, err
	}
	node, err := cluster.NewNode(cluster.NodeConfig{Client: cli, Prefix: c.EtcdPrefix, CachePath: filepath.Join(cfg.DataDir, "cluster.db"),
		CacheNoSync: c.CacheNoSync, Dataplane: dp, Registerer: reg, Logger: log})
	if err != nil {
		cli.Close()
		return nil, err
	}
	role := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vipbridge_cluster_role", Help: "1, labelled with this daemon's --role.",
		ConstLabels: prometheus.Labels{"role": c.Role}})
	role.Set(1)
	if reg != nil {
		if err := reg.Register(role); err != nil {
			cli.Close()
			return nil, fmt.Errorf("register cluster role: %w", err)
		}
	}
	log.Info("cluster mode", "role", c.Role, "etcd_endpoints", len(c.Etcd), "prefix", c.EtcdPrefix,
		"tls", c.EtcdCAFile != "" || c.EtcdCertFile != "", "auth", c.EtcdCredentialsFile != "")
	return &clusterRole{cfg: c, cli: cli, node: node}, nil
}

func (c *clusterRole) close() {
	if c != nil {
		c.cli.Close()
	}
}

// reconcilerDataplane is the reconciler's dataplane: in cluster mode the
// node programs it from etcd, so the reconciler gets none.
func (c *clusterRole) reconcilerDataplane(dp discovery.Dataplane) discovery.Dataplane {
	if c == nil {
		return dp
	}
	return nil
}

// servedTables is what DNS, the API and systemd's status serve from.
type servedTables interface {
	Table() *discovery.Table
	Status() discovery.Status
	Subscribe() (<-chan struct{}, func())
}

// tables is what DNS, the API and systemd's status serve: the upstream's
// reconciler alone, or in cluster mode what etcd holds, so every daemon
// answers with the cluster's addresses (a publisher adds the task zones
// of its reconciler: publishertables.go).
func (c *clusterRole) tables(up *upstream) servedTables {
	switch {
	case c == nil:
		return up.rec
	case up != nil: // a publisher: its own task zones too
		return &publisherTables{node: c.node, rec: up.rec}
	}
	return c.node
}

// nodeTables is the etcd-fed table (nil in single-node mode), for
// in-process tests and benchmarks.
func (c *clusterRole) nodeTables() *cluster.Node {
	if c == nil {
		return nil
	}
	return c.node
}

// start runs the node and, for a publisher, the publisher of rec's
// Tables, in g; a publisher that cannot be built fails g.
func (c *clusterRole) start(ctx context.Context, g *errgroup.Group, rec *discovery.Reconciler, reg prometheus.Registerer, log *slog.Logger) {
	if c == nil {
		return
	}
	g.Go(func() error { return c.node.Run(ctx) })
	if c.cfg.Role != rolePublisher {
		return
	}
	id := c.cfg.PublisherID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), version)
	}
	pub, err := cluster.NewPublisher(cluster.PublisherConfig{Client: c.cli, Prefix: c.cfg.EtcdPrefix, ID: id, Tables: rec,
		SessionTTL: c.cfg.EtcdSessionTTL, Registerer: reg, Logger: log})
	if err != nil {
		g.Go(func() error { return err })
		return
	}
	g.Go(func() error { return pub.Run(ctx) })
}

// ClusterState implements httpapi.Cluster.
func (c *clusterRole) ClusterState() httpapi.ClusterState {
	st := c.node.State()
	return httpapi.ClusterState{Role: c.cfg.Role, Leader: st.Leader, Revision: st.Revision, AppliedAt: st.AppliedAt, Connected: st.Connected}
}

// api is the API's httpapi.Cluster: nil in single-node mode.
func (c *clusterRole) api() httpapi.Cluster {
	if c == nil {
		return nil
	}
	return c
}

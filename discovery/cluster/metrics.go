package cluster

// The cluster roles' metrics: a node's applied revision, its age, etcd
// connectivity and the leading publisher; a publisher's leadership,
// writes and bytes.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type nodeMetrics struct {
	connected   prometheus.Gauge
	vips        prometheus.Gauge
	bad         prometheus.Gauge
	relists     prometheus.Counter
	applyErrors prometheus.Counter
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vipbridge_cluster_etcd_connected",
			Help: "1 while the node's etcd connection is ready."}),
		vips: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vipbridge_cluster_vips",
			Help: "VIPs in the table the node serves from etcd."}),
		bad: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vipbridge_cluster_bad_groups",
			Help: "VIP groups in etcd whose value cannot be used (their last good value is served)."}),
		relists: prometheus.NewCounter(prometheus.CounterOpts{Name: "vipbridge_cluster_relists_total",
			Help: "Relists after the watched revision was compacted."}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vipbridge_cluster_apply_errors_total",
			Help: "Failed dataplane applies of tables from etcd."}),
	}
}

func (m *nodeMetrics) collectors(n *Node) []prometheus.Collector {
	return []prometheus.Collector{m.connected, m.vips, m.bad, m.relists, m.applyErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vipbridge_cluster_applied_revision",
			Help: "The etcd revision of the table the node serves."}, func() float64 { return float64(n.Revision()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vipbridge_cluster_applied_age_seconds",
			Help: "Seconds since etcd last confirmed the applied revision is current (-1: never)."}, func() float64 {
			st := n.Status()
			if at, ok := st.LastSync["etcd"]; ok {
				return time.Since(at).Seconds()
			}
			return -1
		}),
		&leaderCollector{n: n},
	}
}

// leaderCollector exports vipbridge_cluster_leader_info{leader="<id>"} 1.
type leaderCollector struct{ n *Node }

var leaderDesc = prometheus.NewDesc("vipbridge_cluster_leader_info",
	"The leading publisher as etcd says (leader=\"\" when none leads).", []string{"leader"}, nil)

func (c *leaderCollector) Describe(ch chan<- *prometheus.Desc) { ch <- leaderDesc }
func (c *leaderCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, 1, c.n.Leader())
}

type publisherMetrics struct {
	leading   prometheus.Gauge
	elections prometheus.Counter
	txns      *prometheus.CounterVec
	puts      prometheus.Counter
	deletes   prometheus.Counter
	bytes     prometheus.Counter
	skipped   prometheus.Counter
	allocs    prometheus.Counter
	fenced    prometheus.Counter
}

func newPublisherMetrics() *publisherMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "vipbridge_cluster_publisher_" + name, Help: help})
	}
	return &publisherMetrics{
		leading: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vipbridge_cluster_publisher_leading",
			Help: "1 while this publisher is the elected writer."}),
		elections: c("elections_won_total", "Elections this publisher won."),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vipbridge_cluster_publisher_txns_total",
			Help: "etcd transactions by result (ok, fenced, error)."}, []string{"result"}),
		puts:    c("puts_total", "Keys written."),
		deletes: c("deletes_total", "Keys deleted."),
		bytes:   c("bytes_total", "Bytes of keys and values written."),
		skipped: c("noop_skipped_total", "Group writes skipped because etcd already holds the value."),
		allocs:  c("allocations_total", "Cluster VIP addresses allocated."),
		fenced:  c("fenced_total", "Writes refused because this publisher no longer leads."),
	}
}

func (m *publisherMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.leading, m.elections, m.txns, m.puts, m.deletes, m.bytes, m.skipped, m.allocs, m.fenced}
}

package lb

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vipbridge/vipbridge/discovery"
)

// ipvsMetrics are the IPVS dataplane's metrics.
type ipvsMetrics struct {
	syncSeconds   *prometheus.HistogramVec // trigger
	ops           *prometheus.CounterVec   // op
	opErrors      *prometheus.CounterVec   // op
	driftRepairs  prometheus.Counter
	services      prometheus.Gauge
	backends      *prometheus.GaugeVec // state
	tableToKernel prometheus.Histogram
	eventToKernel prometheus.Histogram
}

func newIPVSMetrics() *ipvsMetrics {
	m := &ipvsMetrics{
		syncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vipbridge_lb_sync_duration_seconds",
			Help:    "Duration of one dataplane sync (reads and writes), by trigger (apply, repair, drain).",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 30, 14),
		}, []string{"trigger"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_lb_operations_total",
			Help: "Kernel writes made by the dataplane, by operation.",
		}, []string{"op"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_lb_operation_errors_total",
			Help: "Kernel writes that failed, by operation; the next sync retries them.",
		}, []string{"op"}),
		driftRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_lb_drift_repairs_total",
			Help: "Differences between the kernel and the table that a periodic repair found and fixed (services, backends, addresses, masquerade set, sysctls).",
		}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipbridge_lb_services",
			Help: "IPVS services owned by vipbridge in the kernel, draining ones included.",
		}),
		backends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipbridge_lb_backends",
			Help: "IPVS destinations of vipbridge's services, by state (active: weight > 0, idle: weight 0, draining).",
		}, []string{"state"}),
		tableToKernel: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipbridge_lb_table_to_kernel_seconds",
			Help:    "Time from building a table to having the kernel programmed with it, for applies that wrote something.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 30, 14),
		}),
		eventToKernel: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipbridge_lb_event_to_kernel_seconds",
			Help:    "Time from receiving the oldest Marathon event a table reflects to having the kernel programmed with it, for applies that wrote something.",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 30, 14),
		}),
	}
	// Every write kind's counters start at 0, so that an error's series
	// exists before the first error (for dashboards and alerts).
	for _, op := range opNames {
		if op != "" {
			m.ops.WithLabelValues(op)
			m.opErrors.WithLabelValues(op)
		}
	}
	return m
}

func (m *ipvsMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.syncSeconds, m.ops, m.opErrors, m.driftRepairs, m.services, m.backends, m.tableToKernel, m.eventToKernel}
}

// applied observes the latencies of a table that made writes: from the
// oldest event it reflects and from its build to the kernel.
func (m *ipvsMetrics) applied(t *discovery.Table, writes int) {
	if writes == 0 {
		return
	}
	if !t.Received.IsZero() {
		m.eventToKernel.Observe(time.Since(t.Received).Seconds())
	}
	if !t.Built.IsZero() {
		m.tableToKernel.Observe(time.Since(t.Built).Seconds())
	}
}

package discovery

// The reconciler's Prometheus metrics.

import (
	"github.com/prometheus/client_golang/prometheus"
)

// reconcileMetrics are the reconciler's metrics.
type reconcileMetrics struct {
	events        *prometheus.CounterVec // kind
	eventsDropped prometheus.Counter
	resyncs       *prometheus.CounterVec   // source, result
	resyncSeconds *prometheus.HistogramVec // source
	records       *prometheus.GaugeVec     // kind: names, vips, backends
	labelErrors   prometheus.Gauge
	eventToDNS    prometheus.Histogram
	stale         *prometheus.GaugeVec // source
	applyErrors   prometheus.Counter
	generation    prometheus.Gauge
}

func newReconcileMetrics() *reconcileMetrics {
	return &reconcileMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_events_applied_total",
			Help: "Updates from the event stream applied to the model, by kind.",
		}, []string{"kind"}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_events_dropped_total",
			Help: "Updates dropped because the update queue was full; each forces a resync.",
		}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_resyncs_total",
			Help: "Full resyncs of a source, by result (ok, error).",
		}, []string{"source", "result"}),
		resyncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vipbridge_resync_duration_seconds",
			Help:    "Duration of fetching one full snapshot of a source.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 12),
		}, []string{"source"}),
		records: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipbridge_records",
			Help: "Size of the published table, by kind (names, vips, backends; task_names in the task zones; task_records_skipped, the task-zone records left out because their name cannot be asked over DNS).",
		}, []string{"kind"}),
		labelErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipbridge_label_errors",
			Help: "VIP labels of the published table that could not be used, name collisions included.",
		}),
		eventToDNS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipbridge_event_to_dns_seconds",
			Help:    "Time from receiving an event to publishing the table that reflects it.",
			Buckets: prometheus.ExponentialBucketsRange(0.00005, 1, 14),
		}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vipbridge_stale",
			Help: "1 while a source has not synced since start or its last sync failed; its last known state is served.",
		}, []string{"source"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_dataplane_apply_errors_total",
			Help: "Dataplane applies that failed; the previous table stays published and the apply is retried.",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipbridge_table_generation",
			Help: "Generation of the published table.",
		}),
	}
}

func (m *reconcileMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.events, m.eventsDropped, m.resyncs, m.resyncSeconds, m.records,
		m.labelErrors, m.eventToDNS, m.stale, m.applyErrors, m.generation}
}

// updateKindName names an UpdateKind for metrics and logs.
func updateKindName(k UpdateKind) string {
	switch k {
	case UpdateTask:
		return "task"
	case UpdateHealth:
		return "health"
	case UpdateApp:
		return "app"
	case UpdateAppRemoved:
		return "app_removed"
	case UpdateResync:
		return "resync"
	case UpdateAppReplace:
		return "app_replace"
	case UpdateCluster:
		return "cluster"
	}
	return "unknown"
}

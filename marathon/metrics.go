package marathon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of decoding one event, the "result" label of
// vipbridge_marathon_events_total.
const (
	resultOK      = "ok"
	resultError   = "error"
	resultUnknown = "unknown"
)

// otherEventType is the "type" label for event types outside eventTypes, so
// that a misbehaving upstream cannot create unbounded label values.
const otherEventType = "other"

// metrics are the client's Prometheus collectors.
type metrics struct {
	// events counts events by type and decoding result.
	events *prometheus.CounterVec
	// oversized counts events larger than Config.MaxEventSize.
	oversized prometheus.Counter
	// reconnects counts ended or failed stream attempts by reason.
	reconnects *prometheus.CounterVec
	// connected is 1 while the event stream is open.
	connected prometheus.Gauge
	// requests observes REST request durations by endpoint and result.
	requests *prometheus.HistogramVec
	// mesosEvents counts Mesos operator events by type and result.
	mesosEvents *prometheus.CounterVec
	// mesosReconnects counts ended or failed Mesos stream attempts by reason.
	mesosReconnects *prometheus.CounterVec
	// mesosConnected is 1 while the Mesos operator stream is subscribed.
	mesosConnected prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_marathon_events_total",
			Help: "Marathon events received, by event type and decoding result (ok, error, unknown).",
		}, []string{"type", "result"}),
		oversized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_marathon_oversized_events_total",
			Help: "Marathon events larger than the maximum event size; each forces a reconnect and a resync.",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_marathon_reconnects_total",
			Help: "Event stream attempts that ended or failed, by reason.",
		}, []string{"reason"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipbridge_marathon_stream_connected",
			Help: "1 while the Marathon event stream is connected, else 0.",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vipbridge_marathon_request_duration_seconds",
			Help:    "Duration of REST requests to Marathon and Mesos, by endpoint and result (ok, error).",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint", "result"}),
	}
	m.mesosEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vipbridge_mesos_events_total",
		Help: "Mesos operator API events received, by event type and decoding result (ok, error, unknown).",
	}, []string{"type", "result"})
	m.mesosReconnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vipbridge_mesos_reconnects_total",
		Help: "Mesos operator stream attempts that ended or failed, by reason.",
	}, []string{"reason"})
	m.mesosConnected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vipbridge_mesos_stream_connected",
		Help: "1 while the Mesos operator stream (SUBSCRIBE) is subscribed, else 0.",
	})
	for _, c := range []prometheus.Collector{m.events, m.oversized, m.reconnects, m.connected, m.requests,
		m.mesosEvents, m.mesosReconnects, m.mesosConnected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register marathon metrics: %w", err)
		}
	}
	return m, nil
}

// event counts one event; unknown type names are folded into "other".
func (m *metrics) event(eventType, result string) {
	if !knownEventType(eventType) {
		eventType = otherEventType
	}
	m.events.WithLabelValues(eventType, result).Inc()
}

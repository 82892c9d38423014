// metrics.go: the forwarder's Prometheus collectors.
package forward

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/internal/metrics"
)

// Outcomes of a client's query, the result label of
// vipbridge_dns_forward_queries_total.
const (
	outcomeAnswered = "answered"  // an upstream's answer, fresh
	outcomeCached   = "cached"    // from the cache
	outcomeShared   = "shared"    // the answer of an identical query in flight
	outcomeFailed   = "servfail"  // no upstream answered in time
	outcomeOverload = "overload"  // MaxInflight queries were in flight
	outcomeLoop     = "loop"      // our own query came back
	outcomeAny      = "any"       // ANY, answered by RFC 8482
	outcomeNoRoute  = "no_route"  // no upstream for the name: REFUSED
	outcomeFormErr  = "formerr"   // not one question: FORMERR
	outcomeCanceled = "cancelled" // the caller gave up (shutdown)
)

type forwardMetrics struct {
	queries  *prometheus.CounterVec // by outcome
	upstream *prometheus.CounterVec // by upstream and result
	cache    *prometheus.CounterVec // hit, miss
	loops    prometheus.Counter
	inflight prometheus.GaugeFunc

	// The series of every query, resolved once.
	hits, misses, cached, answered prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, inflight func() float64) (*forwardMetrics, error) {
	m := &forwardMetrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_dns_forward_queries_total",
			Help: "Client queries the forwarder answered, by result (answered, cached, shared, servfail, overload, loop, any, no_route, formerr, cancelled).",
		}, []string{"result"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_dns_forward_upstream_queries_total",
			Help: "Queries sent to upstream resolvers, by upstream and result (ok, truncated, rcode, bogus, timeout, error, cancelled).",
		}, []string{"upstream", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_dns_forward_cache_total",
			Help: "Forwarder cache look-ups, by result (hit, miss).",
		}, []string{"result"}),
		loops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_dns_forward_loops_total",
			Help: "Forwarding loops detected: our own upstream query came back to us.",
		}),
		inflight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vipbridge_dns_forward_inflight",
			Help: "Client queries being forwarded now.",
		}, inflight),
	}
	m.hits, m.misses = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	m.cached, m.answered = m.queries.WithLabelValues(outcomeCached), m.queries.WithLabelValues(outcomeAnswered)
	if err := metrics.Register(reg, m.queries, m.upstream, m.cache, m.loops, m.inflight); err != nil {
		return nil, fmt.Errorf("register forward metrics: %w", err)
	}
	return m, nil
}

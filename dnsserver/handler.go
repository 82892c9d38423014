package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/internal/metrics"
)

// ServeDNS implements dns.Handler: it answers r from the current table,
// fits the reply to the transport (UDP: the client's EDNS0 size, 512
// without EDNS0, at most ednsSize; TCP: 64 KiB) with TC set when records
// had to go, writes it and counts it. While MaxConcurrent queries are in
// flight it drops r, closing the connection for TCP. Queries for names
// outside the served zones go to the Forwarder, if any (forwarding.go).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	udp := isUDP(w)
	if s.forward(w, r, udp) {
		return
	}
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		s.metrics.dropped.WithLabelValues("query").Inc()
		if !udp {
			w.Close()
		}
		return
	}
	m := s.Answer(r)
	if udp {
		m.Truncate(udpLimit(r))
	} else {
		m.Truncate(dns.MaxMsgSize)
	}
	err := w.WriteMsg(m)
	qtype, rcode := qtypeLabel(r), rcodeLabel(m.Rcode)
	s.metrics.queries.WithLabelValues(rcode, qtype).Inc()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("query", "qname", qname(r), "qtype", qtype, "rcode", rcode,
			"client", addrString(w), "truncated", m.Truncated, "err", err)
	}
}

// isUDP reports whether w answers over UDP.
func isUDP(w dns.ResponseWriter) bool {
	a := w.RemoteAddr()
	return a != nil && a.Network() == "udp"
}

// udpLimit is the largest UDP reply to r: the client's EDNS0 payload size
// clamped to [512, ednsSize], or 512 without EDNS0 (RFC 1035 §4.2.1, RFC
// 6891 §6.2.5).
func udpLimit(r *dns.Msg) int {
	opt := r.IsEdns0()
	if opt == nil {
		return dns.MinMsgSize
	}
	return min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
}

func addrString(w dns.ResponseWriter) string {
	if a := w.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

func qname(r *dns.Msg) string {
	if len(r.Question) == 0 {
		return ""
	}
	return r.Question[0].Name
}

// qtypeLabels bounds the qtype label of the query metric: other types are
// counted as "other" so clients cannot create series at will.
var qtypeLabels = map[uint16]string{
	dns.TypeA:     "A",
	dns.TypeAAAA:  "AAAA",
	dns.TypeSRV:   "SRV",
	dns.TypeSOA:   "SOA",
	dns.TypeNS:    "NS",
	dns.TypeANY:   "ANY",
	dns.TypeCNAME: "CNAME",
	dns.TypePTR:   "PTR",
	dns.TypeMX:    "MX",
	dns.TypeTXT:   "TXT",
	dns.TypeDS:    "DS",
	dns.TypeHTTPS: "HTTPS",
	dns.TypeSVCB:  "SVCB",
}

func qtypeLabel(r *dns.Msg) string {
	if len(r.Question) == 0 {
		return "none"
	}
	if l, ok := qtypeLabels[r.Question[0].Qtype]; ok {
		return l
	}
	return "other"
}

func rcodeLabel(rcode int) string {
	if l, ok := dns.RcodeToString[rcode]; ok {
		return l
	}
	return strconv.Itoa(rcode)
}

// serverMetrics are the server's Prometheus collectors.
type serverMetrics struct {
	queries *prometheus.CounterVec
	dropped *prometheus.CounterVec
	fast    *fastCounters
	// udpBatch is the number of datagrams each batched UDP read
	// (recvmmsg, batch_linux.go) returned: how much one system call
	// moves under the load at hand.
	udpBatch prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_dns_queries_total",
			Help: "DNS queries answered, by response code and query type.",
		}, []string{"rcode", "qtype"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vipbridge_dns_dropped_total",
			Help: "DNS queries and TCP connections dropped because MaxConcurrent were in flight.",
		}, []string{"what"}),
		udpBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vipbridge_dns_udp_batch_size",
			Help:    "Datagrams per batched UDP read (recvmmsg, Linux; at most 64 each).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	m.fast = &fastCounters{queries: m.queries}
	if err := metrics.Register(reg, m.queries, m.dropped, m.udpBatch); err != nil {
		return nil, fmt.Errorf("register dns metrics: %w", err)
	}
	return m, nil
}

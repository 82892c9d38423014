// forwarding.go: the hand-off of queries for names outside the served
// zones to a Forwarder, for clients in the allow list; the rest stay
// REFUSED. Forwarded queries never hold the full path's query slots
// (MaxConcurrent) but forwarding slots of their own, as many, so that a
// flood of them or a slow upstream delays no answer of the served zones.
package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/internal/metrics"
)

// Forwarder answers queries for names this server does not serve.
// *forward.Forwarder satisfies it.
type Forwarder interface {
	// ForwardPacked returns the reply to req, packed, fitted to the
	// transport (tcp or UDP) and carrying req's id; never empty.
	ForwardPacked(ctx context.Context, req *dns.Msg, tcp bool) []byte
	// ZoneOf returns the longest forward zone name is in (lower case,
	// fully qualified), or "". A forward zone as long as a served zone
	// or longer wins over it (--forward-zone mesos=… sends .mesos to
	// mesos-dns).
	ZoneOf(name string) string
}

// forwarding is the Server's part that hands queries to a Forwarder.
type forwarding struct {
	f     Forwarder
	allow []netip.Prefix
	// slots bounds the forwarded UDP queries being answered, each in a
	// goroutine of its own; beyond it they are dropped and counted.
	slots   chan struct{}
	ctx     context.Context // ends when Run stops serving
	cancel  context.CancelFunc
	refused prometheus.Counter
	// zones are the served zones' names (Zones).
	zones []string
	// served returns the served zone a lower-case name is in
	// (Server.servedZone).
	served func(lname string) (string, bool)
}

// newForwarding returns the forwarding of cfg, nil without a Forwarder.
func newForwarding(cfg Config, slots int) (*forwarding, error) {
	if cfg.Forwarder == nil {
		return nil, nil
	}
	fw := &forwarding{
		f:     cfg.Forwarder,
		allow: cfg.Allow,
		slots: make(chan struct{}, slots),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_dns_forward_refused_total",
			Help: "Queries for names outside the served zones REFUSED because the client is not in the allow list (--dns-allow).",
		}),
	}
	fw.ctx, fw.cancel = context.WithCancel(context.Background())
	if err := metrics.Register(cfg.Registerer, fw.refused); err != nil {
		return nil, fmt.Errorf("register dns forwarding metrics: %w", err)
	}
	return fw, nil
}

// forward hands r to the Forwarder if it asks for a name outside the
// served zones (or in a forward zone that wins over them) from a client in
// the allow list, and reports whether it did. Queries from other clients
// are counted and left to the full path, which refuses them.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg, udp bool) bool {
	fw := s.fwd
	if fw == nil || len(r.Question) != 1 {
		return false
	}
	if _, rcode := checkRequest(r); rcode != dns.RcodeSuccess || !fw.outside(r.Question[0].Name) {
		return false
	}
	if !fw.allowed(w.RemoteAddr()) {
		fw.refused.Inc()
		return false
	}
	if !udp {
		s.writeForwarded(w, r, fw.f.ForwardPacked(fw.ctx, r, true))
		return true
	}
	select {
	case fw.slots <- struct{}{}:
	default:
		s.metrics.dropped.WithLabelValues("forward").Inc()
		return true
	}
	// The query is answered in the goroutine miekg/dns gave it, but
	// holds a forwarding slot instead of its full-path one (udpAlive,
	// fastConn.admit): udpHandler counts it out again when this returns.
	s.udpAlive.Add(-1)
	defer func() { <-fw.slots; s.udpAlive.Add(1) }()
	s.writeForwarded(w, r, fw.f.ForwardPacked(fw.ctx, r, false))
	return true
}

// shadows reports whether a forward zone wins over a whole served zone:
// the fast path, which answers served names before any check of the
// Forwarder, must then stay off (Server.fastTable).
func (fw *forwarding) shadows() bool {
	if fw == nil {
		return false
	}
	for _, z := range fw.zones {
		if fw.outside(z) {
			return true
		}
	}
	return false
}

// outside reports whether name goes to the Forwarder: it is in no served
// zone, or in a forward zone at least as long as the served one.
func (fw *forwarding) outside(name string) bool {
	lname := asciiLower(name)
	z, served := fw.served(lname)
	if !served {
		return true
	}
	fz := fw.f.ZoneOf(lname)
	return fz != "" && len(fz) >= len(z)
}

// allowed reports whether the client at a may have its queries forwarded.
func (fw *forwarding) allowed(a net.Addr) bool {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		return false
	}
	ip = ip.Unmap()
	for _, p := range fw.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// writeForwarded writes the Forwarder's packed reply b to r and counts
// it.
func (s *Server) writeForwarded(w dns.ResponseWriter, r *dns.Msg, b []byte) {
	if len(b) < dnsHeaderLen {
		return // never, by the Forwarder's contract
	}
	_, err := w.Write(b)
	qtype, rcode := qtypeLabel(r), rcodeLabel(int(b[3]&0xF))
	s.metrics.queries.WithLabelValues(rcode, qtype).Inc()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("forwarded query", "qname", qname(r), "qtype", qtype, "rcode", rcode,
			"client", addrString(w), "truncated", b[2]&0x02 != 0, "err", err)
	}
}

// stop ends the forwarded queries in flight, and those to come, at once
// with SERVFAIL: the listeners' shutdown then waits for their handlers.
func (fw *forwarding) stop() {
	if fw != nil {
		fw.cancel()
	}
}

// Zones are the names of the zones a Server with this mesos domain ("":
// none) serves, lower case and fully qualified: the VIP zones, their
// .thisdcos.global spellings and the task zones. The forwarder never
// caches their records.
func Zones(mesosDomain string) []string {
	s := Server{taskZones: taskZones(strings.TrimSuffix(mesosDomain, "."), 0, 0)}
	return s.zoneNames()
}

// zoneNames returns the names of the zones s serves: Zones less the task
// zones it forwards.
func (s *Server) zoneNames() []string {
	var out []string
	for _, z := range zones {
		out = append(out, z.name)
	}
	for _, z := range globalZones {
		out = append(out, z.name)
	}
	for _, z := range s.taskZones {
		out = append(out, z.name)
	}
	return out
}

// Serves reports whether name is in a zone s serves (any case, with or
// without the trailing dot): the names it answers itself.
func (s *Server) Serves(name string) bool {
	_, ok := s.servedZone(asciiLower(dns.Fqdn(name)))
	return ok
}

// servedZone returns the name of the served zone lname (lower case, fully
// qualified) is in.
func (s *Server) servedZone(lname string) (string, bool) {
	if z, ok := zoneOf(lname); ok {
		return z.name, true
	}
	if z, ok := globalZoneOf(lname); ok {
		return z.name, true
	}
	if z, ok := s.taskZoneOf(lname); ok {
		return z.name, true
	}
	return "", false
}

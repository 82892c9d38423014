// forwarder.go: the Forwarder, its Config, and Forward, the path of one
// client query: ANY, cache, in-flight bound, shared exchange, reply.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Forwarder. Zero values take the documented defaults.
type Config struct {
	// Upstreams answer names outside every zone of Zones; none: such names
	// are REFUSED.
	Upstreams []netip.AddrPort
	// Zones send names at or below them to their own upstreams; the
	// longest match wins.
	Zones []Zone
	// Self are the addresses vipbridge serves DNS on: upstreams equal to
	// one are dropped (with a Warn line), as a resolver that forwards to
	// itself loops. An unspecified address (0.0.0.0, ::) stands for the
	// loopback addresses at its port; give the node's other addresses
	// explicitly.
	Self []netip.AddrPort
	// Own are the zones vipbridge serves ("l4lb.thisdcos.directory."):
	// answers holding a record at or below one are never cached.
	Own []string
	// Timeout bounds each client query; 0 means 5s (dcos-dns's).
	Timeout time.Duration
	// NoCache turns the answer cache off.
	NoCache bool
	// CacheSize bounds the cache's entries; 0 means 10,000.
	CacheSize int
	// MaxInflight bounds the client queries being forwarded at once; 0
	// means 1,000. Beyond it queries get SERVFAIL at once.
	MaxInflight int
	// Now is the clock of the cache and the failure counts; nil means
	// time.Now.
	Now func() time.Time
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger receives a Warn line per dropped upstream; nil discards.
	Logger *slog.Logger
}

// Forwarder forwards queries to upstream resolvers. It is safe for
// concurrent use.
type Forwarder struct {
	routes      routes
	own         []string // lower case, with a leading "." for suffix tests
	timeout     time.Duration
	cache       *cache // nil: off
	maxInflight int64
	inflight    atomic.Int64
	flights     flights
	udp, tcp    *dns.Client
	now         func() time.Time
	rand        func(n int) int
	metrics     *forwardMetrics
}

// New checks cfg and returns a Forwarder; it opens nothing until queried.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Timeout < 0 || cfg.CacheSize < 0 || cfg.MaxInflight < 0 {
		return nil, errors.New("forward: negative timeout, cache size or in-flight bound")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "forward")
	f := &Forwarder{
		timeout:     orDefault(cfg.Timeout, 5*time.Second),
		maxInflight: int64(orDefault(cfg.MaxInflight, 1000)),
		now:         cfg.Now,
		rand:        defaultRand,
	}
	if f.now == nil {
		f.now = time.Now
	}
	if !cfg.NoCache {
		f.cache = newCache(orDefault(cfg.CacheSize, 10000))
	}
	f.flights.m = make(map[flightKey]*flight)
	// miekg/dns reads UDP answers into a buffer of the query's EDNS0 size.
	f.udp = &dns.Client{Net: "udp", UDPSize: ednsSize, Timeout: f.timeout}
	f.tcp = &dns.Client{Net: "tcp", Timeout: f.timeout}
	for _, z := range cfg.Own {
		f.own = append(f.own, "."+strings.TrimPrefix(strings.ToLower(dns.Fqdn(z)), "."))
	}
	f.routes.def = buildSet("", cfg.Upstreams, cfg.Self, log)
	for _, z := range cfg.Zones {
		name := strings.ToLower(dns.Fqdn(z.Name))
		if _, ok := dns.IsDomainName(name); !ok {
			return nil, fmt.Errorf("forward zone %q: bad name", z.Name)
		}
		if set := buildSet(name, z.Upstreams, cfg.Self, log); set != nil {
			f.routes.zones = append(f.routes.zones, zoneRoute{name: name, label: "." + name, set: set})
		}
	}
	// Longest first: the first match is the longest (a name has one
	// suffix of each length).
	slices.SortStableFunc(f.routes.zones, func(a, b zoneRoute) int { return len(b.name) - len(a.name) })
	m, err := newMetrics(cfg.Registerer, func() float64 { return float64(f.inflight.Load()) })
	if err != nil {
		return nil, err
	}
	f.metrics = m
	return f, nil
}

// orDefault is v, or def when v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// buildSet returns the upstreams of addrs that are not ours (self),
// without duplicates; nil when none is left.
func buildSet(zone string, addrs, self []netip.AddrPort, log *slog.Logger) upstreamSet {
	var set upstreamSet
	seen := map[netip.AddrPort]bool{}
	for _, a := range addrs {
		switch {
		case isSelf(a, self):
			log.Warn("dropped upstream: it is our own address, forwarding to it would loop", "upstream", a.String(), "zone", zone)
		case !seen[a]:
			seen[a] = true
			set = append(set, newUpstream(a))
		}
	}
	return set
}

func isSelf(a netip.AddrPort, self []netip.AddrPort) bool {
	for _, s := range self {
		if s == a || s.Port() == a.Port() && s.Addr().IsUnspecified() && a.Addr().IsLoopback() {
			return true
		}
	}
	return false
}

// Close closes the sockets kept open to the upstreams; Forward must not
// be called after.
func (f *Forwarder) Close() {
	for _, u := range f.routes.def {
		u.mux.close()
	}
	for _, z := range f.routes.zones {
		for _, u := range z.set {
			u.mux.close()
		}
	}
}

// Enabled reports whether any upstream is left to forward to.
func (f *Forwarder) Enabled() bool { return f.routes.def != nil || len(f.routes.zones) > 0 }

// ZoneOf returns the longest forward zone name is in (lower case, fully
// qualified), or "" when it goes to the default upstreams or none.
func (f *Forwarder) ZoneOf(name string) string { return f.routes.zoneOf(strings.ToLower(name)) }

// Forward answers req (one question) through the upstreams; tcp tells the
// transport the client used, which the upstream query uses too and which
// sets the reply's size limit. It always returns a reply (see the package
// contract); ctx bounds it besides the timeout.
func (f *Forwarder) Forward(ctx context.Context, req *dns.Msg, tcp bool) *dns.Msg {
	m, _ := f.answer(ctx, req, tcp, false)
	return m
}

// ForwardPacked is Forward with the reply packed, for a DNS server to
// write as it is: a cached answer is served from its bytes, unpacked.
func (f *Forwarder) ForwardPacked(ctx context.Context, req *dns.Msg, tcp bool) []byte {
	m, b := f.answer(ctx, req, tcp, true)
	if b != nil {
		return b
	}
	if b, err := m.Pack(); err == nil {
		return b
	}
	// Unpackable records from upstream: the client gets SERVFAIL.
	m = reply(req, nil, dns.RcodeServerFailure, tcp)
	if b, err := m.Pack(); err == nil {
		return b
	}
	m.Question = nil // a question that does not pack (Forward's callers built it)
	b, _ = m.Pack()
	return b
}

// answer is the reply to req, as bytes when wire is set and a cached
// answer allows, else as a message.
func (f *Forwarder) answer(ctx context.Context, req *dns.Msg, tcp, wire bool) (*dns.Msg, []byte) {
	if len(req.Question) != 1 || req.Response || req.Opcode != dns.OpcodeQuery {
		f.metrics.queries.WithLabelValues(outcomeFormErr).Inc()
		return reply(req, nil, dns.RcodeFormatError, tcp), nil
	}
	q := req.Question[0]
	if q.Qtype == dns.TypeANY {
		f.metrics.queries.WithLabelValues(outcomeAny).Inc()
		return anyReply(req, tcp), nil
	}
	lname := strings.ToLower(q.Name)
	_, set := f.routes.route(lname)
	if set == nil {
		f.metrics.queries.WithLabelValues(outcomeNoRoute).Inc()
		return reply(req, nil, dns.RcodeRefused, tcp), nil
	}
	key := cacheKey{name: lname, qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled}
	if opt := req.IsEdns0(); opt != nil {
		key.do = opt.Do()
	}
	if f.cache != nil {
		now := f.now()
		if e, ok := f.cache.get(key, now); ok {
			f.metrics.hits.Inc()
			f.metrics.cached.Inc()
			if wire && e.wire {
				if b := e.packed.reply(req, e.age(now), tcp); b != nil {
					return nil, b
				}
			}
			return reply(req, e.msgAt(now), dns.RcodeSuccess, tcp), nil
		}
		f.metrics.misses.Inc()
	}
	if f.inflight.Add(1) > f.maxInflight {
		f.inflight.Add(-1)
		f.metrics.queries.WithLabelValues(outcomeOverload).Inc()
		return reply(req, nil, dns.RcodeServerFailure, tcp), nil
	}
	defer f.inflight.Add(-1)
	return f.exchangeShared(ctx, req, key, set, tcp), nil
}

// exchangeShared answers req from the upstreams of set, sharing the
// exchange with identical queries in flight.
func (f *Forwarder) exchangeShared(ctx context.Context, req *dns.Msg, key cacheKey, set upstreamSet, tcp bool) *dns.Msg {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	led := false
	up, loop := f.flights.do(ctx, flightKey{cacheKey: key, tcp: tcp}, req.Id, func(id uint16) *dns.Msg {
		led = true
		return f.ask(ctx, req, id, key, set, tcp)
	})
	outcome := ""
	switch {
	case loop:
		f.metrics.loops.Inc()
		outcome = outcomeLoop
	case up == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		outcome = outcomeCanceled
	case up == nil || up.Rcode == dns.RcodeServerFailure:
		outcome = outcomeFailed
	case !led:
		outcome = outcomeShared
	}
	if outcome == "" {
		f.metrics.answered.Inc()
	} else {
		f.metrics.queries.WithLabelValues(outcome).Inc()
	}
	if up == nil {
		return reply(req, nil, dns.RcodeServerFailure, tcp)
	}
	return reply(req, up, dns.RcodeSuccess, tcp)
}

// ask sends req upstream with id, caches what may be cached, and returns
// the answer: an empty SERVFAIL when no upstream answered.
func (f *Forwarder) ask(ctx context.Context, req *dns.Msg, id uint16, key cacheKey, set upstreamSet, tcp bool) *dns.Msg {
	up := f.race(ctx, set.pick(f.now(), f.rand), upstreamQuery(req, id), tcp)
	if up == nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil // cancelled, not the upstreams' fault: nothing to cache
		}
		up = new(dns.Msg)
		up.Rcode = dns.RcodeServerFailure
	}
	if !f.ownRecords(key.name, up) {
		f.cache.put(key, up, f.now())
	}
	return up
}

// ownRecords reports whether the question name or a record of m is in a
// zone vipbridge serves.
func (f *Forwarder) ownRecords(lname string, m *dns.Msg) bool {
	if f.owns(lname) {
		return true
	}
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if f.owns(strings.ToLower(rr.Header().Name)) {
				return true
			}
		}
	}
	return false
}

func (f *Forwarder) owns(lname string) bool {
	for _, z := range f.own {
		if strings.HasSuffix(lname, z) || lname == z[1:] {
			return true
		}
	}
	return false
}

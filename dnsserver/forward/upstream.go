// upstream.go: the upstream resolvers, their parsing, their recent
// failures, and which of a set dcos-dns's dispatch asks.
package forward

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// failureHalfLife is how long it takes an upstream's count of recent
// failures to halve.
const failureHalfLife = 30 * time.Second

// dispatchWidth is how many upstreams a query goes to when a set has
// more than that many (dcos_dns_handler.erl picks 2 of 3 or more).
const dispatchWidth = 2

// ParseUpstream parses "ip[:port]" (IPv6 as "[ip]:port" or a bare ip);
// the port defaults to 53.
func ParseUpstream(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("upstream %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("upstream %q: want ip or ip:port", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 53), nil
}

// ParseUpstreams parses a comma-separated list of ParseUpstream's form;
// empty items are skipped.
func ParseUpstreams(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		ap, err := ParseUpstream(item)
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, nil
}

// Zone is a forward zone: names at or below Name go to Upstreams.
type Zone struct {
	Name      string // fully qualified, lower case: "mesos."
	Upstreams []netip.AddrPort
}

// ParseZone parses "ZONE=ip[:port],..." (the --forward-zone form); the
// zone may lack its trailing dot.
func ParseZone(s string) (Zone, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return Zone{}, fmt.Errorf("forward zone %q: want ZONE=ip[:port],...", s)
	}
	name = strings.ToLower(dns.Fqdn(strings.TrimSpace(name)))
	if _, ok := dns.IsDomainName(name); !ok || strings.Contains(name, "\\") {
		return Zone{}, fmt.Errorf("forward zone %q: bad zone name", s)
	}
	ups, err := ParseUpstreams(list)
	if err != nil {
		return Zone{}, fmt.Errorf("forward zone %s: %w", name, err)
	}
	if len(ups) == 0 {
		return Zone{}, fmt.Errorf("forward zone %s: no upstream", name)
	}
	return Zone{Name: name, Upstreams: ups}, nil
}

// upstream is one upstream resolver and its recent failures.
type upstream struct {
	addr  netip.AddrPort
	label string // addr as the metrics' upstream label
	mux   *udpMux

	mu    sync.Mutex
	fails float64   // recent failures, decayed to at
	at    time.Time // when fails was last decayed
}

func newUpstream(addr netip.AddrPort) *upstream {
	return &upstream{addr: addr, label: addr.String(), mux: &udpMux{addr: addr.String()}}
}

// recentFailures is the failure count decayed to now, rounded down, so
// that upstreams that failed about as often compare equal.
func (u *upstream) recentFailures(now time.Time) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.decay(now)
	return int(u.fails)
}

func (u *upstream) failed(now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.decay(now)
	u.fails++
}

// decay halves fails for every failureHalfLife since it was last decayed.
func (u *upstream) decay(now time.Time) {
	if d := now.Sub(u.at); d > 0 {
		u.fails *= math.Exp2(-float64(d) / float64(failureHalfLife))
		u.at = now
	}
}

// upstreamSet is the upstreams of one zone (or the default set).
type upstreamSet []*upstream

// pick returns the upstreams to ask: all of them when there are at most
// dispatchWidth, else the dispatchWidth with the fewest recent failures,
// random among equals.
func (s upstreamSet) pick(now time.Time, rnd func(n int) int) []*upstream {
	if len(s) <= dispatchWidth {
		return s
	}
	type ranked struct {
		u     *upstream
		fails int
		tie   int
	}
	r := make([]ranked, len(s))
	for i, u := range s {
		r[i] = ranked{u: u, fails: u.recentFailures(now), tie: rnd(1 << 30)}
	}
	// A partial selection sort: dispatchWidth is tiny.
	out := make([]*upstream, 0, dispatchWidth)
	for k := range dispatchWidth {
		best := k
		for i := k + 1; i < len(r); i++ {
			if r[i].fails < r[best].fails || r[i].fails == r[best].fails && r[i].tie < r[best].tie {
				best = i
			}
		}
		r[k], r[best] = r[best], r[k]
		out = append(out, r[k].u)
	}
	return out
}

// defaultRand is the random source of pick.
func defaultRand(n int) int { return rand.IntN(n) }

// routes maps names to upstream sets: the longest forward zone a name is
// in, else the default set.
type routes struct {
	zones []zoneRoute // longest name first
	def   upstreamSet // nil: no default upstreams
}

type zoneRoute struct {
	name  string // "mesos."
	label string // ".mesos."
	set   upstreamSet
}

// route returns the zone (lower case, "" for the default set) and the
// upstreams for lname, a lower-case fully qualified name; nil when no
// upstream serves it.
func (r *routes) route(lname string) (string, upstreamSet) {
	for _, z := range r.zones {
		if lname == z.name || z.name == "." || strings.HasSuffix(lname, z.label) {
			return z.name, z.set
		}
	}
	return "", r.def
}

// zoneOf returns the longest forward zone lname is in, or "".
func (r *routes) zoneOf(lname string) string {
	z, _ := r.route(lname)
	return z
}

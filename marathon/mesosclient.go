package marathon

import (
	"context"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// mesosStatePath is the Mesos master state endpoint. A standby master
// answers 307 to the leader (the Location may be protocol-relative,
// "//host:5050/master/state"), which net/http follows; 503 means no leader
// is known and is an error (apache/mesos docs/endpoints/master/state.md).
const mesosStatePath = "/master/state"

// mesosSource is Client.Mesos: the tasks of every framework other than
// Marathon (of every framework in Mesos-only mode) and the cluster, from
// the leading master's state.
type mesosSource struct{ c *Client }

// Snapshot fetches /master/state from the first Mesos URL that answers and
// returns the tasks of frameworks other than Marathon (known by the
// framework ID /v2/info reports; without a Marathon URL, Marathon's tasks
// too), one App per task, and the Cluster with the configured masters. The
// agents it lists feed the host resolver used for Marathon tasks. It fails
// while Marathon's framework ID is not known.
func (s mesosSource) Snapshot(ctx context.Context) (discovery.State, error) {
	return s.c.pollMesos(ctx)
}

// pollMesos is mesosSource.Snapshot.
func (c *Client) pollMesos(ctx context.Context) (discovery.State, error) {
	marathonID, err := c.marathonID(ctx)
	if err != nil {
		return discovery.State{}, err
	}
	var (
		st     discovery.State
		agents map[string]netip.Addr
	)
	err = c.get(ctx, "mesos_state", c.mesosURLs, &c.mesosNext, mesosStatePath, func(r io.Reader) error {
		var err error
		st, agents, err = DecodeMesosState(r, marathonID)
		return err
	})
	if err != nil {
		return discovery.State{}, err
	}
	return c.finishMesosState(ctx, st, agents), nil
}

// finishMesosState completes a decoded Mesos state: its agents feed the host
// resolver, tasks on agents known by name only get their address resolved,
// and the Cluster gets the configured masters.
func (c *Client) finishMesosState(ctx context.Context, st discovery.State, agents map[string]netip.Addr) discovery.State {
	c.resolver.setAgents(agents)
	rctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	for i := range st.Apps {
		for j := range st.Apps[i].Tasks {
			if t := &st.Apps[i].Tasks[j]; !t.AgentIP.IsValid() && t.Host != "" {
				t.AgentIP = c.resolver.resolve(rctx, t.Host)
			}
		}
	}
	st.Cluster.Masters = c.masters(rctx)
	return st
}

// masters are the addresses of the configured Mesos URLs' hosts, in order
// and without duplicates; a host that is no IP literal is resolved, and
// left out when it does not resolve.
func (c *Client) masters(ctx context.Context) []netip.Addr {
	var out []netip.Addr
	for _, base := range c.mesosURLs {
		u, err := url.Parse(base)
		if err != nil {
			continue
		}
		ip := c.resolver.resolve(ctx, u.Hostname())
		if ip.IsValid() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

// Resolver tuning. Lookups happen inline while decoding, so each is bounded
// by lookupTimeout and a whole snapshot by resolveBudget; failures are
// remembered for negativeTTL so one dead name server cannot stall every
// event.
const (
	lookupTimeout = 2 * time.Second
	resolveBudget = 10 * time.Second
	positiveTTL   = time.Minute
	negativeTTL   = 30 * time.Second
	maxCached     = 10000
)

// hostResolver maps a task's host (as Marathon reports it) to the agent's
// address: an IP literal is itself; a host named in the last Mesos state
// gets that agent's IP; anything else is looked up in DNS, with a small
// cache. It is safe for concurrent use.
type hostResolver struct {
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	now    func() time.Time

	agents atomic.Pointer[map[string]netip.Addr]

	mu    sync.Mutex
	cache map[string]cachedAddr
}

type cachedAddr struct {
	addr    netip.Addr // invalid for a failed lookup
	expires time.Time
}

func newHostResolver() *hostResolver {
	return &hostResolver{
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		now:   time.Now,
		cache: make(map[string]cachedAddr),
	}
}

// setAgents replaces the agents map (host name → IP) from Mesos state.
func (r *hostResolver) setAgents(agents map[string]netip.Addr) {
	if agents == nil {
		return
	}
	r.agents.Store(&agents)
}

// bind returns a resolve function for the decoders whose DNS lookups end
// when ctx does.
func (r *hostResolver) bind(ctx context.Context) func(string) netip.Addr {
	return func(host string) netip.Addr { return r.resolve(ctx, host) }
}

// resolve returns host's address, or the invalid Addr when unknown.
func (r *hostResolver) resolve(ctx context.Context, host string) netip.Addr {
	if host == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap()
	}
	if m := r.agents.Load(); m != nil {
		if a, ok := (*m)[host]; ok && a.IsValid() {
			return a.Unmap()
		}
	}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[host]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.addr
	}
	if ctx.Err() != nil {
		return netip.Addr{}
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	addrs, err := r.lookup(lctx, host)
	cancel()
	if err != nil && ctx.Err() != nil {
		// The caller's budget ran out: not the name's fault, not cached.
		return netip.Addr{}
	}
	e = cachedAddr{addr: pickAddr(addrs), expires: now.Add(positiveTTL)}
	if err != nil || !e.addr.IsValid() {
		e = cachedAddr{expires: now.Add(negativeTTL)}
	}
	r.store(host, e, now)
	return e.addr
}

func (r *hostResolver) store(host string, e cachedAddr, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCached {
		for h, old := range r.cache {
			if !now.Before(old.expires) {
				delete(r.cache, h)
			}
		}
		if len(r.cache) >= maxCached {
			clear(r.cache)
		}
	}
	r.cache[host] = e
}

// pickAddr prefers the first IPv4 address, as agents are addressed over
// IPv4 unless they have none.
func pickAddr(addrs []netip.Addr) netip.Addr {
	var first netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() {
			return a
		}
		if !first.IsValid() {
			first = a
		}
	}
	return first
}

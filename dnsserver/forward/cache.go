// cache.go: the answer cache: bounded, keyed by question and the bits that
// change the answer, entries kept as long as their TTLs say.
package forward

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache lifetimes.
const (
	servfailTTL = 2 * time.Second // RFC 2308 §7.1 allows up to 5 minutes; a few seconds stop a storm
	maxCacheTTL = 24 * time.Hour
)

// cacheKey identifies the answers that are interchangeable: the question
// (name lower case) and the DO and CD bits the upstream saw.
type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do, cd bool
}

type cacheEntry struct {
	msg     *dns.Msg // never modified once stored
	packed  packedAnswer
	wire    bool // packed holds msg
	stored  time.Time
	expires time.Time
}

// age is how old the entry is at now, in whole seconds.
func (e *cacheEntry) age(now time.Time) uint32 { return uint32(now.Sub(e.stored) / time.Second) }

// cache is a bounded map of upstream answers. A nil *cache caches nothing.
type cache struct {
	size int
	mu   sync.Mutex
	m    map[cacheKey]*cacheEntry
}

func newCache(size int) *cache {
	return &cache{size: size, m: make(map[cacheKey]*cacheEntry, min(size, 1024))}
}

// get returns the live entry for k.
func (c *cache) get(k cacheKey, now time.Time) (*cacheEntry, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if ok && !now.Before(e.expires) {
		delete(c.m, k)
		return nil, false
	}
	return e, ok
}

// msgAt returns a copy of the entry's answer with its TTLs lowered by the
// entry's age at now.
func (e *cacheEntry) msgAt(now time.Time) *dns.Msg {
	m := e.msg.Copy()
	age := e.age(now)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			h.Ttl -= min(h.Ttl, age)
		}
	}
	return m
}

// put stores m for k for its lifetime (cacheTTL), if it has one.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c == nil {
		return
	}
	ttl := cacheTTL(m)
	if ttl <= 0 {
		return
	}
	e := &cacheEntry{msg: m, stored: now, expires: now.Add(ttl)}
	e.packed, e.wire = packAnswer(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		c.evict(now)
	}
	c.m[k] = e
}

// evict removes one entry: an expired one among the first few the map
// yields, else the first it yields (Go randomises the order).
func (c *cache) evict(now time.Time) {
	const look = 8
	var victim cacheKey
	n := 0
	for k, e := range c.m {
		if n == 0 {
			victim = k
		}
		if !now.Before(e.expires) {
			victim = k
			break
		}
		if n++; n == look {
			break
		}
	}
	delete(c.m, victim)
}

// len is the number of entries, expired ones included.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// cacheTTL is how long m may be kept: 0 for answers that must not be.
func cacheTTL(m *dns.Msg) time.Duration {
	if m.Truncated {
		return 0
	}
	var ttl time.Duration
	switch {
	case m.Rcode == dns.RcodeServerFailure:
		return servfailTTL
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		ttl = minTTL(m.Answer, m.Ns)
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		ttl = negativeTTL(m.Ns)
	}
	return min(ttl, maxCacheTTL)
}

// minTTL is the smallest TTL of the records of the sections.
func minTTL(sections ...[]dns.RR) time.Duration {
	least := uint32(1<<32 - 1)
	for _, rrs := range sections {
		for _, rr := range rrs {
			least = min(least, rr.Header().Ttl)
		}
	}
	return time.Duration(least) * time.Second
}

// negativeTTL is the lifetime of a negative answer with authority section
// ns: the smaller of the SOA's TTL and its minimum (RFC 2308 §5), 0
// without an SOA.
func negativeTTL(ns []dns.RR) time.Duration {
	for _, rr := range ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}

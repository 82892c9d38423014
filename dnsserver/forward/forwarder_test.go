package forward

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestForwardSameAnswer(t *testing.T) {
	up := startUpstream(t, zoneAnswers(t, testSOA,
		"www.example. 300 IN A 192.0.2.1",
		"www.example. 300 IN AAAA 2001:db8::1",
	))
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, NoCache: true})
	tests := []struct {
		name   string
		req    *dns.Msg
		rcode  int
		answer string
	}{
		{"A", query("www.example.", dns.TypeA, 0, false), dns.RcodeSuccess, "www.example.\t300\tIN\tA\t192.0.2.1"},
		{"AAAA with EDNS0", query("www.example.", dns.TypeAAAA, 4096, false), dns.RcodeSuccess, "www.example.\t300\tIN\tAAAA\t2001:db8::1"},
		{"mixed case", query("WwW.ExAmple.", dns.TypeA, 1232, true), dns.RcodeSuccess, "www.example.\t300\tIN\tA\t192.0.2.1"},
		{"NODATA", query("www.example.", dns.TypeTXT, 0, false), dns.RcodeSuccess, ""},
		{"NXDOMAIN", query("nope.example.", dns.TypeA, 0, false), dns.RcodeNameError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := f.Forward(context.Background(), tt.req, false)
			checkReply(t, tt.req, m, false)
			if m.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			got := ""
			if len(m.Answer) > 0 {
				got = m.Answer[0].String()
			}
			if got != tt.answer {
				t.Errorf("answer %q, want %q", got, tt.answer)
			}
			if tt.answer == "" && len(m.Ns) != 1 {
				t.Errorf("negative answer without the SOA: %v", m)
			}
			if opt := tt.req.IsEdns0(); opt != nil && m.IsEdns0().Do() != opt.Do() {
				t.Errorf("DO %v, query had %v", m.IsEdns0().Do(), opt.Do())
			}
			if q := up.lastQuery(); q.IsEdns0() == nil || q.IsEdns0().Do() != (tt.req.IsEdns0() != nil && tt.req.IsEdns0().Do()) || !q.RecursionDesired {
				t.Errorf("upstream got %v", q)
			}
		})
	}
}

func TestForwardOneDeadAmongThree(t *testing.T) {
	up1 := startUpstream(t, zoneAnswers(t, testSOA, "www.example. 300 IN A 192.0.2.1"))
	up2 := startUpstream(t, zoneAnswers(t, testSOA, "www.example. 300 IN A 192.0.2.1"))
	dead := blackHole(t)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up1.addr, dead, up2.addr}, NoCache: true})
	for i := range 30 {
		req := query("www.example.", dns.TypeA, 0, false)
		req.Id = uint16(i)
		if m := f.Forward(context.Background(), req, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("query %d: rcode %s, %d answers, want NOERROR and 1", i, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
	if n := counter(t, f.metrics.queries, outcomeFailed); n != 0 {
		t.Errorf("%v queries failed", n)
	}
	if n := counter(t, f.metrics.upstream, up1.addr.String(), resultOK) + counter(t, f.metrics.upstream, up2.addr.String(), resultOK); n < 30 {
		t.Errorf("good upstream answers %v, want at least 30", n)
	}
}

func TestForwardAllDead(t *testing.T) {
	f, _ := newTestForwarder(t, Config{
		Upstreams: []netip.AddrPort{blackHole(t), blackHole(t), blackHole(t)},
		Timeout:   200 * time.Millisecond,
	})
	req := query("www.example.", dns.TypeA, 1232, false)
	m := f.Forward(context.Background(), req, false)
	checkReply(t, req, m, false)
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	for _, u := range f.routes.def {
		if u.recentFailures(f.now()) > 1 {
			t.Errorf("%s: %d failures after one query", u.addr, u.recentFailures(f.now()))
		}
	}
	// The SERVFAIL is cached a little while: the next query costs nothing.
	if m := f.Forward(context.Background(), req, false); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("second query: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if n := counter(t, f.metrics.queries, outcomeCached); n != 1 {
		t.Errorf("cached answers %v, want 1", n)
	}
}

func TestForwardZoneWins(t *testing.T) {
	def := startUpstream(t, zoneAnswers(t, testSOA, "leader.mesos. 60 IN A 192.0.2.1"))
	mesos := startUpstream(t, zoneAnswers(t, testSOA, "leader.mesos. 60 IN A 192.0.2.2"))
	deep := startUpstream(t, zoneAnswers(t, testSOA, "x.marathon.mesos. 60 IN A 192.0.2.3"))
	f, _ := newTestForwarder(t, Config{
		Upstreams: []netip.AddrPort{def.addr},
		Zones: []Zone{
			{Name: "mesos", Upstreams: []netip.AddrPort{mesos.addr}},
			{Name: "Marathon.Mesos.", Upstreams: []netip.AddrPort{deep.addr}},
		},
		NoCache: true,
	})
	tests := []struct{ name, want, zone string }{
		{"leader.mesos.", "192.0.2.2", "mesos."},
		{"LEADER.MESOS.", "192.0.2.2", "mesos."},
		{"x.marathon.mesos.", "192.0.2.3", "marathon.mesos."},
	}
	for _, tt := range tests {
		m := f.Forward(context.Background(), query(tt.name, dns.TypeA, 0, false), false)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != tt.want {
			t.Errorf("Forward(%s) = %v, want %s", tt.name, m.Answer, tt.want)
		}
		if z := f.ZoneOf(tt.name); z != tt.zone {
			t.Errorf("ZoneOf(%s) = %q, want %q", tt.name, z, tt.zone)
		}
	}
	if def.queries() != 0 {
		t.Errorf("default upstream got %d queries for forward zones", def.queries())
	}
}

func TestForwardTruncation(t *testing.T) {
	var records []string
	for i := range 40 {
		records = append(records, fmt.Sprintf("big.example. 60 IN TXT \"record %02d of a long answer that does not fit\"", i))
	}
	up := startUpstream(t, zoneAnswers(t, testSOA, records...))
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, NoCache: true})

	// Over UDP the upstream truncates at our 1232 octets: TC passes on.
	req := query("big.example.", dns.TypeTXT, 1232, false)
	m := f.Forward(context.Background(), req, false)
	checkReply(t, req, m, false)
	if !m.Truncated || up.udp.Load() != 1 {
		t.Fatalf("UDP: TC %v, upstream UDP queries %d; want TC and 1", m.Truncated, up.udp.Load())
	}
	// A client without EDNS0 gets 512 octets at most, with TC.
	req = query("big.example.", dns.TypeTXT, 0, false)
	m = f.Forward(context.Background(), req, false)
	checkReply(t, req, m, false)
	if !m.Truncated {
		t.Error("UDP without EDNS0: no TC")
	}
	// The retry over TCP goes upstream over TCP and gets everything.
	m = f.Forward(context.Background(), req, true)
	checkReply(t, req, m, true)
	if m.Truncated || len(m.Answer) != 40 || up.tcp.Load() != 1 {
		t.Errorf("TCP: TC %v, %d answers, upstream TCP queries %d; want no TC, 40, 1", m.Truncated, len(m.Answer), up.tcp.Load())
	}
}

func TestForwardCacheTTL(t *testing.T) {
	up := startUpstream(t, zoneAnswers(t, testSOA,
		"www.example. 30 IN A 192.0.2.1",
		"host.vip.l4lb.thisdcos.directory. 30 IN A 11.0.0.1",
	))
	clk := newClock()
	f, _ := newTestForwarder(t, Config{
		Upstreams: []netip.AddrPort{up.addr},
		Own:       []string{"l4lb.thisdcos.directory"},
		Now:       clk.Now,
	})
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		req := query(name, qtype, 0, false)
		m := f.Forward(context.Background(), req, false)
		checkReply(t, req, m, false)
		return m
	}
	steps := []struct {
		name    string
		advance time.Duration
		qname   string
		qtype   uint16
		ttl     uint32 // of the first answer or SOA
		queries int64  // upstream queries so far
	}{
		{"first asks", 0, "www.example.", dns.TypeA, 30, 1},
		{"cached, ttl counts down", 12 * time.Second, "www.example.", dns.TypeA, 18, 1},
		{"still cached", 17 * time.Second, "www.example.", dns.TypeA, 1, 1},
		{"expired asks again", time.Second, "www.example.", dns.TypeA, 30, 2},
		{"negative asks", 0, "nope.example.", dns.TypeA, 60, 3},
		{"negative cached for the SOA minimum", 9 * time.Second, "nope.example.", dns.TypeA, 51, 3},
		{"negative expired", time.Second, "nope.example.", dns.TypeA, 60, 4},
		{"own zone asks", 0, "host.vip.l4lb.thisdcos.directory.", dns.TypeA, 30, 5},
		{"own zone never cached", 0, "host.vip.l4lb.thisdcos.directory.", dns.TypeA, 30, 6},
	}
	for _, s := range steps {
		clk.advance(s.advance)
		m := ask(s.qname, s.qtype)
		rrs := append(m.Answer, m.Ns...)
		if len(rrs) == 0 || rrs[0].Header().Ttl != s.ttl || up.queries() != s.queries {
			t.Fatalf("%s: %v; upstream queries %d; want ttl %d and %d queries", s.name, rrs, up.queries(), s.ttl, s.queries)
		}
	}
	if f.cache.len() > 2 {
		t.Errorf("cache holds %d entries, want at most 2", f.cache.len())
	}
}

func TestForwardCacheBounded(t *testing.T) {
	up := startUpstream(t, zoneAnswers(t, testSOA))
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, CacheSize: 5})
	for i := range 20 {
		f.Forward(context.Background(), query(fmt.Sprintf("n%d.example.", i), dns.TypeA, 0, false), false)
	}
	if n := f.cache.len(); n != 5 {
		t.Errorf("cache holds %d entries, want 5", n)
	}
}

// blockingUpstream answers only when release is closed; started receives
// one value per query received.
func blockingUpstream(t *testing.T) (u *testUpstream, started chan string, release chan struct{}) {
	started, release = make(chan string, 100), make(chan struct{})
	answer := zoneAnswers(t, testSOA, "a.example. 60 IN A 192.0.2.1", "b.example. 60 IN A 192.0.2.2")
	u = startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		started <- r.Question[0].Name
		<-release
		answer(w, r)
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return u, started, release
}

func TestForwardInflightBound(t *testing.T) {
	up, started, release := blockingUpstream(t)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, MaxInflight: 1, Timeout: time.Minute})
	first := make(chan *dns.Msg)
	go func() { first <- f.Forward(context.Background(), query("a.example.", dns.TypeA, 0, false), false) }()
	<-started
	m := f.Forward(context.Background(), query("b.example.", dns.TypeA, 0, false), false)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("over the bound: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if n := counter(t, f.metrics.queries, outcomeOverload); n != 1 {
		t.Errorf("overload count %v, want 1", n)
	}
	close(release)
	if m := <-first; m.Rcode != dns.RcodeSuccess {
		t.Errorf("first query: rcode %s", dns.RcodeToString[m.Rcode])
	}
}

func TestForwardSharesIdenticalQueries(t *testing.T) {
	up, started, release := blockingUpstream(t)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, Timeout: time.Minute})
	const clients = 10
	var wg sync.WaitGroup
	replies := make([]*dns.Msg, clients)
	for i := range clients {
		wg.Go(func() {
			req := query("a.example.", dns.TypeA, 0, false)
			req.Id = uint16(1000 + i)
			replies[i] = f.Forward(context.Background(), req, false)
		})
	}
	<-started
	// Wait until every client is in flight before the answer comes.
	for f.inflight.Load() != clients {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, m := range replies {
		if m.Id != uint16(1000+i) || len(m.Answer) != 1 {
			t.Errorf("client %d: id %d, %d answers", i, m.Id, len(m.Answer))
		}
	}
	if up.queries() != 1 {
		t.Errorf("upstream got %d queries for %d identical ones, want 1", up.queries(), clients)
	}
}

// proxy is an upstream that forwards every query to *to, as a resolver
// configured to forward to us would; keepID keeps the query's id.
func proxy(t *testing.T, to *netip.AddrPort, mu *sync.Mutex, keepID bool) *testUpstream {
	return startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		addr := *to
		mu.Unlock()
		q := r.Copy()
		if !keepID {
			q.Id = dns.Id()
		}
		c := &dns.Client{Timeout: 3 * time.Second}
		a, _, err := c.Exchange(q, addr.String())
		if err != nil {
			return
		}
		a.Id = r.Id
		_ = w.WriteMsg(a)
	})
}

func TestForwardLoopDetected(t *testing.T) {
	var mu sync.Mutex
	var us netip.AddrPort
	p := proxy(t, &us, &mu, true)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{p.addr}})
	addr := serveForwarder(t, f)
	mu.Lock()
	us = addr
	mu.Unlock()

	req := query("loop.example.", dns.TypeA, 0, false)
	m := exchange(t, "udp", addr, req)
	checkReply(t, req, m, false)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if n := value(t, f.metrics.loops); n != 1 {
		t.Errorf("loops detected %v, want 1", n)
	}
	if n := p.queries(); n != 1 {
		t.Errorf("proxy got %d queries, want 1", n)
	}
}

func TestForwardLoopThroughIDChangerEnds(t *testing.T) {
	var mu sync.Mutex
	var us netip.AddrPort
	p := proxy(t, &us, &mu, false)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{p.addr}, Timeout: 300 * time.Millisecond})
	addr := serveForwarder(t, f)
	mu.Lock()
	us = addr
	mu.Unlock()

	req := query("loop.example.", dns.TypeA, 0, false)
	m := exchange(t, "udp", addr, req)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// The query came back once and waited on its own exchange: no storm.
	if n := p.queries(); n > 2 {
		t.Errorf("proxy got %d queries, want at most 2", n)
	}
}

func TestForwardSelfDropped(t *testing.T) {
	self := netip.MustParseAddrPort("127.0.0.1:53")
	up := startUpstream(t, zoneAnswers(t, testSOA, "a.example. 60 IN A 192.0.2.1"))
	tests := []struct {
		name    string
		ups     []netip.AddrPort
		self    []netip.AddrPort
		enabled bool
	}{
		{"exact", []netip.AddrPort{self}, []netip.AddrPort{self}, false},
		{"wildcard listen, loopback upstream", []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}, []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}, false},
		{"other port", []netip.AddrPort{up.addr}, []netip.AddrPort{self}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestForwarder(t, Config{Upstreams: tt.ups, Self: tt.self})
			if f.Enabled() != tt.enabled {
				t.Fatalf("Enabled() = %v, want %v", f.Enabled(), tt.enabled)
			}
			m := f.Forward(context.Background(), query("a.example.", dns.TypeA, 0, false), false)
			if want := map[bool]int{false: dns.RcodeRefused, true: dns.RcodeSuccess}[tt.enabled]; m.Rcode != want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[want])
			}
		})
	}
}

func TestForwardANYMinimal(t *testing.T) {
	up := startUpstream(t, zoneAnswers(t, testSOA))
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	req := query("www.example.", dns.TypeANY, 1232, false)
	m := f.Forward(context.Background(), req, false)
	checkReply(t, req, m, false)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.HINFO).Cpu != "RFC8482" || up.queries() != 0 {
		t.Errorf("ANY: %v, upstream queries %d; want the RFC 8482 HINFO and none", m.Answer, up.queries())
	}
}

func TestForwardCancelled(t *testing.T) {
	up, started, _ := blockingUpstream(t)
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *dns.Msg)
	go func() { done <- f.Forward(ctx, query("a.example.", dns.TypeA, 0, false), false) }()
	<-started
	cancel()
	if m := <-done; m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if f.cache.len() != 0 {
		t.Error("a cancelled query was cached")
	}
}

func TestForwardOwnRecords(t *testing.T) {
	f, _ := newTestForwarder(t, Config{Own: []string{"l4lb.thisdcos.directory."}})
	tests := []struct {
		name  string
		qname string
		rrs   []string
		want  bool
	}{
		{"other zone", "www.example.", []string{"www.example. 30 IN A 192.0.2.1"}, false},
		{"question in own zone", "a.l4lb.thisdcos.directory.", nil, true},
		{"apex", "l4lb.thisdcos.directory.", nil, true},
		{"suffix is not a zone", "xl4lb.thisdcos.directory.", nil, false},
		{"CNAME into own zone", "alias.example.", []string{
			"alias.example. 30 IN CNAME a.L4LB.thisdcos.directory.",
			"a.L4LB.thisdcos.directory. 30 IN A 11.0.0.1",
		}, true},
	}
	for _, tt := range tests {
		m := new(dns.Msg)
		for _, s := range tt.rrs {
			m.Answer = append(m.Answer, rr(t, s))
		}
		if got := f.ownRecords(tt.qname, m); got != tt.want {
			t.Errorf("%s: ownRecords(%s) = %v, want %v", tt.name, tt.qname, got, tt.want)
		}
	}
}

// A cached answer served from its bytes is the reply Forward builds.
func TestForwardPackedFromCache(t *testing.T) {
	var records []string
	for i := range 30 {
		records = append(records, fmt.Sprintf("big.example. 60 IN TXT \"record %02d of an answer too long for 512 octets\"", i))
	}
	up := startUpstream(t, zoneAnswers(t, testSOA, append(records,
		"www.example. 300 IN A 192.0.2.1",
		"www.example. 300 IN A 192.0.2.2",
	)...))
	clk := newClock()
	f, _ := newTestForwarder(t, Config{Upstreams: []netip.AddrPort{up.addr}, Now: clk.Now})
	tests := []struct {
		name string
		req  *dns.Msg
		tcp  bool
	}{
		{"plain", query("www.example.", dns.TypeA, 0, false), false},
		{"EDNS0 and DO", query("www.example.", dns.TypeA, 4096, true), false},
		{"other case", query("WWW.Example.", dns.TypeA, 1232, false), false},
		{"NXDOMAIN", query("nope.example.", dns.TypeA, 0, false), false},
		{"too big for UDP: built as a message", query("big.example.", dns.TypeTXT, 0, false), false},
		{"TCP", query("big.example.", dns.TypeTXT, 0, false), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.CheckingDisabled = true
			f.Forward(context.Background(), tt.req, true) // fills the cache
			clk.advance(7 * time.Second)
			b := f.ForwardPacked(context.Background(), tt.req, tt.tcp)
			got := new(dns.Msg)
			if err := got.Unpack(b); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			checkReply(t, tt.req, got, tt.tcp)
			want := f.Forward(context.Background(), tt.req, tt.tcp)
			// Owner names may differ in case: those pointing at the question
			// take the client's spelling, as the fast path does.
			if !strings.EqualFold(got.String(), want.String()) {
				t.Errorf("from bytes:\n%v\nas a message:\n%v", got, want)
			}
		})
	}
}

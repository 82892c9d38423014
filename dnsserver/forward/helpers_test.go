// helpers_test.go: real DNS upstreams on loopback for the forwarder's
// tests, a settable clock, and a client.
package forward

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testUpstream is a miekg/dns server on 127.0.0.1 (UDP and TCP on one
// port) answering from zone text; it counts the queries by transport.
type testUpstream struct {
	addr    netip.AddrPort
	udp     atomic.Int64
	tcp     atomic.Int64
	mu      sync.Mutex
	last    *dns.Msg // the last query received
	handler func(w dns.ResponseWriter, r *dns.Msg)
}

func (u *testUpstream) queries() int64 { return u.udp.Load() + u.tcp.Load() }

func (u *testUpstream) lastQuery() *dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// startUpstream serves h on 127.0.0.1 over UDP and TCP until the test ends.
func startUpstream(t *testing.T, h func(w dns.ResponseWriter, r *dns.Msg)) *testUpstream {
	t.Helper()
	u := &testUpstream{handler: h}
	pc, ln := listenPair(t)
	wrap := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if w.RemoteAddr().Network() == "tcp" {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
		}
		u.mu.Lock()
		u.last = r.Copy()
		u.mu.Unlock()
		u.handler(w, r)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: wrap}, {Listener: ln, Handler: wrap}} {
		up := make(chan struct{})
		s.NotifyStartedFunc = func() { close(up) }
		go func() { _ = s.ActivateAndServe() }()
		<-up
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	return u
}

// listenPair binds UDP on a free 127.0.0.1 port and TCP on the same port.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no free port for udp and tcp")
	return nil, nil
}

// blackHole is an upstream address that never answers: a bound UDP socket
// nobody reads, and a TCP listener nobody serves.
func blackHole(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, ln := listenPair(t)
	t.Cleanup(func() { pc.Close(); ln.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// zoneAnswers answers from records given as zone text: the records whose
// owner and type match the question; NXDOMAIN with soa when the name has
// none; NODATA with soa when it has others. Over UDP the answer is
// truncated to the client's size, with TC.
func zoneAnswers(t *testing.T, soa string, records ...string) func(dns.ResponseWriter, *dns.Msg) {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rrs = append(rrs, rr(t, s))
	}
	soaRR := rr(t, soa)
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		exists := false
		for _, x := range rrs {
			if strings.EqualFold(x.Header().Name, q.Name) {
				exists = true
				if x.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, x)
				}
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{soaRR}
			if !exists {
				m.Rcode = dns.RcodeNameError
			}
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), opt.Do())
		}
		if w.RemoteAddr().Network() == "udp" {
			size := dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	}
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return r
}

const testSOA = "example. 60 IN SOA ns.example. hostmaster.example. 1 60 180 86400 10"

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestForwarder builds a Forwarder with its own registry; cfg.Timeout
// 0 becomes 2 s, so a failing test ends soon without any test depending
// on it.
func newTestForwarder(t *testing.T, cfg Config) (*Forwarder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f, reg
}

// query is a query for name and qtype with id 4242 and RD, with EDNS0 of
// size edns (0: none).
func query(name string, qtype uint16, edns uint16, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	if edns != 0 {
		m.SetEdns0(edns, do)
	}
	return m
}

// counter reads one series of a counter vector.
func counter(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return value(t, c.WithLabelValues(labels...))
}

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := new(dto.Metric)
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// checkReply fails unless m is a well-formed reply to req: packable, the
// client's id and question, QR and RA set, within the client's size.
func checkReply(t *testing.T, req, m *dns.Msg, tcp bool) {
	t.Helper()
	if m == nil {
		t.Fatal("nil reply")
	}
	m.Compress = true // as it goes out (an unpacked reply has it clear)
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("reply does not pack: %v\n%v", err, m)
	}
	if len(b) > clientSize(req, tcp) {
		t.Errorf("reply is %d octets, client takes %d", len(b), clientSize(req, tcp))
	}
	if m.Id != req.Id || !m.Response || !m.RecursionAvailable {
		t.Errorf("reply id %d QR %v RA %v, want id %d QR RA", m.Id, m.Response, m.RecursionAvailable, req.Id)
	}
	if len(m.Question) != 1 || m.Question[0] != req.Question[0] {
		t.Errorf("reply question %v, want %v", m.Question, req.Question)
	}
	if (req.IsEdns0() == nil) != (m.IsEdns0() == nil) {
		t.Errorf("reply OPT %v, query OPT %v", m.IsEdns0(), req.IsEdns0())
	}
}

// serveForwarder serves f on 127.0.0.1 over UDP, as dnsserver would, until
// the test ends; it returns the address.
func serveForwarder(t *testing.T, f *Forwarder) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_ = w.WriteMsg(f.Forward(context.Background(), r, false))
	})}
	up := make(chan struct{})
	s.NotifyStartedFunc = func() { close(up) }
	go func() { _ = s.ActivateAndServe() }()
	<-up
	t.Cleanup(func() { _ = s.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// exchange asks addr m over net with miekg/dns's client.
func exchange(t *testing.T, network string, addr netip.AddrPort, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("exchange with %s over %s: %v", addr, network, err)
	}
	return r
}

func port(a netip.AddrPort) string { return strconv.Itoa(int(a.Port())) }

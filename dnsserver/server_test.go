package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
)

// running is a Server serving on loopback for one test.
type running struct {
	s        *Server
	udp, tcp string
}

// start runs a server for cfg on 127.0.0.1:0 until the test ends; tweaks
// change it before it runs.
func start(tb testing.TB, cfg Config, tweaks ...func(*Server)) *running {
	tb.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	for _, f := range tweaks {
		f(s)
	}
	return serve(tb, s)
}

// serve runs s until the test ends, and checks that Run then returns nil.
func serve(tb testing.TB, s *Server) *running {
	tb.Helper()
	type addrs struct{ udp, tcp net.Addr }
	up := make(chan addrs, 1)
	s.ready = func(udp, tcp net.Addr) { up <- addrs{udp, tcp} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
	select {
	case a := <-up:
		return &running{s: s, udp: a.udp.String(), tcp: a.tcp.String()}
	case err := <-done:
		tb.Fatalf("Run: %v", err)
		return nil
	}
}

func (r *running) exchange(t *testing.T, network string, req *dns.Msg) *dns.Msg {
	t.Helper()
	addr := r.udp
	if network == "tcp" {
		addr = r.tcp
	}
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	m, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("exchange over %s: %v", network, err)
	}
	return m
}

func TestServerSamePort(t *testing.T) {
	r := start(t, Config{Tables: newTables(testTable(t))})
	_, up, _ := net.SplitHostPort(r.udp)
	_, tp, _ := net.SplitHostPort(r.tcp)
	if up != tp || up == "0" {
		t.Errorf("udp %s, tcp %s: want one non-zero port", r.udp, r.tcp)
	}
}

func TestServer(t *testing.T) {
	tbl := testTable(t)
	r := start(t, Config{Tables: newTables(tbl)})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			for _, tt := range answerCases() {
				t.Run(tt.name, func(t *testing.T) {
					req := tt.query()
					tt.check(t, tbl, req, r.exchange(t, network, req))
				})
			}
		})
	}
}

func TestServerEDNS(t *testing.T) {
	r := start(t, Config{Tables: newTables(testTable(t))})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			req := new(dns.Msg)
			req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
			req.SetEdns0(4096, true)
			m := r.exchange(t, network, req)
			opt := m.IsEdns0()
			if opt == nil || opt.UDPSize() != ednsSize || !opt.Do() {
				t.Fatalf("OPT %v, want size %d with DO", opt, ednsSize)
			}
			if len(m.Answer) != 1 {
				t.Errorf("answer %v, want one A", m.Answer)
			}

			req = new(dns.Msg)
			req.SetQuestion("example.com.", dns.TypeA)
			req.SetEdns0(1232, false)
			if m := r.exchange(t, network, req); m.Rcode != dns.RcodeRefused || m.IsEdns0() == nil {
				t.Errorf("REFUSED with EDNS0: rcode %s, OPT %v", dns.RcodeToString[m.Rcode], m.IsEdns0())
			}
		})
	}
}

func TestServerTruncation(t *testing.T) {
	tbl := testTable(t)
	r := start(t, Config{Tables: newTables(tbl)})
	srv := func(name string, edns uint16) *dns.Msg {
		req := new(dns.Msg)
		req.SetQuestion("_"+name+"._tcp.marathon."+l4lb, dns.TypeSRV)
		if edns != 0 {
			req.SetEdns0(edns, false)
		}
		return req
	}
	tests := []struct {
		name      string
		network   string
		req       *dns.Msg
		truncated bool
		limit     int
		all       int // answers without truncation
	}{
		{"udp without EDNS0 is cut at 512", "udp", srv("big", 0), true, dns.MinMsgSize, bigPorts},
		{"udp with a size below 512 is cut at 512", "udp", srv("big", 300), true, dns.MinMsgSize, bigPorts},
		{"udp with EDNS0 600", "udp", srv("big", 600), true, 600, bigPorts},
		{"udp with EDNS0 4096 fits", "udp", srv("big", 4096), false, ednsSize, bigPorts},
		{"udp with EDNS0 4096 is cut at 1232", "udp", srv("huge", 4096), true, ednsSize, hugePorts},
		{"tcp is never truncated", "tcp", srv("big", 0), false, dns.MaxMsgSize, bigPorts},
		{"tcp takes large answers", "tcp", srv("huge", 0), false, dns.MaxMsgSize, hugePorts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &dns.Client{Net: tt.network, Timeout: 10 * time.Second, UDPSize: dns.MaxMsgSize}
			addr := r.udp
			if tt.network == "tcp" {
				addr = r.tcp
			}
			conn, err := c.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.UDPSize = dns.MaxMsgSize
			if err := conn.WriteMsg(tt.req); err != nil {
				t.Fatal(err)
			}
			raw, err := conn.ReadMsgHeader(nil)
			if err != nil {
				t.Fatal(err)
			}
			var m dns.Msg
			if err := m.Unpack(raw); err != nil {
				t.Fatalf("unpack %d octets: %v", len(raw), err)
			}
			if len(raw) > tt.limit {
				t.Errorf("reply is %d octets, limit %d", len(raw), tt.limit)
			}
			if m.Truncated != tt.truncated {
				t.Errorf("TC %v, want %v (%d answers in %d octets)", m.Truncated, tt.truncated, len(m.Answer), len(raw))
			}
			if !tt.truncated && len(m.Answer) != tt.all {
				t.Errorf("%d answers, want %d", len(m.Answer), tt.all)
			}
			if tt.truncated && len(m.Answer) >= tt.all {
				t.Errorf("TC set with all %d answers", len(m.Answer))
			}
			if (tt.req.IsEdns0() != nil) != (m.IsEdns0() != nil) {
				t.Errorf("OPT %v in the reply to a query with OPT %v", m.IsEdns0(), tt.req.IsEdns0())
			}
		})
	}
}

// TestServerTCPConnectionLimit checks that connections over MaxConcurrent
// are closed, and that a closed connection frees its slot.
func TestServerTCPConnectionLimit(t *testing.T) {
	// The idle timeout must not free the first connection's slot early.
	r := start(t, Config{Tables: newTables(testTable(t)), MaxConcurrent: 1},
		func(s *Server) { s.idleTimeout = time.Hour })
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	dial := func() *dns.Conn {
		c, err := (&dns.Client{Net: "tcp", Timeout: 10 * time.Second}).Dial(r.tcp)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ask := func(c *dns.Conn) error {
		if err := c.WriteMsg(req); err != nil {
			return err
		}
		_, err := c.ReadMsg()
		return err
	}
	first := dial()
	if err := ask(first); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second := dial()
	if err := ask(second); err == nil {
		t.Errorf("second connection answered while the first holds the only slot")
	}
	second.Close()
	first.Close()
	// The slot comes back once the server sees the close; poll for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := dial()
		err := ask(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after the first closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeDNSDropsOverLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Tables: newTables(testTable(t)), MaxConcurrent: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	s.inflight <- struct{}{}
	s.inflight <- struct{}{}
	u, c := &writer{remote: udpClient}, &writer{remote: tcpClient}
	s.ServeDNS(u, req)
	s.ServeDNS(c, req)
	if len(u.msgs) != 0 || u.closed {
		t.Errorf("udp over the limit: wrote %d, closed %v; want dropped silently", len(u.msgs), u.closed)
	}
	if len(c.msgs) != 0 || !c.closed {
		t.Errorf("tcp over the limit: wrote %d, closed %v; want closed", len(c.msgs), c.closed)
	}
	if got := counter(t, reg, "vipbridge_dns_dropped_total", "what", "query"); got != 2 {
		t.Errorf("dropped queries %v, want 2", got)
	}
	<-s.inflight
	s.ServeDNS(u, req)
	if len(u.msgs) != 1 {
		t.Errorf("after a slot freed: wrote %d, want 1", len(u.msgs))
	}
}

func TestServeDNSMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Tables: newTables(testTable(t)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(name string, qtype uint16) {
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		s.ServeDNS(&writer{remote: udpClient}, req)
	}
	ask("foo.marathon."+l4lb, dns.TypeA)
	ask("foo.marathon."+l4lb, dns.TypeA)
	ask("nope.marathon."+l4lb, dns.TypeAAAA)
	ask("example.com.", dns.TypeA)
	ask("foo.marathon."+l4lb, dns.TypeNAPTR)
	tests := []struct {
		rcode, qtype string
		want         float64
	}{
		{"NOERROR", "A", 2},
		{"NXDOMAIN", "AAAA", 1},
		{"REFUSED", "A", 1},
		{"NOERROR", "other", 1},
	}
	for _, tt := range tests {
		if got := counter(t, reg, "vipbridge_dns_queries_total", "rcode", tt.rcode, "qtype", tt.qtype); got != tt.want {
			t.Errorf("queries{rcode=%s,qtype=%s} = %v, want %v", tt.rcode, tt.qtype, got, tt.want)
		}
	}
	if n := series(t, reg, "vipbridge_dns_queries_total"); n != 4 {
		t.Errorf("gathered %d series, want 4", n)
	}
	if _, err := New(Config{Tables: newTables(nil), Registerer: reg}); err == nil {
		t.Errorf("second server on one registry: no error, want a duplicate registration error")
	}
}

func TestRunAddressInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := New(Config{Tables: newTables(nil), Addr: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Errorf("Run on a taken port returned nil, want an error")
	}
}

func TestRunTCPPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Tables: newTables(nil), Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Run with the TCP port taken: %v, want address in use", err)
	}
}

func TestRunCancelledBeforeServing(t *testing.T) {
	s, err := New(Config{Tables: newTables((*discovery.Table)(nil)), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run with a cancelled context: %v, want nil", err)
	}
}

// counter returns the value of the counter name with the label pairs
// labels from reg, or 0 if there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// series counts the series of metric name in reg.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestServeDNSDebugLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Tables: newTables(testTable(t)), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	req := new(dns.Msg)
	req.SetQuestion("nope.marathon."+l4lb, dns.TypeA)
	s.ServeDNS(&writer{remote: tcpClient}, req)
	s.ServeDNS(&writer{}, new(dns.Msg)) // no question, no remote address
	out := buf.String()
	for _, want := range []string{"level=DEBUG", "msg=query", "qname=nope.marathon." + l4lb, "rcode=NXDOMAIN", "qtype=A", "rcode=FORMERR", "qtype=none"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=INFO") || strings.Contains(out, "level=ERROR") {
		t.Errorf("queries logged above Debug:\n%s", out)
	}
}

func TestServerIPv6Loopback(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this host (%v); skipping", err)
	}
	probe.Close()
	tbl := testTable(t)
	s, err := New(Config{Tables: newTables(tbl), Addr: "[::1]:0"})
	if err != nil {
		t.Fatal(err)
	}
	r := serve(t, s)
	for _, network := range []string{"udp", "tcp"} {
		req := new(dns.Msg)
		req.SetQuestion("dual.marathon."+l4lb, dns.TypeAAAA)
		m := r.exchange(t, network, req)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != expand(t, tbl, "{dual.marathon/6}") {
			t.Errorf("%s over ::1: answer %v", network, m.Answer)
		}
	}
}

// TestUDPAliveCountsOut sends datagrams along every way miekg/dns may
// take with one (served by the handler, refused with NOTIMP or FORMERR,
// ignored as a response, unparsable, shorter than a header) and checks
// that each is counted out exactly once: the count of UDP queries in
// flight, which bounds miekg/dns's goroutines (fastConn.admit), comes
// back to zero, and a full-path query is still answered.
func TestUDPAliveCountsOut(t *testing.T) {
	r := start(t, Config{Tables: newTables(testTable(t))})
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full := new(dns.Msg) // TXT: the full path answers it
	full.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeTXT)
	notify := new(dns.Msg)
	notify.SetNotify("l4lb.thisdcos.directory.")
	response := new(dns.Msg)
	response.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	response.Response = true
	twoQuestions := new(dns.Msg)
	twoQuestions.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	datagrams := [][]byte{
		pack(full),
		pack(notify),                   // NOTIMP, no handler
		pack(response),                 // ignored
		pack(twoQuestions),             // FORMERR from the handler
		append(pack(full)[:12], 0xFF),  // header, then garbage: unparsable
		{0x12, 0x34, 0x01},             // shorter than a header
		append(pack(full), 0, 0, 0, 0), // trailing bytes
	}
	c, err := net.Dial("udp", r.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 50 {
		for _, d := range datagrams {
			if _, err := c.Write(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every datagram was read once a later query is answered (one socket
	// here: reads are in order); then the count must drain to zero.
	if m := r.exchange(t, "udp", full); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("full-path query: rcode %d", m.Rcode)
	}
	deadline := time.Now().Add(10 * time.Second) // bounds a failing test only
	for r.s.udpAlive.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := r.s.udpAlive.Load(); n != 0 {
		t.Errorf("UDP queries in flight after all were served: %d, want 0", n)
	}
}

package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/dnsserver/forward"
)

// zoneUpstream is a miekg/dns upstream on 127.0.0.1 (UDP and TCP, one
// port) answering from zone text, NXDOMAIN otherwise; over UDP answers are
// truncated to the query's size. block, if set, delays every answer until
// it is closed; got receives every question name.
type zoneUpstream struct {
	addr    netip.AddrPort
	queries atomic.Int64
	got     chan string
}

func startZoneUpstream(t *testing.T, block chan struct{}, records ...string) *zoneUpstream {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	u := &zoneUpstream{got: make(chan string, 1000)}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		u.got <- r.Question[0].Name
		if block != nil {
			<-block
		}
		m := new(dns.Msg)
		m.SetReply(r)
		for _, rr := range rrs {
			if strings.EqualFold(rr.Header().Name, r.Question[0].Name) && rr.Header().Rrtype == r.Question[0].Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), opt.Do())
		}
		if w.RemoteAddr().Network() == "udp" {
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	})
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		up := make(chan struct{})
		s.NotifyStartedFunc = func() { close(up) }
		go func() { _ = s.ActivateAndServe() }()
		<-up
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	if block != nil {
		t.Cleanup(func() {
			select {
			case <-block:
			default:
				close(block)
			}
		})
	}
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	return u
}

func newForwarder(t *testing.T, cfg forward.Config) *forward.Forwarder {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	f, err := forward.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// exchangeFrom asks addr req over network from the local address from
// ("" for any).
func exchangeFrom(t *testing.T, network, from, addr string, req *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	if from != "" {
		ip := net.ParseIP(from)
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}}
		if network == "tcp" {
			c.Dialer.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	m, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("exchange with %s over %s: %v", addr, network, err)
	}
	return m
}

func TestForwardingEndToEnd(t *testing.T) {
	up := startZoneUpstream(t, nil, "www.example. 300 IN A 192.0.2.1")
	reg := prometheus.NewRegistry()
	r := start(t, Config{
		Tables:      newTables(taskTable(t)),
		MesosDomain: "mesos",
		Forwarder:   newForwarder(t, forward.Config{Upstreams: []netip.AddrPort{up.addr}, NoCache: true}),
		Allow:       loopback,
		Registerer:  reg,
	})
	for _, network := range []string{"udp", "tcp"} {
		req := new(dns.Msg)
		req.SetQuestion("WWW.example.", dns.TypeA)
		req.Id = 777
		m := r.exchange(t, network, req)
		if m.Id != 777 || !m.RecursionAvailable || m.Authoritative || m.Rcode != dns.RcodeSuccess || m.Question[0].Name != "WWW.example." {
			t.Errorf("%s: reply header %+v question %v", network, m.MsgHdr, m.Question)
		}
		checkSection(t, nil, network+" answer", m.Answer, []string{"www.example. 300 IN A 192.0.2.1"})
	}
	// Served names stay the server's own, fast path and full path, in
	// every zone.
	for _, name := range []string{"foo.marathon.l4lb.thisdcos.directory.", "web.marathon.mesos.",
		"web.marathon.autoip.dcos.thisdcos.global.", "nope.marathon.mesos.thisdcos.directory."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeANY} {
			req := new(dns.Msg)
			req.SetQuestion(name, qtype)
			if m := r.exchange(t, "udp", req); !m.Authoritative || m.RecursionAvailable {
				t.Errorf("served name %s, %s: %v", name, dns.TypeToString[qtype], m)
			}
		}
	}
	if n := up.queries.Load(); n != 2 {
		t.Errorf("upstream got %d queries, want 2", n)
	}
	if n := counter(t, reg, "vipbridge_dns_queries_total", "rcode", "NOERROR", "qtype", "A"); n < 3 {
		t.Errorf("queries{NOERROR,A} = %v, want at least 3", n)
	}
}

func TestForwardingRefusesOutsideAllow(t *testing.T) {
	up := startZoneUpstream(t, nil, "www.example. 300 IN A 192.0.2.1")
	reg := prometheus.NewRegistry()
	s, err := New(Config{
		Addr:       "127.0.0.2:0",
		Tables:     newTables(testTable(t)),
		Forwarder:  newForwarder(t, forward.Config{Upstreams: []netip.AddrPort{up.addr}}),
		Allow:      []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := serve(t, s)
	req := new(dns.Msg)
	req.SetQuestion("www.example.", dns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": r.udp, "tcp": r.tcp}[network]
		if m := exchangeFrom(t, network, "127.0.0.3", addr, req); m.Rcode != dns.RcodeRefused {
			t.Errorf("%s from 127.0.0.3: rcode %s, want REFUSED", network, dns.RcodeToString[m.Rcode])
		}
		if m := exchangeFrom(t, network, "127.0.0.1", addr, req); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("%s from 127.0.0.1: rcode %s, %d answers", network, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
	// Served names are answered to everyone.
	srv := new(dns.Msg)
	srv.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	if m := exchangeFrom(t, "udp", "127.0.0.3", r.udp, srv); len(m.Answer) != 1 {
		t.Errorf("served name from 127.0.0.3: %v", m)
	}
	if n := counter(t, reg, "vipbridge_dns_forward_refused_total"); n != 2 {
		t.Errorf("refused %v, want 2", n)
	}
	if n := up.queries.Load(); n != 1 {
		t.Errorf("upstream got %d queries, want 1 (the second was cached)", n)
	}
}

func TestForwardingZoneOverServedZone(t *testing.T) {
	up := startZoneUpstream(t, nil, "foo.marathon.dclb.thisdcos.directory. 60 IN A 192.0.2.7")
	r := start(t, Config{
		Tables: newTables(testTable(t)),
		Forwarder: newForwarder(t, forward.Config{
			Zones: []forward.Zone{{Name: "dclb.thisdcos.directory.", Upstreams: []netip.AddrPort{up.addr}}},
		}),
		Allow: loopback,
	})
	if !r.s.noFast {
		t.Error("the fast path is on although a forward zone covers a served zone")
	}
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon.dclb.thisdcos.directory.", dns.TypeA)
	if m := r.exchange(t, "udp", req); m.Authoritative || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("forwarded zone: %v", m)
	}
	req.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	if m := r.exchange(t, "udp", req); !m.Authoritative || len(m.Answer) != 1 {
		t.Errorf("served zone: %v", m)
	}
	// Names outside every forward zone, without default upstreams: REFUSED.
	req.SetQuestion("www.example.", dns.TypeA)
	if m := r.exchange(t, "udp", req); m.Rcode != dns.RcodeRefused {
		t.Errorf("no upstream: rcode %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
}

func TestForwardingTruncationAndTCP(t *testing.T) {
	var records []string
	for i := range 40 {
		records = append(records, fmt.Sprintf("big.example. 60 IN TXT \"record %02d of an answer too long for one datagram\"", i))
	}
	up := startZoneUpstream(t, nil, records...)
	r := start(t, Config{
		Tables:    newTables(testTable(t)),
		Forwarder: newForwarder(t, forward.Config{Upstreams: []netip.AddrPort{up.addr}}),
		Allow:     loopback,
	})
	req := new(dns.Msg)
	req.SetQuestion("big.example.", dns.TypeTXT)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	m, _, err := c.Exchange(req, r.udp)
	if err != nil {
		t.Fatal(err)
	}
	m.Compress = true // as it came
	if !m.Truncated || m.Len() > dns.MinMsgSize {
		t.Errorf("UDP: TC %v, %d octets; want TC within 512", m.Truncated, m.Len())
	}
	if m := r.exchange(t, "tcp", req); m.Truncated || len(m.Answer) != 40 {
		t.Errorf("TCP: TC %v, %d answers; want 40", m.Truncated, len(m.Answer))
	}
}

// A slow upstream holding every forwarding slot delays no answer of the
// served zones, fast path or full path.
func TestForwardingFloodSparesServedZones(t *testing.T) {
	block := make(chan struct{})
	up := startZoneUpstream(t, block)
	reg := prometheus.NewRegistry()
	const slots = 4
	r := start(t, Config{
		Tables:        newTables(testTable(t)),
		Forwarder:     newForwarder(t, forward.Config{Upstreams: []netip.AddrPort{up.addr}, Timeout: time.Minute}),
		Allow:         loopback,
		MaxConcurrent: slots,
		Registerer:    reg,
	})
	conn, err := net.Dial("udp", r.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range slots + 3 {
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		b, _ := q.Pack()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		if i < slots {
			<-up.got // in flight upstream, holding its slot
		}
	}
	for counter(t, reg, "vipbridge_dns_dropped_total", "what", "forward") < 3 {
		time.Sleep(time.Millisecond)
	}
	for _, qtype := range []uint16{dns.TypeA, dns.TypeSOA} { // fast path, full path
		req := new(dns.Msg)
		name := "foo.marathon.l4lb.thisdcos.directory."
		if qtype == dns.TypeSOA {
			name = "l4lb.thisdcos.directory."
		}
		req.SetQuestion(name, qtype)
		if m := r.exchange(t, "udp", req); !m.Authoritative || len(m.Answer) != 1 {
			t.Errorf("served %s during the flood: %v", dns.TypeToString[qtype], m)
		}
	}
	close(block)
}

func TestServerSeveralAddresses(t *testing.T) {
	second := freePort(t, "127.0.0.2")
	s, err := New(Config{Addr: "127.0.0.1:0, " + second, Tables: newTables(testTable(t))})
	if err != nil {
		t.Fatal(err)
	}
	r := serve(t, s)
	req := new(dns.Msg)
	req.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	for _, addr := range []string{r.udp, second} {
		if m := exchangeFrom(t, "udp", "", addr, req); len(m.Answer) != 1 {
			t.Errorf("%s: %v", addr, m)
		}
		if m := exchangeFrom(t, "tcp", "", addr, req); len(m.Answer) != 1 {
			t.Errorf("%s over tcp: %v", addr, m)
		}
	}
}

// freePort returns host:port with a port free for UDP and TCP on host a
// moment ago.
func freePort(t *testing.T, host string) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// A task zone forwarded whole (a cluster node sending dcos.thisdcos.directory
// to the publishers) is not served: its names go to the upstream, and the
// fast path stays on for every other zone.
func TestForwardingTaskZoneWhole(t *testing.T) {
	up := startZoneUpstream(t, nil, "web.marathon.autoip.dcos.thisdcos.directory. 60 IN A 192.0.2.8")
	r := start(t, Config{
		Tables: newTables(testTable(t)),
		Forwarder: newForwarder(t, forward.Config{
			Zones: []forward.Zone{{Name: "dcos.thisdcos.directory.", Upstreams: []netip.AddrPort{up.addr}}},
		}),
		Allow: loopback,
	})
	if r.s.noFast {
		t.Error("the fast path is off although the forward zone is a whole task zone")
	}
	if r.s.Serves("web.marathon.autoip.dcos.thisdcos.directory.") {
		t.Error("the forwarded task zone is still served")
	}
	req := new(dns.Msg)
	req.SetQuestion("web.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA)
	if m := r.exchange(t, "udp", req); m.Authoritative || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.8" {
		t.Errorf("forwarded task zone: %v", m)
	}
	req.SetQuestion("foo.marathon.l4lb.thisdcos.directory.", dns.TypeA)
	if m := r.exchange(t, "udp", req); !m.Authoritative || len(m.Answer) != 1 {
		t.Errorf("served zone: %v", m)
	}
}

package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vipbridge/vipbridge/discovery"
)

// Tables gives the table to answer from. *discovery.Reconciler satisfies it.
type Tables interface{ Table() *discovery.Table }

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Addr is the host:port to serve UDP and TCP on, or several, comma
	// separated; "" means ":53". With port 0 both protocols get the same
	// free port.
	Addr string
	// TTL is the TTL of every record and the SOA minimum, in whole seconds
	// (rounded down); 0 means 5s (UPSTREAM.md §2.2).
	TTL time.Duration
	// Tables gives the table to answer from; required.
	Tables Tables
	// MaxConcurrent bounds both the queries being answered at once and the
	// open TCP connections; 0 means 1024. Queries over the bound are
	// dropped (UDP clients retry), TCP connections over it are closed.
	MaxConcurrent int
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger receives one Info line when serving starts and Debug lines per
	// query; nil discards.
	Logger *slog.Logger
	// MesosDomain is the domain of mesos-dns's zone ("mesos"); empty
	// serves none. MesosTTL is its records' TTL; 0 means 60 s (DC/OS's).
	// The other task zones (dcos.thisdcos.directory and the
	// mesos.thisdcos.directory mirror) have TTL.
	MesosDomain string
	MesosTTL    time.Duration
	// Ready, if set, is called once with the bound addresses (of the
	// first address of Addr, or the first of PacketConns and Listeners,
	// nil where there is none) when every UDP and TCP listener serves.
	Ready func(udp, tcp net.Addr)
	// Forwarder, if set, answers queries for names outside the served
	// zones from clients in Allow (forwarding.go); nil: such names are
	// REFUSED.
	Forwarder Forwarder
	// Allow are the clients whose queries go to the Forwarder; others
	// get REFUSED for names outside the served zones. Empty: nobody.
	Allow []netip.Prefix
	// PacketConns and Listeners, if either is set, are ready-made UDP
	// and TCP sockets that Run serves instead of binding Addr (systemd's
	// socket activation hands them over; Addr is then unused). Run closes
	// them when it returns; whoever passed them keeps its own copies open
	// across a restart, and queries wait in the kernel meanwhile.
	PacketConns []*net.UDPConn
	Listeners   []net.Listener
}

// Timeouts of the miekg/dns servers. The TCP idle timeout is short so that
// idle connections cannot hold the MaxConcurrent connection slots for long
// (RFC 7766 §6.2.3 lets servers under load close idle connections early).
const (
	readTimeout  = 2 * time.Second
	writeTimeout = 2 * time.Second
	tcpIdle      = 5 * time.Second
	drainTimeout = 5 * time.Second
	// udpReadSize is the read buffer for UDP queries; queries are small.
	udpReadSize = 4096
	// udpReadBuffer is the receive buffer asked for each UDP socket: a
	// burst of queries queues there while the read loop answers the
	// previous batch, and the default (about 200 small datagrams) drops
	// some of a few hundred clients' queries at once.
	udpReadBuffer = 1 << 20
	// bindAttempts is how often Run tries a fresh port 0 when the port the
	// UDP socket got is taken for TCP.
	bindAttempts = 16
)

// Server is an authoritative DNS server for the VIP zones. Its handler and
// Answer are safe for concurrent use.
type Server struct {
	listen []string // the addresses of Config.Addr
	ttl    uint32
	// taskZones are the served task zones (taskzone.go); rotation turns
	// their multi-record answers.
	taskZones []taskZone
	rotation  rotationCounter
	tables    Tables
	log       *slog.Logger
	ready     func(udp, tcp net.Addr)
	inflight  chan struct{} // query slots
	// udpAlive counts the UDP queries handed to miekg/dns, each in a
	// goroutine of its own, until that goroutine is done with it (see
	// fastConn.admit): at most cap(inflight).
	udpAlive atomic.Int64
	conns    chan struct{} // TCP connection slots
	metrics  *serverMetrics
	// idleTimeout closes TCP connections idle this long (tcpIdle; tests
	// lengthen it).
	idleTimeout time.Duration

	ents   atomic.Pointer[nonTerminals]
	entsMu sync.Mutex

	// fast holds the fast path's packed replies (fastpath.go); rebuild
	// asks runPacker for those of a new table.
	fast    atomic.Pointer[fastTable]
	rebuild chan struct{}
	// fwd hands queries for other names to the Forwarder; nil: none.
	// noFast turns the fast path off: a forward zone wins over a served
	// zone (forwarding.go, shadows).
	fwd    *forwarding
	noFast bool
	// udpSockets is how many SO_REUSEPORT UDP sockets Run opens;
	// udpBatch how many datagrams each reads or writes per system call
	// at most (1: one at a time).
	udpSockets int
	udpBatch   int
	// inheritedUDP and inheritedTCP are Config.PacketConns and
	// Config.Listeners: served instead of listen when either is set.
	inheritedUDP []*net.UDPConn
	inheritedTCP []net.Listener
}

// New checks cfg and returns a Server; it binds nothing until Run.
func New(cfg Config) (*Server, error) {
	if cfg.Tables == nil {
		return nil, errors.New("dns server: no tables")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":53"
	}
	addrs := strings.Split(cfg.Addr, ",")
	for i, a := range addrs {
		addrs[i] = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(addrs[i]); err != nil {
			return nil, fmt.Errorf("dns server address %q: %w", addrs[i], err)
		}
	}
	switch {
	case cfg.TTL < 0:
		return nil, fmt.Errorf("dns ttl %v is negative", cfg.TTL)
	case cfg.TTL == 0:
		cfg.TTL = 5 * time.Second
	case cfg.TTL/time.Second > 1<<31-1: // RFC 2181 §8
		return nil, fmt.Errorf("dns ttl %v exceeds 2^31-1 seconds", cfg.TTL)
	}
	switch {
	case cfg.MaxConcurrent < 0:
		return nil, fmt.Errorf("dns max concurrent %d is negative", cfg.MaxConcurrent)
	case cfg.MaxConcurrent == 0:
		cfg.MaxConcurrent = 1024
	}
	switch {
	case cfg.MesosTTL < 0 || cfg.MesosTTL/time.Second > 1<<31-1:
		return nil, fmt.Errorf("dns mesos ttl %v out of range", cfg.MesosTTL)
	case cfg.MesosTTL == 0:
		cfg.MesosTTL = 60 * time.Second
	}
	if d := strings.TrimSuffix(cfg.MesosDomain, "."); d != "" {
		if _, ok := dns.IsDomainName(d); !ok {
			return nil, fmt.Errorf("dns mesos domain %q is not a domain name", cfg.MesosDomain)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	fwd, err := newForwarding(cfg, cfg.MaxConcurrent)
	if err != nil {
		return nil, err
	}
	s := &Server{
		listen: addrs,
		fwd:    fwd,
		ttl:    uint32(cfg.TTL / time.Second),
		taskZones: taskZones(strings.TrimSuffix(cfg.MesosDomain, "."), uint32(cfg.MesosTTL/time.Second),
			uint32(cfg.TTL/time.Second)),
		tables:   cfg.Tables,
		log:      log.With("component", "dns"),
		ready:    cfg.Ready,
		inflight: make(chan struct{}, cfg.MaxConcurrent),
		conns:    make(chan struct{}, cfg.MaxConcurrent),
		metrics:  m,
		rebuild:  make(chan struct{}, 1),

		idleTimeout: tcpIdle,
		udpSockets:  udpSocketCount(),
		udpBatch:    udpBatch,

		inheritedUDP: cfg.PacketConns,
		inheritedTCP: cfg.Listeners,
	}
	if fwd != nil {
		// A task zone forwarded whole (--forward-zone mesos=…, or
		// dcos.thisdcos.directory=… on a cluster node) is not served, so
		// it shadows nothing and the fast path stays on.
		s.taskZones = slices.DeleteFunc(s.taskZones, func(z taskZone) bool { return fwd.f.ZoneOf(z.name) == z.name })
		fwd.zones, fwd.served = s.zoneNames(), s.servedZone
		s.noFast = fwd.shadows()
	}
	return s, nil
}

// Run serves UDP and TCP on the configured addresses (or the inherited
// sockets, Config.PacketConns and Config.Listeners) until ctx ends, then
// shuts both servers down (waiting up to drainTimeout for answers in
// flight) and returns nil. It returns an error if it cannot bind or a
// listener fails.
func (s *Server) Run(ctx context.Context) error {
	all, udp0, tcp0, closeAll, err := s.bind(ctx)
	defer func() {
		for _, c := range closeAll {
			c.Close()
		}
	}()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// The fast path's replies are packed in the background (runPacker):
	// at 10,000 names that takes a quarter of a second, during which the
	// full path answers, so that a restart serves its first answer sooner.
	select {
	case s.rebuild <- struct{}{}:
	default:
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, l := range all {
		g.Go(l.serve)
	}
	g.Go(func() error { return s.runPacker(gctx) })
	g.Go(func() error {
		up := true
		for _, l := range all {
			up = up && l.waitUp(gctx)
		}
		if up && s.ready != nil {
			s.ready(udp0, tcp0)
		}
		<-gctx.Done()
		s.fwd.stop() // forwarded queries end at once, with SERVFAIL
		drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
		defer cancel()
		for _, l := range all {
			if err := l.shutdown(drain); err != nil {
				s.log.Warn("dns shutdown incomplete", "net", l.name, "err", err)
			}
		}
		return nil
	})
	return g.Wait()
}

// bind returns the servers of every socket Run serves, the addresses of
// the first UDP and TCP ones (nil if there is none) and what to close when
// Run returns: the inherited sockets (Config.PacketConns and
// Config.Listeners) when there are some, else those it binds on each
// address of Config.Addr. It returns the sockets bound so far with an error.
func (s *Server) bind(ctx context.Context) (all []*listener, udp0, tcp0 net.Addr, closers []io.Closer, err error) {
	if len(s.inheritedUDP)+len(s.inheritedTCP) > 0 {
		for _, pc := range s.inheritedUDP {
			closers = append(closers, pc)
			all = append(all, s.listeners([]*net.UDPConn{pc}, nil)...)
		}
		for _, ln := range s.inheritedTCP {
			closers = append(closers, ln)
			all = append(all, s.listeners(nil, ln)...)
		}
		if len(s.inheritedUDP) > 0 {
			udp0 = s.inheritedUDP[0].LocalAddr()
		}
		if len(s.inheritedTCP) > 0 {
			tcp0 = s.inheritedTCP[0].Addr()
		}
		s.log.Info("serving dns on inherited sockets", "udp", len(s.inheritedUDP), "tcp", len(s.inheritedTCP),
			"first_udp", udp0, "first_tcp", tcp0, "forwarding", s.fwd != nil)
		return all, udp0, tcp0, closers, nil
	}
	for _, addr := range s.listen {
		pcs, ln, err := listen(ctx, addr, s.udpSockets)
		if err != nil {
			return nil, nil, nil, closers, err
		}
		closers = append(closers, ln)
		for _, pc := range pcs {
			closers = append(closers, pc)
		}
		if udp0 == nil {
			udp0, tcp0 = pcs[0].LocalAddr(), ln.Addr()
		}
		all = append(all, s.listeners(pcs, ln)...)
		s.log.Info("serving dns", "udp", pcs[0].LocalAddr().String(), "udp_sockets", len(pcs), "tcp", ln.Addr().String(),
			"forwarding", s.fwd != nil)
	}
	return all, udp0, tcp0, closers, nil
}

// listeners are the miekg/dns servers of one address: one per UDP socket
// of pcs, and one for TCP on ln unless ln is nil.
func (s *Server) listeners(pcs []*net.UDPConn, ln net.Listener) []*listener {
	var all []*listener
	for _, pc := range pcs {
		all = append(all, newListener("udp", &dns.Server{
			PacketConn:     newFastConn(pc, s),
			Net:            "udp",
			Handler:        udpHandler{s},
			UDPSize:        udpReadSize,
			ReadTimeout:    readTimeout,
			WriteTimeout:   writeTimeout,
			MsgAcceptFunc:  s.acceptUDP,
			MsgInvalidFunc: s.invalidUDP,
		}))
	}
	if ln == nil {
		return all
	}
	return append(all, newListener("tcp", &dns.Server{
		Listener:      &limitListener{Listener: ln, slots: s.conns, dropped: s.metrics.dropped.WithLabelValues("tcp_conn")},
		Net:           "tcp",
		Handler:       s,
		ReadTimeout:   readTimeout,
		WriteTimeout:  writeTimeout,
		IdleTimeout:   func() time.Duration { return s.idleTimeout },
		MsgAcceptFunc: acceptQuery,
	}))
}

// listen binds n UDP sockets on addr with SO_REUSEPORT (one where the
// platform lacks it), then TCP on the port UDP got. With port 0 the UDP
// port may be taken for TCP; listen then tries another.
func listen(ctx context.Context, addr string, n int) ([]*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns address %q: %w", addr, err)
	}
	var lc net.ListenConfig
	for attempt := 1; ; attempt++ {
		pcs, err := listenUDP(ctx, addr, n)
		if err != nil {
			return nil, nil, err
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(pcs[0].LocalAddr().(*net.UDPAddr).Port))
		ln, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return pcs, ln, nil
		}
		closeAll(pcs)
		if port != "0" || attempt == bindAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", tcpAddr, err)
		}
	}
}

// listenUDP binds n UDP sockets sharing addr's port; the first picks the
// port when addr's is 0.
func listenUDP(ctx context.Context, addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	if n <= 1 {
		lc.Control, n = nil, 1
	}
	var pcs []*net.UDPConn
	for i := range n {
		if i == 1 {
			host, _, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(host, strconv.Itoa(pcs[0].LocalAddr().(*net.UDPAddr).Port))
		}
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			closeAll(pcs)
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		uc := pc.(*net.UDPConn)
		// Best effort: the kernel caps it at net.core.rmem_max.
		_ = uc.SetReadBuffer(udpReadBuffer)
		pcs = append(pcs, uc)
	}
	return pcs, nil
}

func closeAll(pcs []*net.UDPConn) {
	for _, pc := range pcs {
		pc.Close()
	}
}

// listener is one miekg/dns server with its life-cycle signals: up closes
// when it serves, done when ActivateAndServe has returned.
type listener struct {
	name string
	srv  *dns.Server
	up   chan struct{}
	done chan struct{}
}

func newListener(name string, srv *dns.Server) *listener {
	l := &listener{name: name, srv: srv, up: make(chan struct{}), done: make(chan struct{})}
	srv.NotifyStartedFunc = func() { close(l.up) }
	return l
}

func (l *listener) serve() error {
	defer close(l.done)
	if err := l.srv.ActivateAndServe(); err != nil {
		return fmt.Errorf("serve dns over %s: %w", l.name, err)
	}
	return nil
}

// waitUp reports whether the server came up before ctx ended.
func (l *listener) waitUp(ctx context.Context) bool {
	select {
	case <-l.up:
		return true
	case <-l.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// shutdown stops the server if it ever started. ShutdownContext before
// the server is up would fail and leave it running, hence the wait.
func (l *listener) shutdown(ctx context.Context) error {
	select {
	case <-l.up:
		return l.srv.ShutdownContext(ctx)
	case <-l.done:
		return nil
	}
}

// acceptQuery replaces dns.DefaultMsgAcceptFunc: it lets queries with any
// question count through so Answer returns (and counts) FORMERR, and keeps
// the defaults otherwise: responses are ignored, other opcodes get NOTIMP,
// requests carrying more records than a query can are FORMERR.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	if dh.Qdcount > 1 || dh.Ancount > 1 || dh.Nscount > 1 || dh.Arcount > 2 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// limitListener closes accepted connections while every slot is taken, so
// at most cap(slots) TCP connections are open. Closing at once (rather than
// leaving them in the backlog) lets clients fail over quickly.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	dropped prometheus.Counter
}

// Accept returns the next connection that gets a slot.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, slots: l.slots}, nil
		default:
			c.Close()
			l.dropped.Inc()
		}
	}
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}

// miekg/dns serves every UDP datagram ReadFrom returns in a goroutine of
// its own, without a bound: fastConn.admit counts each in udpAlive and
// refuses datagrams beyond cap(inflight), and the three ways such a
// goroutine ends count it out, once: the handler returns (udpHandler), the
// query is refused before it (acceptUDP, for anything but MsgAccept), or it
// does not parse (invalidUDP: after acceptUDP accepted it, or before
// acceptUDP is asked; the handler is not called either way).

// udpHandler is the Server's handler for UDP.
type udpHandler struct{ s *Server }

func (h udpHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer h.s.udpAlive.Add(-1)
	h.s.ServeDNS(w, r)
}

// acceptUDP is acceptQuery for UDP: a datagram it does not accept never
// reaches the handler.
func (s *Server) acceptUDP(dh dns.Header) dns.MsgAcceptAction {
	a := acceptQuery(dh)
	if a != dns.MsgAccept {
		s.udpAlive.Add(-1)
	}
	return a
}

// invalidUDP counts out a datagram miekg/dns cannot parse.
func (s *Server) invalidUDP([]byte, error) { s.udpAlive.Add(-1) }

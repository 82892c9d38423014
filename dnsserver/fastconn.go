package dnsserver

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// fastConn is one UDP socket as miekg/dns's server sees it: ReadFrom
// answers what the fast path can in place, with buffers allocated once
// per socket, and returns only the other queries, which miekg/dns then
// serves with the full path (ServeDNS). It is deliberately not a
// *net.UDPConn, so that miekg/dns reads through ReadFrom. On Linux it
// reads and writes in batches (batch_linux.go); elsewhere, or with
// batches of one, it reads and answers one datagram at a time.
type fastConn struct {
	*net.UDPConn
	s     *Server
	batch *batch // nil: the plain loop
	out   []byte // reply buffer of the plain loop
	key   []byte // lower-cased question name
}

func newFastConn(c *net.UDPConn, s *Server) *fastConn {
	return &fastConn{
		UDPConn: c,
		s:       s,
		batch:   newBatch(c, s.udpBatch),
		out:     make([]byte, 0, 2*udpReadSize),
		key:     make([]byte, 0, 256),
	}
}

// ReadFrom returns the next query the fast path did not answer. miekg/dns
// sets the read deadline before each call, so a deadline bounds the loop.
func (c *fastConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.batch != nil {
		return c.batch.readFrom(c, p)
	}
	return c.readPlain(p)
}

// readPlain is ReadFrom one datagram at a time.
func (c *fastConn) readPlain(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.ReadFromUDPAddrPort(p)
		if err != nil {
			return n, nil, err
		}
		if c.serveFast(p[:n], from) || !c.admit(n) {
			continue
		}
		return n, net.UDPAddrFromAddrPort(from), nil
	}
}

// admit reports whether a datagram of n octets the fast path did not
// answer goes to miekg/dns, which serves each in a goroutine of its own:
// not when cap(inflight) of them are still being served (the query is
// dropped and counted, as ServeDNS drops one that finds no slot, but
// before a goroutine exists), nor when it is shorter than a DNS header
// (miekg/dns drops those itself, unseen by the counting in server.go).
func (c *fastConn) admit(n int) bool {
	if n < dnsHeaderLen {
		return false
	}
	if c.s.udpAlive.Add(1) > int64(cap(c.s.inflight)) {
		c.s.udpAlive.Add(-1)
		c.s.metrics.dropped.WithLabelValues("query").Inc()
		return false
	}
	return true
}

// dnsHeaderLen is the length of a DNS message header (RFC 1035 §4.1.1).
const dnsHeaderLen = 12

// serveFast answers q if the fast path can and reports whether it did.
func (c *fastConn) serveFast(q []byte, from netip.AddrPort) bool {
	reply, rcode, qtype := c.s.answerFast(q, c.out, c.key)
	if reply == nil {
		return false
	}
	// A failed write is a lost UDP answer; the client retries.
	_, _ = c.WriteToUDPAddrPort(reply, from)
	c.s.metrics.fast.count(rcode, qtype)
	return true
}

// answerFast is the fast path's reply to q from the packed replies of the
// current table, or nil (see fastTable).
func (s *Server) answerFast(q, out, key []byte) ([]byte, int, uint16) {
	f := s.fastTable()
	if f == nil {
		return nil, 0, 0
	}
	return f.answerFast(q, out, key)
}

// fastTable returns the packed replies of the current table, or nil if
// the full path must answer. A table without packed replies yet gets them
// built in the background (the full path answers meanwhile); debug query
// logging and a forward zone over a served zone (noFast) also turn the
// fast path off.
func (s *Server) fastTable() *fastTable {
	t := s.tables.Table()
	f := s.fast.Load()
	if t == nil || f == nil || f.table != t {
		if t != nil {
			select {
			case s.rebuild <- struct{}{}:
			default:
			}
		}
		return nil
	}
	if s.noFast || s.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return f
}

// packFast builds the packed replies of the current table unless they are
// there, from those of the previous table.
func (s *Server) packFast() {
	t := s.tables.Table()
	f := s.fast.Load()
	if t == nil || f != nil && f.table == t {
		return
	}
	s.fast.Store(s.buildFast(f, t))
}

// runPacker packs the replies of each new table when the fast path asks
// for them, until ctx ends. Requests made while it packs collapse into
// one more pass.
func (s *Server) runPacker(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.rebuild:
			s.packFast()
		}
	}
}

// fastCounters are the query counters of fast answers, [NOERROR,
// NXDOMAIN] × [A, AAAA, SRV], each resolved on first use (so that only
// series with queries exist) and kept, so that counting does not allocate.
type fastCounters struct {
	queries *prometheus.CounterVec
	c       [2][3]atomic.Pointer[prometheus.Counter]
}

var (
	fastRcodes = [2]int{dns.RcodeSuccess, dns.RcodeNameError}
	fastQtypes = [3]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV}
)

func (f *fastCounters) count(rcode int, qtype uint16) {
	f.counter(fastIndex(rcode, qtype)).Inc()
}

// fastIndex is the index in fastCounters.c of a fast answer.
func fastIndex(rcode int, qtype uint16) (int, int) {
	i := 0
	if rcode == dns.RcodeNameError {
		i = 1
	}
	j := 0
	switch qtype {
	case dns.TypeAAAA:
		j = 1
	case dns.TypeSRV:
		j = 2
	}
	return i, j
}

// counter is the counter of fastCounters.c[i][j].
func (f *fastCounters) counter(i, j int) prometheus.Counter {
	c := f.c[i][j].Load()
	if c == nil {
		n := f.queries.WithLabelValues(rcodeLabel(fastRcodes[i]), qtypeLabels[fastQtypes[j]])
		c = &n
		f.c[i][j].Store(c)
	}
	return *c
}

// mux.go: a few connected UDP sockets per upstream, kept open and shared
// by every query in flight to it (each query waits for the answer with its
// id on its socket), so that a forwarded query costs no socket of its
// own: dnsdist's way, and what makes forwarding fast.
package forward

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// muxSockets is how many UDP sockets each upstream gets; muxReadBuffer
// the receive buffer asked for each.
const (
	muxSockets    = 4
	muxReadBuffer = 1 << 20
)

// errIDTaken tells exchangeUDP to use a socket of its own: the query's id
// waits for an answer on the shared socket already.
var errIDTaken = errors.New("query id in flight on the shared socket")

// udpMux is the shared sockets of one upstream, opened on first use.
type udpMux struct {
	addr  string
	mu    sync.Mutex
	conns []*muxConn // nil until first use; closed with Close
	done  bool
	next  atomic.Uint32
}

// muxConn is one socket with the queries waiting on it, by id.
type muxConn struct {
	c       *net.UDPConn
	mu      sync.Mutex
	pending map[uint16]chan []byte
}

// conn returns the next socket, opening them on first use.
func (m *udpMux) conn(ctx context.Context) (*muxConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil, net.ErrClosed
	}
	if m.conns == nil {
		var d net.Dialer
		for range muxSockets {
			c, err := d.DialContext(ctx, "udp", m.addr)
			if err != nil {
				for _, mc := range m.conns {
					mc.c.Close()
				}
				m.conns = nil
				return nil, err
			}
			uc := c.(*net.UDPConn)
			// Best effort, capped by net.core.rmem_max: a burst of
			// answers waits there while the reader hands out the last.
			_ = uc.SetReadBuffer(muxReadBuffer)
			mc := &muxConn{c: uc, pending: make(map[uint16]chan []byte)}
			m.conns = append(m.conns, mc)
			go mc.read()
		}
	}
	return m.conns[m.next.Add(1)%uint32(len(m.conns))], nil
}

// close closes the sockets; their readers end.
func (m *udpMux) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	for _, mc := range m.conns {
		mc.c.Close()
	}
	m.conns = nil
}

// read hands every datagram to the query waiting for its id, until the
// socket is closed. Datagrams nobody waits for (late, spoofed, garbage)
// are dropped.
func (mc *muxConn) read() {
	buf := make([]byte, 65535)
	for {
		n, err := mc.c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier write: the waiters time out
		}
		if n < 12 {
			continue
		}
		id := uint16(buf[0])<<8 | uint16(buf[1])
		mc.mu.Lock()
		ch := mc.pending[id]
		delete(mc.pending, id)
		mc.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), buf[:n]...)
		}
	}
}

// exchange writes the packed query q (id at its start) and returns the
// first datagram answering its id, or an error when ctx ends first.
func (mc *muxConn) exchange(ctx context.Context, q []byte) ([]byte, error) {
	id := uint16(q[0])<<8 | uint16(q[1])
	ch := make(chan []byte, 1)
	mc.mu.Lock()
	if _, taken := mc.pending[id]; taken {
		mc.mu.Unlock()
		return nil, errIDTaken
	}
	mc.pending[id] = ch
	mc.mu.Unlock()
	defer func() {
		mc.mu.Lock()
		if mc.pending[id] == ch {
			delete(mc.pending, id)
		}
		mc.mu.Unlock()
	}()
	// A UDP write does not wait for the peer: no deadline (and no timer).
	if _, err := mc.c.Write(q); err != nil {
		return nil, err
	}
	select {
	case b := <-ch:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

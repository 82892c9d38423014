package dnsserver

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one recvmmsg(2) reads and one sendmmsg(2)
// writes at most: under load one system call then moves many queries or
// replies, where the plain loop makes one recvfrom and one sendto each.
const udpBatch = 64

// replySlot is the room for one fast reply in the write batch: replies fit
// ednsSize; a longer one the fast path packs goes to the full path anyway
// (answerFast then allocates its reply, correctly, and refuses it).
const replySlot = ednsSize + 128

// mmsghdr is struct mmsghdr (recvmmsg(2)): Go pads it like C on every
// architecture, after Msghdr's pointer-aligned fields.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is the batched I/O of one fastConn: the datagrams of the last
// recvmmsg and the fast replies to them not written yet. Everything is
// allocated once, so that serving a batch does not allocate.
type batch struct {
	rc syscall.RawConn

	// read side: datagram i is bufs[i][:rmsgs[i].n] from names[i].
	rmsgs []mmsghdr
	riov  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	bufs  [][]byte
	n     int   // datagrams read
	next  int   // next datagram to serve
	rerr  error // the read's error, set by readFn

	// write side: reply k is wmsgs[k], to the sender of its query.
	wmsgs []mmsghdr
	wiov  []unix.Iovec
	wbuf  []byte // udpBatch slots of replySlot octets
	wn    int    // replies pending
	wdone int    // replies written (or given up) by writeFn

	counts [2][3]uint64 // fast answers not yet counted, like fastCounters.c

	// readFn and writeFn are made once: a closure per call would allocate.
	readFn, writeFn func(fd uintptr) bool
}

// newBatch returns c's batched I/O, or nil (the plain loop) when size ≤ 1
// or c has no raw connection.
func newBatch(c *net.UDPConn, size int) *batch {
	if size <= 1 {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batch{
		rc:    rc,
		rmsgs: make([]mmsghdr, size),
		riov:  make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size),
		bufs:  make([][]byte, size),
		wmsgs: make([]mmsghdr, size),
		wiov:  make([]unix.Iovec, size),
		wbuf:  make([]byte, size*replySlot),
	}
	read := make([]byte, size*udpReadSize)
	for i := range size {
		b.bufs[i] = read[i*udpReadSize : (i+1)*udpReadSize : (i+1)*udpReadSize]
		b.riov[i].Base = &b.bufs[i][0]
		b.riov[i].SetLen(udpReadSize)
		h := &b.rmsgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.riov[i]
		h.SetIovlen(1)
		w := &b.wmsgs[i].hdr
		w.Iov = &b.wiov[i]
		w.SetIovlen(1)
	}
	b.readFn = b.read
	b.writeFn = b.write
	return b
}

// readFrom is fastConn.ReadFrom with batches: it serves the datagrams read
// last, answering the fast ones into the write batch, and returns the
// first the fast path does not answer. When none is left it writes the
// pending replies and reads the next batch, waiting in the netpoller (so
// the read deadline miekg/dns sets bounds the wait, as for ReadFrom).
func (b *batch) readFrom(c *fastConn, p []byte) (int, net.Addr, error) {
	for {
		if b.next < b.n {
			f := c.s.fastTable()
			for b.next < b.n {
				i := b.next
				b.next++
				q := b.bufs[i][:min(int(b.rmsgs[i].n), udpReadSize)] // longer ones arrive cut
				if f != nil && b.answer(c, f, i, q) || !c.admit(len(q)) {
					continue
				}
				b.flush(c.s.metrics.fast)
				return copy(p, q), net.UDPAddrFromAddrPort(b.from(i)), nil
			}
		}
		b.flush(c.s.metrics.fast)
		b.n, b.next = 0, 0
		if err := b.rc.Read(b.readFn); err != nil {
			return 0, nil, err
		}
		if err := b.rerr; err != nil {
			b.rerr = nil
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: err}
		}
		c.s.metrics.udpBatch.Observe(float64(b.n))
	}
}

// answer puts f's reply to datagram i (q) in the write batch, addressed to
// its sender, and reports whether there was one.
func (b *batch) answer(c *fastConn, f *fastTable, i int, q []byte) bool {
	k := b.wn
	out := b.wbuf[k*replySlot : k*replySlot : (k+1)*replySlot]
	reply, rcode, qtype := f.answerFast(q, out, c.key)
	if reply == nil {
		return false
	}
	ri, qi := fastIndex(rcode, qtype)
	b.counts[ri][qi]++
	b.wiov[k].Base = &reply[0]
	b.wiov[k].SetLen(len(reply))
	w := &b.wmsgs[k].hdr
	w.Name = b.rmsgs[i].hdr.Name
	w.Namelen = b.rmsgs[i].hdr.Namelen
	b.wn++
	return true
}

// flush counts the pending replies, then writes them. A reply that cannot
// be written is a lost UDP answer; the client retries.
func (b *batch) flush(fc *fastCounters) {
	for i := range b.counts {
		for j, n := range b.counts[i] {
			if n != 0 {
				fc.counter(i, j).Add(float64(n))
				b.counts[i][j] = 0
			}
		}
	}
	if b.wn == 0 {
		return
	}
	b.wdone = 0
	_ = b.rc.Write(b.writeFn)
	b.wn = 0
}

// read is one recvmmsg on fd, without waiting; false asks the netpoller
// to wait until fd is readable.
func (b *batch) read(fd uintptr) bool {
	for i := range b.rmsgs {
		b.rmsgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.rmsgs[i].hdr.Flags = 0
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rmsgs[0])), uintptr(len(b.rmsgs)), 0, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			b.rerr = os.NewSyscallError("recvmmsg", errno)
			return true
		}
	}
}

// write is sendmmsg on fd until every pending reply is written or given
// up, without waiting; false asks the netpoller to wait until fd is
// writable. sendmmsg stops at the first reply that fails; that one is
// dropped and the rest go on.
func (b *batch) write(fd uintptr) bool {
	for b.wdone < b.wn {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.wmsgs[b.wdone])), uintptr(b.wn-b.wdone), 0, 0, 0)
		switch errno {
		case 0:
			b.wdone += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			b.wdone++
		}
	}
	return true
}

// from is the sender of datagram i.
func (b *batch) from(i int) netip.AddrPort {
	sa := &b.names[i]
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p := uint16(port[0])<<8 | uint16(port[1])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), p)
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, p)
	}
	return netip.AddrPort{}
}

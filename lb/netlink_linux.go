package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Netlink requests one at a time cost a round trip each: 60,000 writes
// for 10,000 VIPs × 5 backends, and the VIP addresses on top. nlSocket
// sends up to batchMax requests per send instead; the kernel runs them in
// order and reports an error for each one that fails, and an
// acknowledgement for the last one of a send only. It reads dumps into one
// reused buffer with blocking system calls, which matters under emulation
// (kvm-run), where every trip through the Go netpoller is expensive.

const (
	batchMax   = 512
	batchBytes = 128 << 10 // below the default socket send buffer
	// netlinkTimeout bounds the wait for the kernel's answers.
	netlinkTimeout = 10 * time.Second
)

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const nlaTypeMask = 0x3fff

// errLostAnswers means the kernel's answers to a send overflowed the
// receive buffer: which requests failed is unknown.
var errLostAnswers = errors.New("netlink answers lost (receive buffer overflow)")

// nlSocket is a netlink socket for batched requests and dumps. It is not
// safe for concurrent use.
type nlSocket struct {
	fd   int
	seq  uint32
	buf  []byte
	rbuf []byte
}

func newNLSocket(proto int) (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	// Larger buffers where allowed (root), acknowledgements without the
	// request's payload, a bound on every wait.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 1<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &nlSocket{fd: fd, rbuf: make([]byte, 8<<10)}, nil
}

func (s *nlSocket) close() { unix.Close(s.fd) }

// request appends one request's body (after the netlink header) and
// returns the message type and flags; NLM_F_REQUEST is added.
type request func(body []byte) (out []byte, typ, flags uint16)

// appendRequest appends request r as message seq with extra flags.
func (s *nlSocket) appendRequest(r request, extra uint16) {
	s.seq++
	h := len(s.buf)
	s.buf = append(s.buf, make([]byte, unix.SizeofNlMsghdr)...)
	var typ, flags uint16
	s.buf, typ, flags = r(s.buf)
	binary.NativeEndian.PutUint32(s.buf[h:], uint32(len(s.buf)-h))
	binary.NativeEndian.PutUint16(s.buf[h+4:], typ)
	binary.NativeEndian.PutUint16(s.buf[h+6:], flags|extra|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(s.buf[h+8:], s.seq)
}

// run sends n requests in order, built by build(i), and returns each one's
// error (nil: done).
func (s *nlSocket) run(n int, build func(i int) request) []error {
	errs := make([]error, n)
	for start := 0; start < n; {
		s.buf = s.buf[:0]
		first := s.seq + 1
		end := start
		for end < n && end-start < batchMax && len(s.buf) < batchBytes {
			h := len(s.buf)
			s.appendRequest(build(end), 0)
			end++
			if end == n || end-start == batchMax || len(s.buf) >= batchBytes {
				// The last request of a send asks for an acknowledgement.
				binary.NativeEndian.PutUint16(s.buf[h+6:], binary.NativeEndian.Uint16(s.buf[h+6:])|unix.NLM_F_ACK)
			}
		}
		if err := s.exchange(first, errs[start:end]); err != nil {
			for i := start; i < end; i++ {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		start = end
	}
	return errs
}

// exchange sends the buffer and reads the answers to requests first ..
// first+len(errs)-1 into errs, up to the last one's.
func (s *nlSocket) exchange(first uint32, errs []error) error {
	if err := unix.Sendto(s.fd, s.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	last := first + uint32(len(errs)) - 1
	done := false
	err := s.receive(func(m syscall.NetlinkMessage) error {
		seq := m.Header.Seq
		if m.Header.Type != unix.NLMSG_ERROR || seq < first || seq > last || len(m.Data) < 4 {
			return nil
		}
		if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
			errs[seq-first] = unix.Errno(errno)
		}
		done = seq == last
		return nil
	}, func() bool { return done })
	return err
}

// dump sends dump request r and calls fn with each answer's payload.
func (s *nlSocket) dump(r request, fn func(data []byte) error) error {
	s.buf = s.buf[:0]
	s.appendRequest(r, unix.NLM_F_DUMP)
	seq := s.seq
	if err := unix.Sendto(s.fd, s.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	done := false
	var ferr error
	err := s.receive(func(m syscall.NetlinkMessage) error {
		if m.Header.Seq != seq {
			return nil
		}
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			done = true
		case unix.NLMSG_ERROR:
			done = true
			if len(m.Data) >= 4 {
				if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return unix.Errno(errno)
				}
			}
		default:
			if ferr == nil {
				ferr = fn(m.Data)
			}
		}
		return nil
	}, func() bool { return done })
	return errors.Join(err, ferr)
}

// receive reads messages and hands them to fn until stop reports true.
func (s *nlSocket) receive(fn func(syscall.NetlinkMessage) error, stop func() bool) error {
	for !stop() {
		n, _, err := unix.Recvfrom(s.fd, s.rbuf, 0)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			return errLostAnswers
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(s.rbuf[:n])
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data ...byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofNlAttr+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendU16(b []byte, typ, v uint16) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint16(nil, v)...)
}

func appendU32(b []byte, typ uint16, v uint32) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v)...)
}

// nest appends a nested attribute whose content fill appends.
func nest(b []byte, typ uint16, fill func([]byte) []byte) []byte {
	h := len(b)
	b = appendAttr(b, typ)
	b = fill(b)
	binary.NativeEndian.PutUint16(b[h:], uint16(len(b)-h))
	return b
}

// eachAttr calls fn with the type and payload of each attribute in b.
func eachAttr(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.SizeofNlAttr || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.SizeofNlAttr:l])
		b = b[min(len(b), (l+3)&^3):]
	}
}

func u16(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.NativeEndian.Uint16(b)
}

func u32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

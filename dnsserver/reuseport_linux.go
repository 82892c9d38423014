package dnsserver

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpSocketCount is how many UDP sockets Run opens: one per usable CPU,
// so that the kernel spreads queries (by source address and port) over
// that many read loops.
func udpSocketCount() int { return runtime.GOMAXPROCS(0) }

// reusePort sets SO_REUSEPORT on a socket before bind (socket(7)): every
// socket of the group must set it, so a port held by anything else still
// fails to bind.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

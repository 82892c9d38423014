package dnsserver

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpSocketCount is how many UDP sockets Run opens: one per two usable
// CPUs (at least one), so that the kernel spreads queries (by source
// address and port) over that many read loops. Each loop reads and writes
// in batches (batch_linux.go) and serves 100k queries a second or more on
// one CPU; fewer, fuller queues mean larger batches and fewer wake-ups per
// query, which on a 2-CPU machine shared with the clients cut the CPU per
// query by about a tenth against one socket per CPU (scripts/bench-dns.sh).
func udpSocketCount() int { return (runtime.GOMAXPROCS(0) + 1) / 2 }

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

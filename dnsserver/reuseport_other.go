//go:build !linux

package dnsserver

import "syscall"

// udpSocketCount is 1 where SO_REUSEPORT does not spread load as on Linux.
func udpSocketCount() int { return 1 }

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }

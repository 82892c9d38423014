//go:build !linux

package dnsserver

import "net"

// udpBatch is 1 where recvmmsg and sendmmsg are missing: the plain loop.
const udpBatch = 1

// batch is never made here: fastConn reads with the plain loop.
type batch struct{}

func newBatch(*net.UDPConn, int) *batch { return nil }

func (*batch) readFrom(c *fastConn, p []byte) (int, net.Addr, error) { return c.readPlain(p) }

// This file opens the nftables dataplane's netlink connection with the
// socket settings large transactions need.

package lb

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	// nftSockBuf is the send and receive buffer of the nftables socket.
	// google/nftables v0.3.0 asks for an acknowledgement of every message
	// of a transaction (and an echo of every rule) and reads them after
	// sending the whole batch: with the default buffers (about 200 kB)
	// replies are lost and Flush waits forever (google/nftables#103, #350;
	// fixed after v0.3.0 by setting the buffers, #312).
	nftSockBuf = 8 << 20
	// nftTimeout bounds every request on a socket, so that a lost reply
	// fails a sync instead of hanging it.
	nftTimeout = 30 * time.Second
)

// newNFTConn returns an nftables connection in network namespace netns
// (an fd; 0 is the caller's) that dials a socket per request (Flush, each
// read), with large buffers and a deadline of nftTimeout.
func newNFTConn(netns int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err == nil {
			_ = raw.Control(func(fd uintptr) {
				for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
					if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], nftSockBuf) != nil {
						_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], nftSockBuf)
					}
				}
			})
		}
		return c.SetDeadline(time.Now().Add(nftTimeout))
	})}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	return nftables.New(opts...)
}

// removeLBTables deletes every table of the nftables dataplane in network
// namespace netns (0: the caller's) and returns how many there were: the
// IPVS dataplane calls it, since their DNAT would take a VIP's connections
// before IPVS sees them.
func removeLBTables(netns int) (int, error) {
	c, err := newNFTConn(netns)
	if err != nil {
		return 0, fmt.Errorf("open nftables netlink: %w", err)
	}
	n := 0
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		ts, err := c.ListTablesOfFamily(fam)
		if err != nil {
			return 0, fmt.Errorf("list nftables tables: %w", err)
		}
		for _, t := range ts {
			if t.Name == lbTable || strings.HasPrefix(t.Name, lbTable+"_") {
				c.DelTable(t)
				n++
			}
		}
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("delete the nftables dataplane's tables: %w", err)
	}
	return n, nil
}

// systemd_sockets.go: socket activation (sd_listen_fds(3)). When systemd
// passes sockets (LISTEN_FDS, packaging/vipbridge.socket), the daemon
// serves them instead of binding: systemd keeps them open while the
// process is replaced, so a restart or an upgrade loses no DNS query; the
// kernel queues them meanwhile. Each socket is matched to --dns-addr or
// --http-addr by its address.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// activated are the sockets systemd passed, by job. Empty when the daemon
// was not socket-activated.
type activated struct {
	dnsUDP []*net.UDPConn
	dnsTCP []net.Listener
	http   net.Listener
}

// takeActivated takes the sockets systemd passed, if any, and unsets
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so that no child takes them
// too. Every UDP socket serves DNS; a TCP socket serves the HTTP API when
// its address is --http-addr's, DNS when it is one of --dns-addr's. A
// socket that matches neither is an error: the socket unit and the flags
// disagree.
func takeActivated(dnsAddrs []string, httpAddr string) (activated, error) {
	var a activated
	files := activation.Files(true)
	var errs []error
	for _, f := range files {
		if err := a.take(f, dnsAddrs, httpAddr); err != nil {
			errs = append(errs, err)
		}
		f.Close() // net.File* made copies
	}
	if err := errors.Join(errs...); err != nil {
		a.close()
		return activated{}, fmt.Errorf("sockets from systemd: %w", err)
	}
	return a, nil
}

// take adds the socket of f to a by its type and address.
func (a *activated) take(f *os.File, dnsAddrs []string, httpAddr string) error {
	typ, err := socketType(f)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	switch typ {
	case unix.SOCK_DGRAM:
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		udp, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return fmt.Errorf("%s: datagram socket on %s is not UDP", f.Name(), pc.LocalAddr())
		}
		a.dnsUDP = append(a.dnsUDP, udp)
		return nil
	case unix.SOCK_STREAM:
		ln, err := net.FileListener(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		switch {
		case a.http == nil && addrMatches(ln.Addr(), httpAddr):
			a.http = ln
		case anyAddrMatches(ln.Addr(), dnsAddrs):
			a.dnsTCP = append(a.dnsTCP, ln)
		default:
			ln.Close()
			return fmt.Errorf("%s: stream socket on %s matches neither --http-addr %s nor --dns-addr %s",
				f.Name(), ln.Addr(), httpAddr, strings.Join(dnsAddrs, ","))
		}
		return nil
	}
	return fmt.Errorf("%s: socket type %d is neither stream nor datagram", f.Name(), typ)
}

func (a *activated) close() {
	for _, pc := range a.dnsUDP {
		pc.Close()
	}
	for _, ln := range a.dnsTCP {
		ln.Close()
	}
	if a.http != nil {
		a.http.Close()
	}
}

// socketType is f's SO_TYPE.
func socketType(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var typ int
	var serr error
	if err := rc.Control(func(fd uintptr) { typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("not a socket: %w", serr)
	}
	return typ, nil
}

func anyAddrMatches(addr net.Addr, flags []string) bool {
	for _, f := range flags {
		if addrMatches(addr, f) {
			return true
		}
	}
	return false
}

// addrMatches reports whether a bound socket's address serves the flag's
// host:port: the ports are equal, and the hosts are equal or either one is
// the wildcard ("" or 0.0.0.0 or ::). A host name in the flag matches
// only the wildcard.
func addrMatches(addr net.Addr, flag string) bool {
	host, port, err := net.SplitHostPort(strings.TrimSpace(flag))
	if err != nil {
		return false
	}
	bound, err := netip.ParseAddrPort(addr.String())
	if err != nil || port != fmt.Sprint(bound.Port()) {
		return false
	}
	if host == "" || bound.Addr().IsUnspecified() {
		return true
	}
	want, err := netip.ParseAddr(host)
	return err == nil && (want.IsUnspecified() || want.Unmap() == bound.Addr().Unmap())
}

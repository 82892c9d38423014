package lb

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sysctls are the IPVS settings the dataplane needs, as /proc/sys paths.
//   - conntrack=1 keeps IPVS connections in conntrack, so that the nftables
//     masquerade rule (nft.go) sees them: backends without a route back to
//     the client then answer the host.
//   - expire_nodest_conn=1 expires the IPVS connection entries of a deleted
//     destination (at once since Linux 5.9, else on their next packet):
//     moby/ipvs cannot delete single connection entries, and a removed UDP
//     backend must receive nothing more.
var sysctls = []string{
	"/proc/sys/net/ipv4/vs/conntrack",
	"/proc/sys/net/ipv4/vs/expire_nodest_conn",
}

// netHost is the host setup besides IPVS, done by netlink and /proc/sys
// only: the dummy interface with the VIP addresses, the sysctls and
// conntrack flushes. The masquerade rule is nftMasq's.
type netHost struct {
	name string
	nl   *netlink.Handle
	masq *nftMasq
}

func newNetHost(name string) (*netHost, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	m, err := newNFTMasq(0)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &netHost{name: name, nl: h, masq: m}, nil
}

func (n *netHost) close() {
	n.nl.Close()
	n.masq.close()
}

// link returns the VIP interface, creating it and setting it up if needed.
func (n *netHost) link() (netlink.Link, error) {
	l, err := n.nl.LinkByName(n.name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		if err := n.nl.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: n.name}}); err != nil {
			return nil, fmt.Errorf("create dummy interface %s (kernel module dummy): %w", n.name, err)
		}
		l, err = n.nl.LinkByName(n.name)
	}
	if err != nil {
		return nil, fmt.Errorf("find interface %s: %w", n.name, err)
	}
	if l.Type() != "dummy" {
		return nil, fmt.Errorf("interface %s is a %s, not a dummy interface", n.name, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := n.nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set %s up: %w", n.name, err)
		}
	}
	return l, nil
}

// addrs lists the addresses on the VIP interface.
func (n *netHost) addrs() ([]netip.Addr, error) {
	l, err := n.link()
	if err != nil {
		return nil, err
	}
	as, err := n.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", n.name, err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// hostAddr is a as an interface address: a host prefix, without duplicate
// address detection for IPv6 (nothing else may own a VIP).
func hostAddr(a netip.Addr) *netlink.Addr {
	bits := a.BitLen()
	na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, bits)}}
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

func (n *netHost) addAddr(a netip.Addr) error {
	l, err := n.nl.LinkByName(n.name)
	if err != nil {
		return fmt.Errorf("find interface %s: %w", n.name, err)
	}
	if err := n.nl.AddrAdd(l, hostAddr(a)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", a, n.name, err)
	}
	return nil
}

func (n *netHost) delAddr(a netip.Addr) error {
	l, err := n.nl.LinkByName(n.name)
	if err != nil {
		return fmt.Errorf("find interface %s: %w", n.name, err)
	}
	if err := n.nl.AddrDel(l, hostAddr(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", a, n.name, err)
	}
	return nil
}

// setSysctls writes every sysctl that is not 1 yet and returns how many it
// changed.
func (n *netHost) setSysctls() (int, error) {
	changed := 0
	for _, p := range sysctls {
		b, err := os.ReadFile(p)
		if err != nil {
			return changed, fmt.Errorf("read %s: %w", p, err)
		}
		if string(bytes.TrimSpace(b)) == "1" {
			continue
		}
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			return changed, fmt.Errorf("set %s: %w", p, err)
		}
		changed++
	}
	return changed, nil
}

// masquerade makes the masquerade set hold exactly vips; see nftMasq.
func (n *netHost) masquerade(vips map[netip.Addr]struct{}, verify bool) (int, error) {
	return n.masq.sync(vips, verify)
}

// flushFlows deletes the conntrack entries of removed UDP backends, so that
// the next datagram of a flow is scheduled afresh instead of following a
// stale NAT binding (kube-proxy does the same, with conntrack -D).
func (n *netHost) flushFlows(flows []flow) error {
	var v4, v6 []netlink.CustomConntrackFilter
	for _, f := range flows {
		cf := &netlink.ConntrackFilter{}
		err := errors.Join(
			cf.AddProtocol(uint8(f.Proto)),
			cf.AddIP(netlink.ConntrackOrigDstIP, net.IP(f.VIP.Addr().AsSlice())),
			cf.AddPort(netlink.ConntrackOrigDstPort, f.VIP.Port()),
			cf.AddIP(netlink.ConntrackReplySrcIP, net.IP(f.Backend.AsSlice())),
		)
		if err != nil {
			return fmt.Errorf("conntrack filter for %s: %w", f.Backend, err)
		}
		if f.VIP.Addr().Is4() {
			v4 = append(v4, cf)
		} else {
			v6 = append(v6, cf)
		}
	}
	var errs []error
	for _, fam := range []struct {
		f  netlink.InetFamily
		fs []netlink.CustomConntrackFilter
	}{{unix.AF_INET, v4}, {unix.AF_INET6, v6}} {
		if len(fam.fs) == 0 {
			continue
		}
		if _, err := n.nl.ConntrackDeleteFilters(netlink.ConntrackTable, fam.f, fam.fs...); err != nil {
			errs = append(errs, fmt.Errorf("flush conntrack entries: %w", err))
		}
	}
	return errors.Join(errs...)
}

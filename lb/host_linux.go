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
//     masquerade rule (nft_linux.go) sees them: backends without a route back to
//     the client then answer the host.
//   - expire_nodest_conn=1 expires the IPVS connection entries of a deleted
//     destination (at once since Linux 5.9, else on their next packet):
//     IPVS netlink cannot delete single connection entries, and a removed UDP
//     backend must receive nothing more.
var sysctls = []string{
	"/proc/sys/net/ipv4/vs/conntrack",
	"/proc/sys/net/ipv4/vs/expire_nodest_conn",
}

// rtprotVIPBridge marks the routes vipbridge adds (iproute2 shows "proto
// 250"): every route of that protocol on the VIP interface is its own.
const rtprotVIPBridge = 250

// netHost is the host setup besides IPVS, done by netlink and /proc/sys
// only: the dummy interface, the VIP addresses made local on it, the
// sysctls and conntrack flushes. The masquerade rule is nftMasq's.
//
// A VIP address is made local by a route of type local in the local table
// through the dummy interface ("ip route add local 11.0.0.1/32 dev
// vipbridge0 table local"), as dcos-net does (UPSTREAM.md §1.7), rather
// than by an interface address: the kernel keeps an interface's addresses
// in a list that every added address walks, which made 10,000 addresses
// take 11-18 s in the kvm-run VM against 0.5 s for 10,000 routes.
type netHost struct {
	name string
	idx  int // the interface's index, as link found it
	nl   *netlink.Handle
	rt   *nlSocket // rtnetlink: routes in batches
	masq *nftMasq
}

func newNetHost(name string) (*netHost, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	rt, err := newNLSocket(unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, err
	}
	// Let the kernel filter route dumps by table, protocol and interface
	// (Linux 4.20); ownRoute filters again for older kernels.
	_ = unix.SetsockoptInt(rt.fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	m, err := newNFTMasq(0)
	if err != nil {
		h.Close()
		rt.close()
		return nil, err
	}
	return &netHost{name: name, nl: h, rt: rt, masq: m}, nil
}

func (n *netHost) close() {
	n.nl.Close()
	n.rt.close()
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
	n.idx = l.Attrs().Index
	return l, nil
}

// addrs lists the VIP addresses made local through the interface: the
// local routes of protocol rtprotVIPBridge on it.
func (n *netHost) addrs() ([]netip.Addr, error) {
	if _, err := n.link(); err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, fam := range []byte{unix.AF_INET, unix.AF_INET6} {
		req := func(b []byte) ([]byte, uint16, uint16) {
			b = append(b, fam, 0, 0, 0, unix.RT_TABLE_LOCAL, rtprotVIPBridge, 0, unix.RTN_LOCAL, 0, 0, 0, 0)
			b = appendU32(b, unix.RTA_OIF, uint32(n.idx))
			return appendU32(b, unix.RTA_TABLE, unix.RT_TABLE_LOCAL), unix.RTM_GETROUTE, 0
		}
		err := n.rt.dump(req, func(data []byte) error {
			if a, ok := n.ownRoute(data); ok {
				out = append(out, a)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list local routes of %s: %w", n.name, err)
		}
	}
	return out, nil
}

// ownRoute returns the destination of a dumped route if it is one of ours.
func (n *netHost) ownRoute(data []byte) (netip.Addr, bool) {
	if len(data) < unix.SizeofRtMsg {
		return netip.Addr{}, false
	}
	fam, bits, table, proto, typ := data[0], data[1], uint32(data[4]), data[5], data[7]
	var dst netip.Addr
	oif := 0
	eachAttr(data[unix.SizeofRtMsg:], func(t uint16, v []byte) {
		switch t {
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(v)
		case unix.RTA_OIF:
			oif = int(u32(v))
		case unix.RTA_TABLE:
			table = u32(v)
		}
	})
	ok := proto == rtprotVIPBridge && typ == unix.RTN_LOCAL && table == unix.RT_TABLE_LOCAL &&
		oif == n.idx && dst.IsValid() && int(bits) == dst.BitLen() && (fam == unix.AF_INET) == dst.Is4()
	return dst, ok
}

// setAddrs makes addresses local (add) or not any more (del), in
// batches. Deleting a route that is not there succeeds.
func (n *netHost) setAddrs(add, del []netip.Addr) map[netip.Addr]error {
	all := append(append(make([]netip.Addr, 0, len(add)+len(del)), add...), del...)
	errs := n.rt.run(len(all), func(i int) request { return routeRequest(n.idx, all[i], i >= len(add)) })
	failed := map[netip.Addr]error{}
	for i, err := range errs {
		switch {
		case err == nil, i >= len(add) && errors.Is(err, unix.ESRCH):
		case i < len(add):
			failed[all[i]] = fmt.Errorf("add local route %s dev %s: %w", all[i], n.name, err)
		default:
			failed[all[i]] = fmt.Errorf("delete local route %s dev %s: %w", all[i], n.name, err)
		}
	}
	return failed
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
func (n *netHost) flushFlows(flows []flow) error { return deleteFlows(n.nl, flows) }

// deleteFlows deletes the conntrack entries of flows: those addressed to
// the flow's VIP and answered by its backend.
func deleteFlows(h *netlink.Handle, flows []flow) error {
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
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam.f, fam.fs...); err != nil {
			errs = append(errs, fmt.Errorf("flush conntrack entries: %w", err))
		}
	}
	return errors.Join(errs...)
}

// routeRequest is the rtnetlink request that adds (or, if del, deletes)
// the local route of a through interface idx.
func routeRequest(idx int, a netip.Addr, del bool) request {
	return func(b []byte) ([]byte, uint16, uint16) {
		fam := byte(unix.AF_INET)
		if a.Is6() {
			fam = unix.AF_INET6
		}
		b = append(b, fam, byte(a.BitLen()), 0, 0, unix.RT_TABLE_LOCAL, rtprotVIPBridge, unix.RT_SCOPE_HOST, unix.RTN_LOCAL, 0, 0, 0, 0)
		b = appendAttr(b, unix.RTA_DST, a.AsSlice()...)
		b = appendU32(b, unix.RTA_OIF, uint32(idx))
		b = appendU32(b, unix.RTA_TABLE, unix.RT_TABLE_LOCAL)
		if del {
			return b, unix.RTM_DELROUTE, 0
		}
		// Replace: adding a route that is there already succeeds.
		return b, unix.RTM_NEWROUTE, unix.NLM_F_CREATE | unix.NLM_F_REPLACE
	}
}

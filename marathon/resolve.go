package marathon

import "net/netip"

// hostAddr returns the address of an agent host: the host itself when it is
// an IP literal, else resolve(host) when resolve is not nil, else the
// invalid Addr (host-port backends of the task are then skipped).
// IPv4-mapped IPv6 results are unmapped so that family checks stay exact.
func hostAddr(resolve func(string) netip.Addr, host string) netip.Addr {
	if host == "" {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap()
	}
	if resolve == nil {
		return netip.Addr{}
	}
	return resolve(host).Unmap()
}

// parseIP parses one task IP as upstream writes it, dropping zones; it
// reports false for anything that is not a usable unicast address literal.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

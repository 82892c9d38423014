// This file names the per-service objects of the nftables dataplane, so
// that a restarted daemon finds its services in the kernel by name.

package lb

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Name prefixes of a service's chain and interval map.
const (
	chainPrefix = "vip-"
	mapPrefix   = "be-"
)

// serviceName is the name of service k's chain or map: the prefix, then
// "tcp-11.0.0.1-80" (the protocol, address and port). Names are
// deterministic and parse back (parseServiceName), as kube-proxy's
// "<hash>-ns/name/proto/port" are found again after a restart.
func serviceName(prefix string, k serviceKey) string {
	return prefix + protoName(k.Proto) + "-" + k.Addr.String() + "-" + strconv.Itoa(int(k.Port))
}

func protoName(p uint16) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// parseServiceName is the inverse of serviceName for the given prefix.
func parseServiceName(prefix, name string) (serviceKey, error) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return serviceKey{}, fmt.Errorf("name %q: no prefix %q", name, prefix)
	}
	proto, rest, ok := strings.Cut(rest, "-")
	if !ok {
		return serviceKey{}, fmt.Errorf("name %q: no protocol", name)
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return serviceKey{}, fmt.Errorf("name %q: no port", name)
	}
	k := serviceKey{}
	switch proto {
	case "tcp":
		k.Proto = protoTCP
	case "udp":
		k.Proto = protoUDP
	default:
		return serviceKey{}, fmt.Errorf("name %q: protocol %q is not tcp or udp", name, proto)
	}
	addr, err := netip.ParseAddr(rest[:i])
	if err != nil || addr.Zone() != "" || addr.Is4In6() {
		return serviceKey{}, fmt.Errorf("name %q: bad address %q", name, rest[:i])
	}
	port, err := strconv.ParseUint(rest[i+1:], 10, 16)
	if err != nil || strconv.FormatUint(port, 10) != rest[i+1:] {
		return serviceKey{}, fmt.Errorf("name %q: bad port %q", name, rest[i+1:])
	}
	k.Addr, k.Port = addr, uint16(port)
	return k, nil
}

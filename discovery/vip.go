package discovery

// The VIP label grammar: which label keys declare VIPs (IsVIPKey) and how
// a value parses (ParseVIP).

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// VIPSpec is one parsed VIP label value: "<address>:<port>", where the
// address is an IP literal (an IP VIP, no DNS name) or a name (a named VIP).
type VIPSpec struct {
	// Name is the name as written ("/foo", "/group/app", "api.hello-world"),
	// empty for an IP VIP. Build turns it into the DNS name
	// "<NormaliseName(Name)>.<NormaliseName(framework)>".
	Name string
	// IP is the address of an IP VIP, invalid for a named VIP.
	IP   netip.Addr
	Port uint16
	// Protocol is set by a legacy "tcp://" or "udp://" prefix and then
	// overrides the protocols of the port carrying the label; 0 means the
	// port's protocols.
	Protocol Protocol
}

// String formats v as a label value that ParseVIP parses back to v:
// "name:port", "ip:port" (IPv6 unbracketed, as DC/OS writes it), with a
// "tcp://" or "udp://" prefix when Protocol is set.
func (v VIPSpec) String() string {
	var b strings.Builder
	if v.Protocol != 0 {
		b.WriteString(v.Protocol.String())
		b.WriteString("://")
	}
	if v.IP.IsValid() {
		b.WriteString(v.IP.String())
	} else {
		b.WriteString(v.Name)
	}
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(v.Port), 10))
	return b.String()
}

// IsVIPKey reports whether a label key declares a VIP: it starts with "VIP"
// or "vip" ("VIP_0", "vip", "VIP_<uuid>", legacy "VIP_PORT0"; not "Vip_0"),
// the case-sensitive prefix test of dcos-net
// (apps/dcos_net/src/dcos_net_mesos_listener.erl, handle_vip_labels/1).
func IsVIPKey(key string) bool {
	return strings.HasPrefix(key, "VIP") || strings.HasPrefix(key, "vip")
}

// Reasons ParseVIP gives; the error text is the reason, ready for
// LabelError.Reason.
var (
	errNoColon    = errors.New("no colon")
	errEmptyName  = errors.New("empty name")
	errBracketed  = errors.New("bracketed address")
	errColonName  = errors.New("colon in name")
	errZone       = errors.New("address with zone")
	errNoDNSChars = errors.New("name has no letter or digit")
)

// ParseVIP parses a VIP label value (DESIGN.md "VIP labels"). Surrounding
// white space is ignored. The value is split at its last colon into address
// and port; the port must be a decimal number from 1 to 65535. An IPv4 or
// unbracketed IPv6 literal without zone is an IP VIP ("10.0.0.1:80",
// "fd01:c::5:1234"); anything else is a named VIP, kept as written.
// A case-insensitive "tcp://" or "udp://" prefix (legacy VIP_PORT<n> task
// labels of minuteman) sets Protocol.
//
// Rejected, with the reason as the error text: no colon, a bad or
// out-of-range port, an empty name, a bracketed address ("[fd01::1]:80"),
// a name holding a colon ("invalid-port::1234", which upstream's
// minuteman testdata/invalid-port.json expects to be ignored), and a name
// with no letter or digit ("/:80", which has no DNS name).
func ParseVIP(value string) (VIPSpec, error) {
	var v VIPSpec
	s := strings.TrimSpace(value)
	if len(s) >= 6 && s[3:6] == "://" {
		if p, err := ParseProtocol(s[:3]); err == nil {
			v.Protocol = p
			s = s[6:]
		}
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return VIPSpec{}, errNoColon
	}
	addr, port := s[:i], s[i+1:]
	p, err := parsePort(port)
	if err != nil {
		return VIPSpec{}, err
	}
	v.Port = p
	switch {
	case addr == "":
		return VIPSpec{}, errEmptyName
	case addr[0] == '[' || addr[len(addr)-1] == ']':
		return VIPSpec{}, errBracketed
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		if ip.Zone() != "" {
			return VIPSpec{}, errZone
		}
		v.IP = ip
		return v, nil
	}
	if strings.IndexByte(addr, ':') >= 0 {
		return VIPSpec{}, errColonName
	}
	if NormaliseName(addr) == "" {
		return VIPSpec{}, errNoDNSChars
	}
	v.Name = addr
	return v, nil
}

// parsePort parses a VIP port: decimal digits only, 1–65535.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("empty port")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("port " + strconv.Quote(s) + " is not a number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("port " + s + " out of range 1-65535")
	}
	return uint16(n), nil
}

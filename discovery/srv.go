package discovery

// SRV owner names of named VIPs: _<name>._<proto>, and their parsing.

import "strings"

// SRVName returns the SRV owner name, relative to the zone, of name key
// ("<name>.<framework>") for protocol p: "_<name>._<proto>.<framework>".
// Name and framework may both contain dots; the first label is taken as the
// service so that it stays one label (ParseSRVName accepts every split).
func SRVName(key string, p Protocol) string {
	first, rest, ok := strings.Cut(key, ".")
	if !ok {
		return "_" + key + "._" + p.String()
	}
	return "_" + first + "._" + p.String() + "." + rest
}

// ParseSRVName turns an SRV owner name relative to the zone,
// "_<name>._<proto>.<framework>", into the name key "<name>.<framework>"
// and the protocol. The first "._tcp." or "._udp." separates the parts, so
// "_a.b._tcp.c" and "_a._tcp.b.c" both mean the key "a.b.c".
func ParseSRVName(s string) (key string, p Protocol, ok bool) {
	if !strings.HasPrefix(s, "_") {
		return "", 0, false
	}
	i, p := strings.Index(s, "._tcp."), TCP
	if j := strings.Index(s, "._udp."); j >= 0 && (i < 0 || j < i) {
		i, p = j, UDP
	}
	const sep = len("._tcp.")
	if i < 2 || i+sep >= len(s) {
		return "", 0, false
	}
	return s[1:i] + "." + s[i+sep:], p, true
}

package discovery

// Protocol: a VIP's transport protocol, its text form and its parsing.

import (
	"fmt"
	"strings"
)

// Protocol is a transport protocol of a VIP.
type Protocol uint8

const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// String returns "tcp" or "udp".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProtocol parses "tcp" or "udp", in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", s)
}

// ParseProtocols parses a Marathon protocol list such as "tcp", "udp" or
// "tcp,udp"; empty means tcp.
func ParseProtocols(s string) ([]Protocol, error) {
	if strings.TrimSpace(s) == "" {
		return []Protocol{TCP}, nil
	}
	var out []Protocol
	for _, part := range strings.Split(s, ",") {
		p, err := ParseProtocol(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// MarshalText implements encoding.TextMarshaler.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Protocol) UnmarshalText(b []byte) error {
	v, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

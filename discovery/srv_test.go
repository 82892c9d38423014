package discovery

import "testing"

func TestSRVName(t *testing.T) {
	tests := []struct {
		name  string
		owner string
		key   string
		proto Protocol
		ok    bool
	}{
		{name: "simple", owner: "_web._tcp.marathon", key: "web.marathon", proto: TCP, ok: true},
		{name: "udp", owner: "_dns._udp.marathon", key: "dns.marathon", proto: UDP, ok: true},
		{name: "dotted name, split late", owner: "_api.hello-world._tcp.hello-world", key: "api.hello-world.hello-world", proto: TCP, ok: true},
		{name: "dotted name, split early", owner: "_api._tcp.hello-world.hello-world", key: "api.hello-world.hello-world", proto: TCP, ok: true},
		{name: "first separator wins", owner: "_a._udp.b._tcp.c", key: "a.b._tcp.c", proto: UDP, ok: true},
		{name: "no underscore", owner: "web._tcp.marathon", ok: false},
		{name: "no protocol", owner: "_web.marathon", ok: false},
		{name: "empty service", owner: "_._tcp.marathon", ok: false},
		{name: "nothing after protocol", owner: "_web._tcp.", ok: false},
		{name: "empty", owner: "", ok: false},
		{name: "no framework", owner: "_foo._tcp", ok: false},
		{name: "protocol label only", owner: "_tcp.marathon", ok: false},
		{name: "unknown protocol", owner: "_foo._sctp.marathon", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, proto, ok := ParseSRVName(tt.owner)
			if ok != tt.ok || key != tt.key || proto != tt.proto {
				t.Errorf("ParseSRVName(%q) = %q, %v, %v; want %q, %v, %v", tt.owner, key, proto, ok, tt.key, tt.proto, tt.ok)
			}
			if !ok {
				return
			}
			back, bproto, bok := ParseSRVName(SRVName(key, proto))
			if !bok || back != key || bproto != proto {
				t.Errorf("ParseSRVName(SRVName(%q, %v)) = %q, %v, %v", key, proto, back, bproto, bok)
			}
		})
	}
}

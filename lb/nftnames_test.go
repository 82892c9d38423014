package lb

import (
	"net/netip"
	"testing"
)

func TestParseServiceName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want serviceKey
		ok   bool
	}{
		{"tcp v4", "vip-tcp-11.0.0.1-80", serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1"), Port: 80}, true},
		{"udp v6", "vip-udp-fd01:c::1-53", serviceKey{Proto: protoUDP, Addr: netip.MustParseAddr("fd01:c::1"), Port: 53}, true},
		{"port 0", "vip-tcp-11.0.0.1-0", serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1")}, true},
		{"other prefix", "be-tcp-11.0.0.1-80", serviceKey{}, false},
		{"sctp", "vip-sctp-11.0.0.1-80", serviceKey{}, false},
		{"no port", "vip-tcp-11.0.0.1", serviceKey{}, false},
		{"port too big", "vip-tcp-11.0.0.1-65536", serviceKey{}, false},
		{"leading zero", "vip-tcp-11.0.0.1-080", serviceKey{}, false},
		{"zone", "vip-tcp-fe80::1%eth0-80", serviceKey{}, false},
		{"mapped", "vip-tcp-::ffff:11.0.0.1-80", serviceKey{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServiceName(chainPrefix, tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseServiceName(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if tt.ok && serviceName(chainPrefix, got) != tt.in {
				t.Errorf("serviceName(%v) = %q, want %q", got, serviceName(chainPrefix, got), tt.in)
			}
		})
	}
}

func FuzzParseServiceName(f *testing.F) {
	for _, s := range []string{"vip-tcp-11.0.0.1-80", "vip-udp-fd01:c::1-53", "vip-tcp--1", "vip-x-y-z", "vip-tcp-1.2.3.4-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseServiceName(chainPrefix, s)
		if err != nil {
			return
		}
		if back := serviceName(chainPrefix, k); back != s {
			t.Fatalf("round trip %q → %v → %q", s, k, back)
		}
	})
}

func TestSlots(t *testing.T) {
	d := func(last byte, w int) wantDest {
		return wantDest{Key: destKey{Addr: netip.AddrFrom4([4]byte{10, 0, 0, last}), Port: 80}, Weight: w}
	}
	tests := []struct {
		name   string
		in     []wantDest
		starts []uint32
		mod    uint32
	}{
		{"none", nil, nil, 0},
		{"all drained", []wantDest{d(1, 0), d(2, 0)}, nil, 0},
		{"equal", []wantDest{d(1, 1), d(2, 1), d(3, 1)}, []uint32{0, 1, 2}, 3},
		{"gcd", []wantDest{d(1, 2), d(2, 4)}, []uint32{0, 1}, 3},
		{"drained skipped", []wantDest{d(1, 1), d(2, 0), d(3, 2)}, []uint32{0, 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss, mod := slots(tt.in)
			if mod != tt.mod || len(ss) != len(tt.starts) {
				t.Fatalf("slots(%v) = %v, %d; want starts %v, modulus %d", tt.in, ss, mod, tt.starts, tt.mod)
			}
			for i, s := range ss {
				if s.Start != tt.starts[i] {
					t.Errorf("slots(%v)[%d].Start = %d, want %d", tt.in, i, s.Start, tt.starts[i])
				}
			}
			if mod > 0 && (!sameSlots(tt.in, ss, mod) || !slotsMatch(tt.in, ss, mod)) {
				t.Errorf("sameSlots or slotsMatch(%v, slots) = false", tt.in)
			}
			if len(ss) > 1 && slotsMatch(tt.in, ss[1:], mod) {
				t.Errorf("slotsMatch(%v, slots[1:]) = true", tt.in)
			}
			if back := slotDests(ss, mod); mod > 0 && len(back) != len(ss) {
				t.Errorf("slotDests(slots(%v)) = %v", tt.in, back)
			}
		})
	}
	many := make([]wantDest, 5000)
	for i := range many {
		many[i] = wantDest{Key: destKey{Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Port: 80}, Weight: 1}
	}
	if _, mod := slots(many); mod == 0 || mod > 5000 {
		t.Errorf("slots(5000 backends) modulus = %d", mod)
	}
}

package cluster

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// roundTrip encodes a group and decodes it back.
func roundTrip(t testing.TB, id string, vips []discovery.VIP) ([]discovery.VIP, int, error) {
	head, sliced, err := encodeGroup(vips)
	if err != nil {
		t.Fatalf("encodeGroup: %v", err)
	}
	got, err := decodeGroup(id, head, func(i int) ([]byte, bool) {
		if i < len(sliced) {
			return sliced[i], true
		}
		return nil, false
	})
	return got, len(sliced), err
}

func TestGroupRoundTrip(t *testing.T) {
	// Each case has two VIPs (tcp and udp) of backends backends each.
	tests := []struct {
		name       string
		backends   int
		wantSlices int
	}{
		{"no backends", 0, 0},
		{"one", 1, 0},
		{"at the slice size", SliceBackends / 2, 0},
		{"one past it", SliceBackends/2 + 1, 2},
		{"many", 1000, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vips := vipsOf(1, map[int]int{0: tt.backends})[:1]
			if tt.backends == 0 {
				vips[0].Backends = nil
			}
			vips = append(vips, vips[0])
			vips[1].Key.Protocol = discovery.UDP
			got, n, err := roundTrip(t, "n/app0.marathon", vips)
			if err != nil {
				t.Fatalf("decodeGroup: %v", err)
			}
			if n != tt.wantSlices {
				t.Errorf("slices = %d, want %d", n, tt.wantSlices)
			}
			want := discovery.NewTable(vips, nil, nil).String()
			if s := discovery.NewTable(got, nil, nil).String(); s != want {
				t.Errorf("round trip:\n%s\nwant\n%s", s, want)
			}
		})
	}
}

func TestGroupSlicesBackendsAcrossVIPs(t *testing.T) {
	vips := vipsOf(1, map[int]int{0: 150})[:1]
	vips = append(vips, vips[0])
	vips[1].Key.Protocol = discovery.UDP
	_, n, err := roundTrip(t, "n/app0.marathon", vips)
	if err != nil || n != 3 {
		t.Fatalf("300 backends in 2 vips: %d slices, %v; want 3", n, err)
	}
}

func TestDecodeGroupRejects(t *testing.T) {
	good := func(mut func(*groupValue)) []byte {
		head, _, _ := encodeGroup(vipsOf(1, nil)[:1])
		var g groupValue
		json.Unmarshal(head, &g)
		mut(&g)
		b, _ := json.Marshal(g)
		return b
	}
	tests := []struct {
		name string
		id   string
		head []byte
	}{
		{"not json", "n/a.marathon", []byte("{")},
		{"not a group", "x/a", good(func(*groupValue) {})},
		{"ip group of another ip", "ip/10.0.0.1", good(func(*groupValue) {})},
		{"missing slice", "n/app0.marathon", good(func(g *groupValue) { g.Slices = 2 })},
		{"negative slices", "n/app0.marathon", good(func(g *groupValue) { g.Slices = -1 })},
		{"no port", "n/app0.marathon", good(func(g *groupValue) { g.VIPs[0].Port = 0 })},
		{"v6 as addr4", "n/app0.marathon", good(func(g *groupValue) { g.VIPs[0].Addr4 = netip.MustParseAddr("fd01:c::1") })},
		{"weight 7", "n/app0.marathon", good(func(g *groupValue) { g.VIPs[0].Backends[0].Weight = 7 })},
		{"two addresses for one name", "n/app0.marathon", good(func(g *groupValue) {
			v := g.VIPs[0]
			v.Port, v.Addr4 = 81, netip.MustParseAddr("11.0.0.99")
			g.VIPs = append(g.VIPs, v)
		})},
		{"duplicate vip", "n/app0.marathon", good(func(g *groupValue) { g.VIPs = append(g.VIPs, g.VIPs[0]) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeGroup(tt.id, tt.head, func(int) ([]byte, bool) { return nil, false }); err == nil {
				t.Errorf("decodeGroup(%q, %s) = nil error", tt.id, tt.head)
			}
		})
	}
	_, err := decodeGroup("n/app0.marathon", good(func(g *groupValue) { g.Slices = 1 }), func(int) ([]byte, bool) { return nil, false })
	if !errors.Is(err, errIncomplete) {
		t.Errorf("missing slice: %v, want errIncomplete", err)
	}
}

func TestParseGroupKey(t *testing.T) {
	tests := []struct {
		in   string
		want groupKey
		ok   bool
	}{
		{"n/web.marathon", groupKey{"n/web.marathon", -1}, true},
		{"n/web.marathon/s3", groupKey{"n/web.marathon", 3}, true},
		{"ip/fd00::1", groupKey{"ip/fd00::1", -1}, true},
		{"ip/10.0.0.1/s0", groupKey{"ip/10.0.0.1", 0}, true},
		{"n/web.marathon/s03", groupKey{}, false},
		{"n/web.marathon/x", groupKey{}, false},
		{"n/", groupKey{}, false},
		{"q/web", groupKey{}, false},
	}
	for _, tt := range tests {
		got, ok := parseGroupKey(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseGroupKey(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeGroup: any head and slice decode without a crash, and what
// decodes encodes back to a value that decodes to the same VIPs.
func FuzzDecodeGroup(f *testing.F) {
	head, sliced, _ := encodeGroup(vipsOf(1, map[int]int{0: 120})[:1])
	f.Add("n/app0.marathon", head, sliced[0])
	head, _, _ = encodeGroup(vipsOf(1, nil)[:1])
	f.Add("n/app0.marathon", head, []byte(nil))
	f.Add("ip/10.99.0.1", []byte(`{"vips":[{"proto":"tcp","port":443,"addr4":"10.99.0.1"}]}`), []byte(nil))
	f.Fuzz(func(t *testing.T, id string, head, slice []byte) {
		vips, err := decodeGroup(id, head, func(i int) ([]byte, bool) { return slice, i == 0 })
		if err != nil {
			return
		}
		back, _, err := roundTrip(t, id, vips)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", id, err)
		}
		if a, b := discovery.NewTable(vips, nil, nil).String(), discovery.NewTable(back, nil, nil).String(); a != b {
			t.Fatalf("round trip of %q:\n%s\n!=\n%s", id, a, b)
		}
	})
}

func FuzzParseGroupKey(f *testing.F) {
	for _, s := range []string{"n/web.marathon", "n/web.marathon/s3", "ip/fd00::1/s0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gk, ok := parseGroupKey(s)
		if !ok {
			return
		}
		back := gk.id
		if gk.slice >= 0 {
			back = newKeys("/").slice(gk.id, gk.slice)[len("/vips/"):]
		}
		if back != s {
			t.Fatalf("parseGroupKey(%q) = %+v, which is %q", s, gk, back)
		}
	})
}

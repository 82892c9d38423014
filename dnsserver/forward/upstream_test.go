package forward

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"10.0.0.1", "10.0.0.1:53"},
		{" 10.0.0.1:5353 ", "10.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]", "[::1]:53"},
		{"[2001:db8::1]:61053", "[2001:db8::1]:61053"},
		{"::ffff:10.0.0.1", "10.0.0.1:53"},
		{"10.0.0.1:0", ""},
		{"10.0.0.1:99999", ""},
		{"dns.example", ""},
		{"fe80::1%eth0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := ParseUpstream(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseUpstream(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseUpstream(%q) = %v, %v, want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestParseZone(t *testing.T) {
	tests := []struct {
		in   string
		want string // zone and upstreams; "" for an error
	}{
		{"mesos=10.0.0.1:61053,10.0.0.2:61053", "mesos. [10.0.0.1:61053 10.0.0.2:61053]"},
		{"Corp.Example.=10.1.1.1", "corp.example. [10.1.1.1:53]"},
		{".=10.1.1.1", ". [10.1.1.1:53]"},
		{"mesos", ""},
		{"mesos=", ""},
		{"mesos=x", ""},
		{"a..b=10.0.0.1", ""},
		{`a\.b=10.0.0.1`, ""},
	}
	for _, tt := range tests {
		z, err := ParseZone(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseZone(%q) = %v, want an error", tt.in, z)
			}
			continue
		}
		if got := z.Name + " " + fmtAddrs(z.Upstreams); err != nil || got != tt.want {
			t.Errorf("ParseZone(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func fmtAddrs(as []netip.AddrPort) string {
	s := "["
	for i, a := range as {
		if i > 0 {
			s += " "
		}
		s += a.String()
	}
	return s + "]"
}

func TestPick(t *testing.T) {
	now := time.Unix(1000, 0)
	set := upstreamSet{}
	for _, a := range []string{"10.0.0.1:53", "10.0.0.2:53", "10.0.0.3:53", "10.0.0.4:53"} {
		set = append(set, newUpstream(netip.MustParseAddrPort(a)))
	}
	labels := func(us []*upstream) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.label)
		}
		slices.Sort(out)
		return out
	}
	// Two or fewer: all of them.
	if got := labels(set[:2].pick(now, defaultRand)); len(got) != 2 {
		t.Errorf("pick of 2 = %v", got)
	}
	// Random among equals: every upstream gets picked sometime.
	seen := map[string]bool{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		for _, l := range labels(set.pick(now, rnd.IntN)) {
			seen[l] = true
		}
	}
	if len(seen) != 4 {
		t.Errorf("picked %v of 4 equal upstreams", seen)
	}
	// Fewest failures first.
	set[0].failed(now)
	set[1].failed(now)
	set[1].failed(now)
	set[2].failed(now)
	set[2].failed(now)
	if got, want := labels(set.pick(now, defaultRand)), []string{"10.0.0.1:53", "10.0.0.4:53"}; !slices.Equal(got, want) {
		t.Errorf("pick = %v, want %v", got, want)
	}
	// Failures decay: after a few half-lives they are forgotten.
	later := now.Add(5 * failureHalfLife)
	for _, u := range set {
		if n := u.recentFailures(later); n != 0 {
			t.Errorf("%s: %d recent failures after 5 half-lives", u.label, n)
		}
	}
}

func TestRoutes(t *testing.T) {
	r := routes{def: upstreamSet{newUpstream(netip.MustParseAddrPort("10.0.0.1:53"))}}
	for _, z := range []string{"b.a.", "a."} {
		r.zones = append(r.zones, zoneRoute{name: z, label: "." + z, set: upstreamSet{newUpstream(netip.MustParseAddrPort("10.0.0.2:53"))}})
	}
	tests := []struct{ name, zone string }{
		{"a.", "a."},
		{"x.a.", "a."},
		{"b.a.", "b.a."},
		{"x.b.a.", "b.a."},
		{"xb.a.", "a."},
		{"ba.", ""},
		{"example.", ""},
	}
	for _, tt := range tests {
		if z, set := r.route(tt.name); z != tt.zone || set == nil {
			t.Errorf("route(%s) = %q, %v, want %q", tt.name, z, set, tt.zone)
		}
	}
}

package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// parseState reads services in the text form of the tests, one destination
// per line ("tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=1 a=3"; a line without
// "->" is a service without destinations). Options: w= weight, a= active
// connections, fwd= forwarding method, flags=, mask= netmask.
func parseState(t testing.TB, lines ...string) have {
	t.Helper()
	h := have{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 {
			t.Fatalf("bad state line %q", l)
		}
		p, err := discovery.ParseProtocol(f[0])
		if err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(f[1])
		k := serviceKey{Proto: uint16(p), Addr: ap.Addr(), Port: ap.Port()}
		hs := h[k]
		if hs == nil {
			hs = &haveService{Sched: f[2], Netmask: netmask(k.Addr)}
			h[k] = hs
		}
		rest := f[3:]
		var hd *haveDest
		if len(rest) >= 2 && rest[0] == "->" {
			dp := netip.MustParseAddrPort(rest[1])
			hd = &haveDest{Key: destKey{Addr: dp.Addr(), Port: dp.Port()}, Weight: 1}
			rest = rest[2:]
		}
		for _, o := range rest {
			var n int
			var name string
			if _, err := fmt.Sscanf(strings.Replace(o, "=", " ", 1), "%s %d", &name, &n); err != nil {
				t.Fatalf("bad option %q in %q", o, l)
			}
			switch {
			case hd != nil && name == "w":
				hd.Weight = n
			case hd != nil && name == "a":
				hd.Active = n
			case hd != nil && name == "fwd":
				hd.Fwd = uint32(n)
			case name == "flags":
				hs.Flags = uint32(n)
			case name == "mask":
				hs.Netmask = uint32(n)
			default:
				t.Fatalf("unknown option %q in %q", o, l)
			}
		}
		if hd != nil {
			hs.Dests = append(hs.Dests, *hd)
		}
	}
	for _, hs := range h {
		slices.SortFunc(hs.Dests, func(a, b haveDest) int { return compareDestKey(a.Key, b.Key) })
	}
	return h
}

// parseWant reads desired services in the same text form (w= only).
func parseWant(t testing.TB, lines ...string) want {
	t.Helper()
	w := want{}
	for k, hs := range parseState(t, lines...) {
		ws := &wantService{Sched: hs.Sched}
		for _, hd := range hs.Dests {
			ws.Dests = append(ws.Dests, wantDest{Key: hd.Key, Weight: hd.Weight})
		}
		w[k] = ws
	}
	return w
}

func dk(s string) drainKey {
	f := strings.Fields(s) // "tcp 11.0.0.1:80 -> 192.0.2.2:8080"
	p, _ := discovery.ParseProtocol(f[0])
	sv, d := netip.MustParseAddrPort(f[1]), netip.MustParseAddrPort(f[3])
	return drainKey{
		Svc:  serviceKey{Proto: uint16(p), Addr: sv.Addr(), Port: sv.Port()},
		Dest: destKey{Addr: d.Addr(), Port: d.Port()},
	}
}

func (o op) String() string {
	s := o.Kind.String() + " " + o.describe()
	switch o.Kind {
	case opAddService, opUpdateService:
		s += " " + o.Sched
	case opAddDest, opUpdateDest:
		s += fmt.Sprintf(" w=%d", o.Weight)
	}
	if o.Drained {
		s += " (drained)"
	}
	return s
}

func compareOp(a, b op) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Svc.Proto, b.Svc.Proto); c != 0 {
		return c
	}
	if c := a.Svc.Addr.Compare(b.Svc.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Svc.Port, b.Svc.Port); c != 0 {
		return c
	}
	return compareDestKey(a.Dest, b.Dest)
}

// renderPlan renders p's writes, sorted, then its drains.
func renderPlan(p plan) []string {
	var out []string
	for i, o := range p.Ops {
		if i > 0 && p.Ops[i-1].Kind > o.Kind {
			out = append(out, "writes out of order")
		}
	}
	ops := slices.Clone(p.Ops)
	slices.SortFunc(ops, compareOp)
	for _, o := range ops {
		out = append(out, o.String())
	}
	var ds []string
	for k, until := range p.Drains {
		ds = append(ds, fmt.Sprintf("drain %s -> %s until +%s", k.Svc, netip.AddrPortFrom(k.Dest.Addr, k.Dest.Port), until.Sub(t0)))
	}
	slices.Sort(ds)
	return append(out, ds...)
}

func TestDiff(t *testing.T) {
	const drain = 30 * time.Second
	tests := []struct {
		name   string
		want   []string
		have   []string
		drains map[drainKey]time.Time
		now    time.Time
		cached bool // the view was not just read from the kernel
		out    []string
	}{
		{name: "nothing"},
		{
			name: "new service",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080", "tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0"},
			out: []string{
				"add_service tcp 11.0.0.1:80 wlc",
				"add_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=0",
				"add_backend tcp 11.0.0.1:80 -> 192.0.2.3:8080 w=1",
			},
		},
		{
			name: "unchanged",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "udp [fd01:c::1]:53 wlc -> [2001:db8::2]:53 w=0"},
			have: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 a=4", "udp [fd01:c::1]:53 wlc -> [2001:db8::2]:53 w=0"},
		},
		{
			name: "service without backends",
			want: []string{"tcp 11.0.0.1:80 wlc"},
			have: []string{"tcp 11.0.0.1:80 wlc"},
		},
		{
			name: "backend added and weight changed",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080"},
			out: []string{
				"add_backend tcp 11.0.0.1:80 -> 192.0.2.3:8080 w=1",
				"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=0",
			},
		},
		{
			name: "scheduler, flags, netmask and forwarding repaired",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "tcp 11.0.0.2:80 wlc", "tcp 11.0.0.3:80 wlc"},
			have: []string{"tcp 11.0.0.1:80 rr -> 192.0.2.2:8080 fwd=3", "tcp 11.0.0.2:80 wlc flags=3", "tcp 11.0.0.3:80 wlc mask=24"},
			out: []string{
				"update_service tcp 11.0.0.1:80 wlc",
				"update_service tcp 11.0.0.2:80 wlc",
				"update_service tcp 11.0.0.3:80 wlc",
				"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=1",
			},
		},
		{
			name: "hashed flag is the kernel's",
			want: []string{"tcp 11.0.0.1:80 wlc"},
			have: []string{"tcp 11.0.0.1:80 wlc flags=2"},
		},
		{
			name: "tcp backend with connections drains",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 a=2", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			out: []string{
				"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=0",
				"drain tcp 11.0.0.1:80 -> 192.0.2.2:8080 until +30s",
			},
		},
		{
			name: "tcp backend without connections goes at once",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			out:  []string{"del_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080"},
		},
		{
			name:   "cached counts do not let a backend go at once",
			want:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			cached: true,
			out: []string{
				"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=0",
				"drain tcp 11.0.0.1:80 -> 192.0.2.2:8080 until +30s",
			},
		},
		{
			name:   "draining backend still busy",
			want:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0 a=1", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			drains: map[drainKey]time.Time{dk("tcp 11.0.0.1:80 -> 192.0.2.2:8080"): t0.Add(10 * time.Second)},
			out:    []string{"drain tcp 11.0.0.1:80 -> 192.0.2.2:8080 until +10s"},
		},
		{
			name:   "draining backend done",
			want:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0 a=0", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			drains: map[drainKey]time.Time{dk("tcp 11.0.0.1:80 -> 192.0.2.2:8080"): t0.Add(10 * time.Second)},
			out:    []string{"del_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 (drained)"},
		},
		{
			name:   "draining backend out of time",
			want:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0 a=7", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			drains: map[drainKey]time.Time{dk("tcp 11.0.0.1:80 -> 192.0.2.2:8080"): t0},
			out:    []string{"del_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 (drained)"},
		},
		{
			name:   "draining backend comes back",
			want:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080"},
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0 a=1"},
			drains: map[drainKey]time.Time{dk("tcp 11.0.0.1:80 -> 192.0.2.2:8080"): t0.Add(time.Second)},
			out:    []string{"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=1"},
		},
		{
			name: "udp backend goes at once",
			want: []string{"udp 11.0.0.1:53 wlc -> 192.0.2.3:53"},
			have: []string{"udp 11.0.0.1:53 wlc -> 192.0.2.2:53 a=3", "udp 11.0.0.1:53 wlc -> 192.0.2.3:53"},
			out:  []string{"del_backend udp 11.0.0.1:53 -> 192.0.2.2:53"},
		},
		{
			name: "udp service goes at once",
			have: []string{"udp 11.0.0.1:53 wlc -> 192.0.2.2:53 a=3", "udp 11.0.0.1:53 wlc -> 192.0.2.3:53"},
			out:  []string{"del_service udp 11.0.0.1:53"},
		},
		{
			name: "tcp service drains its busy backends",
			have: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 a=1", "tcp 11.0.0.1:80 wlc -> 192.0.2.3:8080"},
			out: []string{
				"update_backend tcp 11.0.0.1:80 -> 192.0.2.2:8080 w=0",
				"del_backend tcp 11.0.0.1:80 -> 192.0.2.3:8080",
				"drain tcp 11.0.0.1:80 -> 192.0.2.2:8080 until +30s",
			},
		},
		{
			name:   "tcp service goes when drained",
			have:   []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080 w=0"},
			drains: map[drainKey]time.Time{dk("tcp 11.0.0.1:80 -> 192.0.2.2:8080"): t0.Add(time.Second)},
			out:    []string{"del_service tcp 11.0.0.1:80 (drained)"},
		},
		{
			name: "leftovers of an earlier run",
			want: []string{"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080"},
			have: []string{
				"tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "tcp 11.0.0.1:80 wlc -> 192.0.2.9:8080 w=0",
				"tcp 11.0.0.7:80 wlc", "udp 11.0.0.8:53 rr -> 192.0.2.4:53",
			},
			out: []string{
				"del_backend tcp 11.0.0.1:80 -> 192.0.2.9:8080",
				"del_service tcp 11.0.0.7:80",
				"del_service udp 11.0.0.8:53",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			pol := drainPolicy{Now: now, For: drain, Fresh: !tt.cached}
			got := renderPlan(diff(parseWant(t, tt.want...), parseState(t, tt.have...), tt.drains, pol))
			if !slices.Equal(got, tt.out) {
				t.Errorf("diff() =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.out, "\n\t"))
			}
		})
	}
}

// TestDiffConverges checks that applying a plan's writes to the state and
// diffing again leaves only draining backends: diff is idempotent.
func TestDiffConverges(t *testing.T) {
	w := parseWant(t, "tcp 11.0.0.1:80 wlc -> 192.0.2.2:8080", "udp 11.0.0.2:53 wlc -> 192.0.2.3:53 w=0")
	h := parseState(t, "tcp 11.0.0.1:80 rr -> 192.0.2.4:8080 a=1", "tcp 11.0.0.5:80 wlc -> 192.0.2.5:8080", "udp 11.0.0.6:53 wlc")
	pol := drainPolicy{Now: t0, For: time.Minute, Fresh: true}
	p := diff(w, h, nil, pol)
	for _, o := range p.Ops {
		h.apply(o)
	}
	if again := diff(w, h, p.Drains, pol); len(again.Ops) != 0 {
		t.Errorf("second diff = %v, want no writes", renderPlan(again))
	}
}

func TestDesired(t *testing.T) {
	b := func(s string, w uint8) discovery.Backend {
		return discovery.Backend{Addr: netip.MustParseAddrPort(s), Weight: w}
	}
	tbl := discovery.NewTable([]discovery.VIP{
		{
			Key:   discovery.VIPKey{Protocol: discovery.TCP, Name: "web.marathon", Port: 80},
			Addr4: netip.MustParseAddr("11.0.0.1"), Addr6: netip.MustParseAddr("fd01:c::1"),
			Backends: []discovery.Backend{
				b("192.0.2.2:31000", 1), b("192.0.2.2:31000", 0), b("[::ffff:192.0.2.3]:31001", 0), b("[2001:db8::2]:8080", 1),
			},
		},
		{
			Key:      discovery.VIPKey{Protocol: discovery.UDP, IP: netip.MustParseAddr("198.51.100.7"), Port: 53},
			Addr4:    netip.MustParseAddr("198.51.100.7"),
			Backends: []discovery.Backend{b("[2001:db8::3]:53", 1)},
		},
	}, nil, nil)
	w := desired(tbl, "wlc")
	got := renderWant(w)
	want := []string{
		"tcp 11.0.0.1:80 wlc -> 192.0.2.2:31000 w=1",
		"tcp 11.0.0.1:80 wlc -> 192.0.2.3:31001 w=0",
		"tcp [fd01:c::1]:80 wlc -> [2001:db8::2]:8080 w=1",
		"udp 198.51.100.7:53 wlc",
	}
	if !slices.Equal(got, want) {
		t.Errorf("desired() =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if n := len(serviceKeys(tbl.VIPs.At(0))); n != 2 {
		t.Errorf("serviceKeys() gave %d services for the dual-stack VIP, want 2", n)
	}
}

// renderWant renders w sorted, one destination per line.
func renderWant(w want) []string {
	var out []string
	for k, ws := range w {
		if len(ws.Dests) == 0 {
			out = append(out, fmt.Sprintf("%s %s", k, ws.Sched))
		}
		for _, d := range ws.Dests {
			out = append(out, fmt.Sprintf("%s %s -> %s w=%d", k, ws.Sched, netip.AddrPortFrom(d.Key.Addr, d.Key.Port), d.Weight))
		}
	}
	slices.Sort(out)
	return out
}

package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func TestAllocatorDefaults(t *testing.T) {
	a := NewAllocator(AllocConfig{}, nil)
	tests := []struct {
		name   string
		v6     bool
		prefix netip.Prefix
	}{
		{"ipv4", false, netip.MustParsePrefix("11.0.0.0/8")},
		{"ipv6", true, netip.MustParsePrefix("fd01:c::/64")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, err := a.Assign("foo.marathon", tt.v6, t0)
			if err != nil || !tt.prefix.Contains(ip) {
				t.Fatalf("Assign(foo.marathon, %v) = %v, %v, want an address in %v", tt.v6, ip, err, tt.prefix)
			}
			again, err := a.Assign("foo.marathon", tt.v6, t0.Add(time.Minute))
			if err != nil || again != ip {
				t.Fatalf("second Assign = %v, %v, want %v", again, err, ip)
			}
		})
	}
	if a.Len() != 2 {
		t.Errorf("Len() = %d, want 2 (one per family)", a.Len())
	}
}

func TestAllocatorStableAcrossRestart(t *testing.T) {
	cfg := AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/24")}
	a := NewAllocator(cfg, nil)
	want := map[string]netip.Addr{}
	for i := range 50 {
		name := fmt.Sprintf("app%d.marathon", i)
		ip, err := a.Assign(name, false, t0)
		if err != nil {
			t.Fatalf("Assign(%s) = %v", name, err)
		}
		want[name] = ip
	}
	persisted := a.Dirty()
	if len(persisted) != 50 {
		t.Fatalf("Dirty() returned %d assignments, want 50", len(persisted))
	}
	if again := a.Dirty(); len(again) != 0 {
		t.Errorf("second Dirty() = %v, want nothing", again)
	}

	// The restarted allocator meets the names in reverse order: without
	// the persisted assignments, collisions would resolve differently.
	b := NewAllocator(cfg, persisted)
	for i := 49; i >= 0; i-- {
		name := fmt.Sprintf("app%d.marathon", i)
		ip, err := b.Assign(name, false, t0.Add(time.Minute))
		if err != nil || ip != want[name] {
			t.Errorf("after restart Assign(%s) = %v, %v, want %v", name, ip, err, want[name])
		}
	}
	if d := b.Dirty(); len(d) != 0 {
		t.Errorf("Dirty() after a minute = %d assignments, want none (LastSeen refresh is coarse)", len(d))
	}
	seen := map[netip.Addr]bool{}
	for name, ip := range want {
		if seen[ip] {
			t.Fatalf("address %v handed out twice (again to %s)", ip, name)
		}
		seen[ip] = true
	}
}

func TestAllocatorDeterministic(t *testing.T) {
	// FNV-1a 64 of the name into the range: the same on every node.
	x := NewAllocator(AllocConfig{}, nil)
	y := NewAllocator(AllocConfig{}, nil)
	for _, name := range []string{"foo.bar", "baz.qux", "mygroupmyapp.marathon"} {
		for _, v6 := range []bool{false, true} {
			a, errA := x.Assign(name, v6, t0)
			b, errB := y.Assign(name, v6, t0)
			if errA != nil || errB != nil || a != b {
				t.Errorf("Assign(%s, %v) = %v, %v and %v, %v; want equal", name, v6, a, errA, b, errB)
			}
		}
	}
}

func TestAllocatorTinyRange(t *testing.T) {
	// 11.0.0.0/30 has two usable addresses: .1 and .2 (.0 is the network,
	// .3 the broadcast address).
	a := NewAllocator(AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/30")}, nil)
	usable := []netip.Addr{netip.MustParseAddr("11.0.0.1"), netip.MustParseAddr("11.0.0.2")}
	var got []netip.Addr
	for _, name := range []string{"a.marathon", "b.marathon"} {
		ip, err := a.Assign(name, false, t0)
		if err != nil {
			t.Fatalf("Assign(%s) = %v", name, err)
		}
		got = append(got, ip)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	if !slices.Equal(got, usable) {
		t.Fatalf("assigned %v, want %v (collision probes to the next free address)", got, usable)
	}
	if ip, err := a.Assign("c.marathon", false, t0); !errors.Is(err, ErrOutOfAddresses) {
		t.Fatalf("Assign in a full range = %v, %v, want ErrOutOfAddresses", ip, err)
	}
	if got := a.Expire(t0.Add(25 * time.Hour)); !slices.Equal(got, []string{"a.marathon/4", "b.marathon/4"}) {
		t.Fatalf("Expire() = %v", got)
	}
	if _, err := a.Assign("c.marathon", false, t0.Add(25*time.Hour)); err != nil {
		t.Fatalf("Assign after expiry = %v", err)
	}
}

func TestAllocatorReserve(t *testing.T) {
	cfg := AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/30")}
	a := NewAllocator(cfg, nil)
	first, err := a.Assign("a.marathon", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	// An IP VIP takes a's address: a moves to the other usable address.
	a.Reserve(first)
	a.Reserve(netip.MustParseAddr("10.0.0.1")) // outside: ignored
	moved, err := a.Assign("a.marathon", false, t0)
	if err != nil || moved == first {
		t.Fatalf("Assign after Reserve(%v) = %v, %v, want another address", first, moved, err)
	}
	if ip, err := a.Assign("b.marathon", false, t0); !errors.Is(err, ErrOutOfAddresses) {
		t.Fatalf("Assign(b) = %v, %v, want ErrOutOfAddresses (one address reserved, one taken)", ip, err)
	}
	d := a.Dirty()
	if len(d) != 1 || d[0].Addr != moved {
		t.Errorf("Dirty() = %v, want the moved assignment at %v", d, moved)
	}
}

func TestAllocatorExpire(t *testing.T) {
	a := NewAllocator(AllocConfig{Grace: time.Hour}, nil)
	for _, name := range []string{"old.marathon", "new.marathon"} {
		if _, err := a.Assign(name, false, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Assign("old.marathon", true, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Assign("new.marathon", false, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := a.Expire(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Expire at exactly Grace = %v, want nothing", got)
	}
	got := a.Expire(t0.Add(time.Hour + time.Second))
	if want := []string{"old.marathon/4", "old.marathon/6"}; !slices.Equal(got, want) {
		t.Errorf("Expire() = %v, want %v", got, want)
	}
	if a.Len() != 1 {
		t.Errorf("Len() = %d, want 1", a.Len())
	}
	for _, d := range a.Dirty() {
		if d.Name != "new.marathon" {
			t.Errorf("Dirty() holds expired %v", d)
		}
	}
}

func TestNewAllocatorDropsUnusable(t *testing.T) {
	existing := []Assignment{
		{Name: "keep.marathon", Addr: netip.MustParseAddr("11.0.0.5"), LastSeen: t0.Add(time.Hour)},
		{Name: "clash.marathon", Addr: netip.MustParseAddr("11.0.0.5"), LastSeen: t0},
		{Name: "outside.marathon", Addr: netip.MustParseAddr("12.0.0.1"), LastSeen: t0},
		{Name: "network.marathon", Addr: netip.MustParseAddr("11.0.0.0"), LastSeen: t0},
		{Name: "v6.marathon", Addr: netip.MustParseAddr("fd01:c::7"), LastSeen: t0},
		{Name: "", Addr: netip.MustParseAddr("11.0.0.9"), LastSeen: t0},
	}
	a := NewAllocator(AllocConfig{}, existing)
	if a.Len() != 2 {
		t.Errorf("Len() = %d, want 2", a.Len())
	}
	if ip, err := a.Assign("keep.marathon", false, t0.Add(time.Hour)); err != nil || ip != existing[0].Addr {
		t.Errorf("Assign(keep) = %v, %v, want %v", ip, err, existing[0].Addr)
	}
	got := a.Expire(t0.Add(time.Hour))
	want := []string{"clash.marathon/4", "network.marathon/4", "outside.marathon/4"}
	if !slices.Equal(got, want) {
		t.Errorf("first Expire() = %v, want the dropped %v", got, want)
	}
}

func TestAllocatorBadRange(t *testing.T) {
	a := NewAllocator(AllocConfig{V4: netip.MustParsePrefix("fd00::/64"), V6: netip.MustParsePrefix("fd01:c::/128")}, nil)
	for _, v6 := range []bool{false, true} {
		if ip, err := a.Assign("x.marathon", v6, t0); err == nil {
			t.Errorf("Assign(v6=%v) = %v, want an error for an unusable range", v6, ip)
		}
	}
	if _, err := a.Assign("", false, t0); err == nil {
		t.Error("Assign of an empty name succeeded")
	}
}

func TestAllocatorIPv6WidePrefix(t *testing.T) {
	p := netip.MustParsePrefix("fd01:c::/48")
	a := NewAllocator(AllocConfig{V6: p}, nil)
	ip, err := a.Assign("foo.marathon", true, t0)
	if err != nil || !p.Contains(ip) || ip.As16()[6] != 0 || ip.As16()[7] != 0 {
		t.Fatalf("Assign = %v, %v, want an address in the first /64 of %v", ip, err, p)
	}
	b := NewAllocator(AllocConfig{V6: p}, a.Dirty())
	if got, err := b.Assign("foo.marathon", true, t0); err != nil || got != ip {
		t.Fatalf("after reload Assign = %v, %v, want %v", got, err, ip)
	}
}

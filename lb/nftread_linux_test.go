package lb

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestElementSlotsRoundTrip(t *testing.T) {
	ds := []wantDest{
		{Key: destKey{Addr: netip.MustParseAddr("192.0.2.2"), Port: 8080}, Weight: 1},
		{Key: destKey{Addr: netip.MustParseAddr("192.0.2.6"), Port: 9090}, Weight: 3},
	}
	ss, mod := slots(ds)
	got, gotMod, ok := elementSlots(slotElements(ss, mod), 4)
	if !ok || gotMod != mod || !slices.Equal(got, ss) {
		t.Errorf("elementSlots(slotElements(%v, %d)) = %v, %d, %v", ss, mod, got, gotMod, ok)
	}
	if _, _, ok := elementSlots(slotElements(ss, mod)[:1], 4); ok {
		t.Errorf("elementSlots without an end element = ok")
	}
}

// FuzzNFTDecoders feeds the decoders of what the kernel returns (rules,
// verdicts, dispatch keys, map elements, notifications) with arbitrary
// bytes: they must not panic, and what they accept must be consistent.
func FuzzNFTDecoders(f *testing.F) {
	rule, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte("vip-tcp-11.0.0.1-80\x00")},
	})
	verdict, _ := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_VERDICT_CODE, Data: []byte{0xff, 0xff, 0xff, 0xfc}},
		{Type: unix.NFTA_VERDICT_CHAIN, Data: []byte("vip-tcp-11.0.0.1-80\x00")},
	})
	f.Add(rule)
	f.Add(verdict)
	f.Add(dispatchKey(serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("11.0.0.1"), Port: 80}))
	f.Add([]byte{0, 0, 0, 1, 192, 0, 2, 2, 0x1f, 0x90, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseRule(b)
		_ = verdictChain(b)
		_ = tableOf(b)
		for _, n := range []uint32{4, 16} {
			if k, ok := parseDispatchKey(b, n); ok && !slices.Equal(dispatchKey(k), b) && b[n+1]|b[n+2]|b[n+3]|b[n+6]|b[n+7] == 0 {
				t.Fatalf("parseDispatchKey(%x) = %v, whose key is %x", b, k, dispatchKey(k))
			}
		}
		// Elements of 4-byte keys and 8-byte values cut from b.
		var es []nftables.SetElement
		for i := 0; i+13 <= len(b); i += 13 {
			es = append(es, nftables.SetElement{Key: b[i : i+4], Val: b[i+4 : i+12], IntervalEnd: b[i+12]&1 == 1})
		}
		ss, mod, ok := elementSlots(es, 4)
		if !ok {
			return
		}
		for i, s := range ss {
			if s.Start >= mod || (i > 0 && s.Start < ss[i-1].Start) {
				t.Fatalf("elementSlots(%v) = %v, %d: not sorted below the modulus", es, ss, mod)
			}
		}
	})
}

func TestChangedServices(t *testing.T) {
	a := vip("tcp web.marathon:80", []string{"11.0.0.1", "fd01:c::1"}, "192.0.2.2:80", "[2001:db8::2]:80")
	b := vip("udp dns.marathon:53", []string{"11.0.0.2"}, "192.0.2.2:53")
	b2 := vip("udp dns.marathon:53", []string{"11.0.0.2"}, "192.0.2.6:53")
	x := &NFTables{view: &lbView{}, clean: true}
	if got := x.changed(table(a, b)); got != nil {
		t.Errorf("changed(first table) = %v, want nil (compare all)", got)
	}
	if got := x.changed(table(a, b)); got == nil || len(got) != 0 {
		t.Errorf("changed(an equal table) = %v, want none", got)
	}
	got := x.changed(table(a, b2))
	want := serviceKey{Proto: protoUDP, Addr: netip.MustParseAddr("11.0.0.2"), Port: 53}
	if _, ok := got[want]; len(got) != 1 || !ok {
		t.Errorf("changed(a backend of dns moved) = %v, want only %v", got, want)
	}
	if got := x.changed(table(b2)); len(got) != 2 {
		t.Errorf("changed(web removed) = %v, want its two services", got)
	}
	x.clean = false
	if got := x.changed(table(b2)); got != nil {
		t.Errorf("changed() after a failed sync = %v, want nil", got)
	}
}

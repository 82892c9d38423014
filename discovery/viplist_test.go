package discovery

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestVIPListAgainstSlice edits a VIPList at random and a sorted slice the
// plain way, and checks after every edit that the list equals the slice
// through every accessor, that its chunks keep their invariants, that
// older versions are intact, and that untouched chunks are shared.
func TestVIPListAgainstSlice(t *testing.T) {
	for _, tc := range []struct {
		name        string
		keys, steps int
		batch       int
	}{
		{name: "tiny", keys: 5, steps: 300, batch: 2},
		{name: "one at a time", keys: 3000, steps: 300, batch: 1},
		{name: "batches", keys: 3000, steps: 100, batch: 200},
		{name: "grow then empty", keys: 1000, steps: 60, batch: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.keys)))
			key := func(i int) VIPKey {
				return VIPKey{Protocol: Protocol(i % 2), Name: fmt.Sprintf("app%05d.marathon", i/2), Port: uint16(80 + i%3)}
			}
			var l VIPList
			var model []VIP
			type version struct {
				l     VIPList
				model []VIP
			}
			var versions []version
			for step := range tc.steps {
				set := map[VIPKey]struct{}{}
				n := tc.batch
				if step == 0 {
					n = tc.keys
				}
				for range n {
					set[key(rng.IntN(tc.keys))] = struct{}{}
				}
				keys := make([]VIPKey, 0, len(set))
				for k := range set {
					keys = append(keys, k)
				}
				slices.SortFunc(keys, compareKey)
				emptying := tc.name == "grow then empty" && step > tc.steps/2
				gen := uint8(step)
				fn := func(k VIPKey, old *VIP) (VIP, bool) {
					switch r := rng.IntN(4); {
					case emptying || r == 0:
						return VIP{}, false
					case r == 1 && old != nil:
						return *old, true // unchanged
					default:
						return VIP{Key: k, Backends: []Backend{{Addr: netip.MustParseAddrPort("10.0.0.1:1"), Weight: gen % 2, TaskID: fmt.Sprint(gen)}}}, true
					}
				}
				// The model: the same decisions, taken in key order, on the slice.
				var want []VIP
				next, moved := l.edit(keys, func(k VIPKey, old *VIP) (VIP, bool) {
					v, ok := fn(k, old)
					if ok {
						want = append(want, v)
					}
					return v, ok
				}, nil)
				model = applyModel(model, keys, want)
				if !moved && !next.same(l) {
					t.Fatalf("step %d: edit reported no change but made a new version", step)
				}
				if moved {
					shared := 0
					for i := range next.chunks {
						if slices.ContainsFunc(l.chunks, func(c vipChunk) bool { return len(c.vips) > 0 && &c.vips[0] == &next.chunks[i].vips[0] }) {
							shared++
						}
					}
					if tc.batch == 1 && step > 0 && len(l.chunks) > 3 && shared < len(l.chunks)-3 {
						t.Fatalf("step %d: one key changed, only %d of %d chunks shared", step, shared, len(l.chunks))
					}
				}
				l = next
				checkList(t, fmt.Sprintf("step %d", step), l, model)
				versions = append(versions, version{l, slices.Clone(model)})
				if len(versions) > 3 {
					checkList(t, fmt.Sprintf("step %d, version %d", step, len(versions)-4), versions[len(versions)-4].l, versions[len(versions)-4].model)
				}
			}
		})
	}
}

// applyModel replaces the VIPs of keys in model with want (the present ones, in key order).
func applyModel(model []VIP, keys []VIPKey, want []VIP) []VIP {
	out := slices.DeleteFunc(slices.Clone(model), func(v VIP) bool {
		_, found := slices.BinarySearchFunc(keys, v.Key, compareKey)
		return found
	})
	out = append(out, want...)
	slices.SortFunc(out, compareVIP)
	return out
}

func checkList(t *testing.T, what string, l VIPList, model []VIP) {
	t.Helper()
	if l.Len() != len(model) {
		t.Fatalf("%s: Len %d, want %d", what, l.Len(), len(model))
	}
	if got := l.Slice(); !slices.EqualFunc(got, model, sameVIP) {
		t.Fatalf("%s: Slice differs from the model", what)
	}
	if !l.equal(newVIPList(model)) {
		t.Fatalf("%s: not equal to newVIPList(model)", what)
	}
	backends, end := 0, 0
	for i, c := range l.chunks {
		if len(c.vips) == 0 || cap(c.vips) != len(c.vips) || len(c.vips) > 2*chunkSize+chunkSize/4 {
			t.Fatalf("%s: chunk %d has %d VIPs, cap %d", what, i, len(c.vips), cap(c.vips))
		}
		end += len(c.vips)
		if c.end != end {
			t.Fatalf("%s: chunk %d end %d, want %d", what, i, c.end, end)
		}
		for j := range c.vips {
			backends += len(c.vips[j].Backends)
		}
	}
	if l.Backends() != backends {
		t.Fatalf("%s: Backends %d, want %d", what, l.Backends(), backends)
	}
	for i := range model {
		if v := l.At(i); v.Key != model[i].Key {
			t.Fatalf("%s: At(%d) = %v, want %v", what, i, v.Key, model[i].Key)
		}
		if v, ok := l.Get(model[i].Key); !ok || v.Key != model[i].Key {
			t.Fatalf("%s: Get(%v) failed", what, model[i].Key)
		}
	}
	if _, ok := l.Get(VIPKey{Name: "missing"}); ok {
		t.Fatalf("%s: Get(missing) found", what)
	}
	if len(model) > 0 {
		i := len(model) / 2
		var from []VIPKey
		for v := range l.From(model[i].Key) {
			from = append(from, v.Key)
		}
		if len(from) != len(model)-i || from[0] != model[i].Key {
			t.Fatalf("%s: From(%v) yields %d VIPs, want %d", what, model[i].Key, len(from), len(model)-i)
		}
	}
}

func BenchmarkVIPListEditOneOf10k(b *testing.B) {
	vips := make([]VIP, 10000)
	for i := range vips {
		vips[i] = VIP{Key: VIPKey{Name: fmt.Sprintf("app%05d.marathon", i), Port: 80}, Backends: make([]Backend, 3)}
	}
	l := newVIPList(vips)
	k := []VIPKey{vips[4242].Key}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l, _ = l.edit(k, func(k VIPKey, old *VIP) (VIP, bool) {
			v := *old
			v.Backends = make([]Backend, 1+i%3)
			return v, true
		}, nil)
	}
}

// This file maps a service's weighted backends to the slots of an
// nftables interval map and back.

package lb

import (
	"cmp"
	"slices"
)

// maxSlots caps the width of a service's interval map: weights are scaled
// down to fit (only with more than 4096 backends of weight 1, or mixed
// large weights, does a backend's share round).
const maxSlots = 4096

// slot is one interval of a service's map: numbers from Start up to the
// next slot's Start (or the modulus) pick Dest.
type slot struct {
	Start uint32
	Dest  destKey
}

// slots lays out the backends of positive weight, sorted by key, as
// consecutive intervals of width proportional to their weight, reduced by
// the weights' gcd: weights 2 and 4 give widths 1 and 2 and modulus 3. A
// numgen random mod the modulus then picks a backend with probability
// weight/Σweights, as IPVS's wrr. The modulus is 0 when no backend takes
// new connections.
func slots(ds []wantDest) ([]slot, uint32) {
	g, sum := 0, 0
	for _, d := range ds {
		if d.Weight > 0 {
			g, sum = gcd(g, d.Weight), sum+d.Weight
		}
	}
	if sum == 0 {
		return nil, 0
	}
	sum /= g
	scale := func(w int) int { return w / g }
	if sum > maxSlots {
		scale = func(w int) int { return max(1, w/g*maxSlots/sum) }
	}
	var out []slot
	next := uint32(0)
	for _, d := range ds {
		if d.Weight <= 0 {
			continue
		}
		out = append(out, slot{Start: next, Dest: d.Key})
		next += uint32(scale(d.Weight))
	}
	return out, next
}

// slotDests is the inverse of slots: the backends of a map, sorted by
// key, each with its width as weight. It returns nil when the slots do
// not form a valid layout (unsorted, empty or overlapping intervals, a
// backend twice), which makes the service differ from any wanted one.
func slotDests(ss []slot, mod uint32) []wantDest {
	if len(ss) == 0 || ss[0].Start != 0 {
		return nil
	}
	out := make([]wantDest, 0, len(ss))
	for i, s := range ss {
		end := mod
		if i+1 < len(ss) {
			end = ss[i+1].Start
		}
		if end <= s.Start {
			return nil
		}
		out = append(out, wantDest{Key: s.Dest, Weight: int(end - s.Start)})
	}
	slices.SortFunc(out, func(a, b wantDest) int { return compareDestKey(a.Key, b.Key) })
	if len(slices.CompactFunc(slices.Clone(out), func(a, b wantDest) bool { return a.Key == b.Key })) != len(out) {
		return nil
	}
	return out
}

// sameSlots reports whether the map laid out as have (with modulus
// haveMod) picks backends exactly as ws asks.
func sameSlots(ws []wantDest, have []slot, haveMod uint32) bool {
	want, mod := slots(ws)
	return mod == haveMod && slices.Equal(want, have)
}

// slotsMatch reports, without allocating, whether slots(ds) would be
// have with modulus mod.
func slotsMatch(ds []wantDest, have []slot, mod uint32) bool {
	g, sum := 0, 0
	for _, d := range ds {
		if d.Weight > 0 {
			g, sum = gcd(g, d.Weight), sum+d.Weight
		}
	}
	if sum == 0 || sum/g > maxSlots {
		return sameSlots(ds, have, mod)
	}
	i, next := 0, uint32(0)
	for _, d := range ds {
		if d.Weight <= 0 {
			continue
		}
		if i >= len(have) || have[i].Start != next || have[i].Dest != d.Key {
			return false
		}
		next += uint32(d.Weight / g)
		i++
	}
	return i == len(have) && next == mod
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sortSlots(ss []slot) {
	slices.SortFunc(ss, func(a, b slot) int { return cmp.Compare(a.Start, b.Start) })
}

package discovery

// VIPList: a Table's VIPs sorted by key, copy-on-write in chunks, so that
// consecutive Tables share every chunk a change did not touch.

import (
	"iter"
	"slices"
)

// VIPList is an immutable sequence of VIPs sorted by Key, kept in chunks
// of about chunkSize VIPs: a new list with a few VIPs changed (edit) copies
// their chunks and the chunk directory and shares every other chunk, so
// that publishing a change costs the change, not the number of VIPs. The
// zero VIPList is empty.
type VIPList struct {
	chunks []vipChunk
}

// vipChunk is a non-empty run of VIPs, clipped (cap == len) so that no
// append ever writes into an array another list shares.
type vipChunk struct {
	vips     []VIP
	end      int // VIPs in this chunk and all before it
	backends int // backends of this chunk's VIPs
}

// chunkSize is the chunk size a list aims at: an edited chunk is split
// when it grows past twice that, and one that shrinks below a quarter of it
// is joined to the chunk before it when the two fit in twice the size.
// Chunks no edit touches keep their size, so a list may hold small chunks.
const chunkSize = 64

// newVIPList returns the list of vips, which must be sorted by Key and are
// not copied: the caller must not change them afterwards.
func newVIPList(vips []VIP) VIPList {
	var l VIPList
	for i := 0; i < len(vips); i += chunkSize {
		l.chunks = appendChunk(l.chunks, vips[i:min(i+chunkSize, len(vips)):min(i+chunkSize, len(vips))])
	}
	return l
}

func appendChunk(chunks []vipChunk, vips []VIP) []vipChunk {
	c := vipChunk{vips: vips, end: len(vips)}
	if n := len(chunks); n > 0 {
		c.end += chunks[n-1].end
	}
	for i := range vips {
		c.backends += len(vips[i].Backends)
	}
	return append(chunks, c)
}

// appendShared appends chunk c of another list, renumbered.
func appendShared(chunks []vipChunk, c vipChunk) []vipChunk {
	c.end = len(c.vips)
	if n := len(chunks); n > 0 {
		c.end += chunks[n-1].end
	}
	return append(chunks, c)
}

// Len returns the number of VIPs.
func (l VIPList) Len() int {
	if len(l.chunks) == 0 {
		return 0
	}
	return l.chunks[len(l.chunks)-1].end
}

// Backends returns the number of backends of all VIPs.
func (l VIPList) Backends() int {
	n := 0
	for i := range l.chunks {
		n += l.chunks[i].backends
	}
	return n
}

// At returns the i-th VIP; the caller must not modify it.
func (l VIPList) At(i int) *VIP {
	c, _ := slices.BinarySearchFunc(l.chunks, i, func(c vipChunk, i int) int { return c.end - 1 - i })
	ch := &l.chunks[c]
	return &ch.vips[i-(ch.end-len(ch.vips))]
}

// All yields every VIP in Key order; the caller must not modify them.
func (l VIPList) All() iter.Seq[*VIP] {
	return func(yield func(*VIP) bool) {
		for c := range l.chunks {
			vips := l.chunks[c].vips
			for i := range vips {
				if !yield(&vips[i]) {
					return
				}
			}
		}
	}
}

// From yields the VIPs with keys from k on, in Key order.
func (l VIPList) From(k VIPKey) iter.Seq[*VIP] {
	return func(yield func(*VIP) bool) {
		c := l.chunkFor(k)
		for ; c < len(l.chunks); c++ {
			vips := l.chunks[c].vips
			i, _ := slices.BinarySearchFunc(vips, k, compareVIPToKey)
			for ; i < len(vips); i++ {
				if !yield(&vips[i]) {
					return
				}
			}
		}
	}
}

// Named yields the VIPs whose Key.Name is name (the IP VIPs for ""), in
// Key order. Keys sort by protocol first, so it searches once per
// protocol: the cost is the VIPs yielded, not the length of the list.
func (l VIPList) Named(name string) iter.Seq[*VIP] {
	return func(yield func(*VIP) bool) {
		for p, more := Protocol(0), true; more; {
			for v := range l.From(VIPKey{Protocol: p, Name: name}) {
				if v.Key.Protocol != p || v.Key.Name != name {
					break
				}
				if !yield(v) {
					return
				}
			}
			if p == ^Protocol(0) {
				return
			}
			// Skip to the next protocol.
			more = false
			for v := range l.From(VIPKey{Protocol: p + 1}) {
				p, more = v.Key.Protocol, true
				break
			}
		}
	}
}

// Slice returns the VIPs in a new slice.
func (l VIPList) Slice() []VIP {
	out := make([]VIP, 0, l.Len())
	for c := range l.chunks {
		out = append(out, l.chunks[c].vips...)
	}
	return out
}

// Get returns the VIP with key k.
func (l VIPList) Get(k VIPKey) (*VIP, bool) {
	c := l.chunkFor(k)
	if c == len(l.chunks) {
		return nil, false
	}
	vips := l.chunks[c].vips
	i, ok := slices.BinarySearchFunc(vips, k, compareVIPToKey)
	if !ok {
		return nil, false
	}
	return &vips[i], true
}

// chunkFor returns the index of the first chunk whose last key is ≥ k
// (len(l.chunks) if none).
func (l VIPList) chunkFor(k VIPKey) int {
	c, _ := slices.BinarySearchFunc(l.chunks, k, func(c vipChunk, k VIPKey) int {
		return compareKey(c.vips[len(c.vips)-1].Key, k)
	})
	return c
}

// same reports whether l and o are the same version (not merely equal).
func (l VIPList) same(o VIPList) bool {
	return len(l.chunks) == len(o.chunks) && (len(l.chunks) == 0 || &l.chunks[0] == &o.chunks[0])
}

// equal reports whether l and o hold equal VIPs.
func (l VIPList) equal(o VIPList) bool {
	if l.same(o) {
		return true
	}
	if l.Len() != o.Len() {
		return false
	}
	next, stop := iter.Pull(o.All())
	defer stop()
	for v := range l.All() {
		w, _ := next()
		if !sameVIP(*v, *w) {
			return false
		}
	}
	return true
}

// edit returns l with the VIPs of keys (sorted by Key, no duplicates)
// recomputed by fn: fn gets each key's current VIP (nil if none) and
// returns the new one and whether there is one. A VIP that comes out
// sameVIP as before is kept as it was; changed, if not nil, is called with
// the key of every VIP added, changed or removed. Chunks without keys are
// shared with l; when nothing changed, edit returns l itself and false.
func (l VIPList) edit(keys []VIPKey, fn func(k VIPKey, old *VIP) (VIP, bool), changed func(VIPKey)) (VIPList, bool) {
	if len(keys) == 0 {
		return l, false
	}
	out := make([]vipChunk, 0, len(l.chunks)+1)
	anyMoved := false
	for c := range max(len(l.chunks), 1) {
		// The keys that fall in chunk c: those up to its last key, and,
		// for the last chunk (or an empty list), every key left.
		var old []VIP
		n := len(keys)
		if c < len(l.chunks) {
			old = l.chunks[c].vips
			if c < len(l.chunks)-1 {
				last := old[len(old)-1].Key
				n, _ = slices.BinarySearchFunc(keys, last, compareKey)
				if n < len(keys) && keys[n] == last {
					n++
				}
			}
		}
		mine := keys[:n]
		keys = keys[n:]
		if len(mine) == 0 {
			out = appendShared(out, l.chunks[c])
			continue
		}
		if vips, moved := mergeChunk(old, mine, fn, changed); moved {
			anyMoved = true
			out = appendPieces(out, vips)
		} else if c < len(l.chunks) {
			out = appendShared(out, l.chunks[c])
		}
	}
	if !anyMoved {
		return l, false
	}
	return VIPList{chunks: slices.Clip(out)}, true
}

// mergeChunk returns old with keys recomputed by fn, and whether anything
// changed (if not, the returned slice is meaningless); see edit.
func mergeChunk(old []VIP, keys []VIPKey, fn func(VIPKey, *VIP) (VIP, bool), changed func(VIPKey)) ([]VIP, bool) {
	out := make([]VIP, 0, len(old)+len(keys))
	moved := false
	i := 0
	for _, k := range keys {
		for i < len(old) && compareKey(old[i].Key, k) < 0 {
			out = append(out, old[i])
			i++
		}
		var prev *VIP
		if i < len(old) && old[i].Key == k {
			prev = &old[i]
			i++
		}
		v, ok := fn(k, prev)
		switch {
		case ok && prev != nil && sameVIP(*prev, v):
			out = append(out, *prev)
			continue
		case ok:
			out = append(out, v)
		case prev == nil:
			continue // neither before nor now
		}
		moved = true
		if changed != nil {
			changed(k)
		}
	}
	out = append(out, old[i:]...)
	return out, moved
}

// appendPieces appends vips as chunks of about chunkSize VIPs; a run too
// short for a chunk of its own joins the chunk before it when that fits.
func appendPieces(chunks []vipChunk, vips []VIP) []vipChunk {
	if len(vips) == 0 {
		return chunks
	}
	if n := len(chunks); n > 0 && len(vips) < chunkSize/4 && len(chunks[n-1].vips)+len(vips) <= 2*chunkSize {
		joined := slices.Concat(chunks[n-1].vips, vips)
		return appendChunk(chunks[:n-1], slices.Clip(joined))
	}
	if len(vips) <= 2*chunkSize {
		return appendChunk(chunks, slices.Clip(vips))
	}
	pieces := (len(vips) + chunkSize - 1) / chunkSize
	for p := range pieces {
		lo, hi := p*len(vips)/pieces, (p+1)*len(vips)/pieces
		chunks = appendChunk(chunks, vips[lo:hi:hi])
	}
	return chunks
}

// compareVIPToKey orders a VIP against a key, for binary search.
func compareVIPToKey(v VIP, k VIPKey) int { return compareKey(v.Key, k) }

package cowmap

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestAgainstBuiltin runs random edits on a Map and on plain maps, keeps
// every version, and checks after each step that every version still
// holds exactly what it held when made, and that Diff between consecutive
// versions reports exactly the keys that changed.
func TestAgainstBuiltin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  int // key space
		steps int
		batch int // edits per version
	}{
		{name: "small", keys: 8, steps: 200, batch: 3},
		{name: "grows and shrinks", keys: 3000, steps: 40, batch: 300},
		{name: "few changes to many keys", keys: 8000, steps: 20, batch: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			var versions []Map[int]
			var wants []map[string]int
			cur := Map[int]{}
			want := map[string]int{}
			for step := range tc.steps {
				e := cur.Edit()
				if step == 0 {
					e = cur.EditSized(tc.keys / 2)
				}
				next := maps.Clone(want)
				n := tc.batch
				if step < 3 {
					n = tc.keys // fill up first
				}
				for range n {
					k := fmt.Sprint("k", rng.IntN(tc.keys))
					// Shrink in the second half.
					if rng.IntN(3) == 0 || step > tc.steps/2 && rng.IntN(2) == 0 {
						e.Delete(k)
						delete(next, k)
					} else {
						v := rng.IntN(4)
						e.Set(k, v)
						next[k] = v
					}
					got, ok := e.Get(k)
					if w, wok := next[k]; ok != wok || got != w {
						t.Fatalf("editor Get(%s) = %d, %v; want %d, %v", k, got, ok, w, wok)
					}
				}
				if e.Len() != len(next) {
					t.Fatalf("step %d: editor Len %d, want %d", step, e.Len(), len(next))
				}
				m := e.Map()
				// The editor stays usable and never touches m.
				e.Set("after", 1)
				checkDiff(t, cur, m, want, next)
				versions = append(versions, m)
				wants = append(wants, next)
				cur, want = m, next
				// The first version and the last few must be intact.
				for i, v := range versions {
					if i == 0 || i >= len(versions)-3 {
						check(t, fmt.Sprintf("step %d version %d", step, i), v, wants[i])
					}
				}
			}
		})
	}
}

func check(t *testing.T, what string, m Map[int], want map[string]int) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("%s: Len %d, want %d", what, m.Len(), len(want))
	}
	got := maps.Collect(m.All())
	if !maps.Equal(got, want) {
		t.Fatalf("%s: All differs from the model", what)
	}
	for k, v := range want {
		if g, ok := m.Get(k); !ok || g != v {
			t.Fatalf("%s: Get(%s) = %d, %v; want %d", what, k, g, ok, v)
		}
		if g, ok := m.GetBytes([]byte(k)); !ok || g != v {
			t.Fatalf("%s: GetBytes(%s) = %d, %v; want %d", what, k, g, ok, v)
		}
	}
	if _, ok := m.Get("missing"); ok {
		t.Fatalf("%s: Get(missing) found", what)
	}
}

func checkDiff(t *testing.T, a, b Map[int], wa, wb map[string]int) {
	t.Helper()
	got := map[string]string{}
	Diff(a, b, func(x, y int) bool { return x == y }, func(k string, x int, inA bool, y int, inB bool) {
		if _, dup := got[k]; dup {
			t.Fatalf("Diff reported %s twice", k)
		}
		got[k] = fmt.Sprint(x, inA, y, inB)
	})
	want := map[string]string{}
	for k, x := range wa {
		if y, ok := wb[k]; !ok {
			want[k] = fmt.Sprint(x, true, 0, false)
		} else if x != y {
			want[k] = fmt.Sprint(x, true, y, true)
		}
	}
	for k, y := range wb {
		if _, ok := wa[k]; !ok {
			want[k] = fmt.Sprint(0, false, y, true)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("Diff: got %d keys, want %d", len(got), len(want))
	}
}

// TestEditCopiesOnlyTouchedShards: a one-key change to a large map shares
// every other shard with the version it came from.
func TestEditCopiesOnlyTouchedShards(t *testing.T) {
	e := Map[int]{}.EditSized(10000)
	for i := range 10000 {
		e.Set(fmt.Sprint(i), i)
	}
	a := e.Map()
	e2 := a.Edit()
	e2.Set("42", -1)
	b := e2.Map()
	shared, sharedPages := 0, 0
	for i := range a.dir.nshards {
		if a.dir.shard(i) == b.dir.shard(i) {
			shared++
		}
	}
	for i := range a.dir.pages {
		if a.dir.pages[i] == b.dir.pages[i] {
			sharedPages++
		}
	}
	if n := a.dir.nshards; shared != n-1 {
		t.Errorf("%d of %d shards shared, want %d", shared, n, n-1)
	}
	if n := len(a.dir.pages); n < 2 || sharedPages != n-1 {
		t.Errorf("%d of %d pages shared, want %d (and more than one page)", sharedPages, n, n-1)
	}
	if v, _ := a.Get("42"); v != 42 {
		t.Errorf("old version changed: 42 → %d", v)
	}
}

func TestZeroMap(t *testing.T) {
	var m Map[string]
	if _, ok := m.Get("x"); ok || m.Len() != 0 {
		t.Error("zero Map is not empty")
	}
	if _, ok := m.GetBytes([]byte("x")); ok {
		t.Error("zero Map GetBytes found")
	}
	for range m.All() {
		t.Error("zero Map yields")
	}
	Diff(m, m, func(x, y string) bool { return x == y }, func(string, string, bool, string, bool) { t.Error("Diff of empty maps reports") })
}

func BenchmarkEditOneOf10k(b *testing.B) {
	e := Map[int]{}.EditSized(10000)
	for i := range 10000 {
		e.Set(fmt.Sprint(i), i)
	}
	m := e.Map()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := m.Edit()
		e.Set("42", i)
		m = e.Map()
	}
}

func BenchmarkGetBytes(b *testing.B) {
	e := Map[int]{}.EditSized(60000)
	for i := range 60000 {
		e.Set(fmt.Sprintf("\x05name%d\x08marathon\x04l4lb\x00", i), i)
	}
	m := e.Map()
	k := []byte("\x05name4242\x08marathon\x04l4lb\x00")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.GetBytes(k); !ok {
			b.Fatal("missing")
		}
	}
}

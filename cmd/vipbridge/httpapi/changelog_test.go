package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

func TestChangeLogKeepsTheLast100(t *testing.T) {
	var l changeLog
	if got := l.list(); len(got) != 0 {
		t.Fatalf("empty log lists %d changes", len(got))
	}
	for i := range 150 {
		l.add(changeDoc{Generation: uint64(i)})
	}
	got := l.list()
	if len(got) != changeLogSize {
		t.Fatalf("log holds %d changes, want %d", len(got), changeLogSize)
	}
	for i, c := range got {
		if want := uint64(50 + i); c.Generation != want {
			t.Fatalf("change %d is generation %d, want %d (oldest first)", i, c.Generation, want)
		}
	}
}

// vipOf makes a named TCP VIP with backends "ip:port/weight".
func vipOf(name string, port uint16, backends ...string) discovery.VIP {
	v := discovery.VIP{Key: discovery.VIPKey{Protocol: discovery.TCP, Name: name, Port: port},
		Addr4: netip.MustParseAddr("11.0.0.1"), Apps: []string{"/" + name}}
	for _, b := range backends {
		addr, w, _ := strings.Cut(b, "/")
		var weight uint8
		if w == "1" {
			weight = 1
		}
		v.Backends = append(v.Backends, discovery.Backend{Addr: netip.MustParseAddrPort(addr), Weight: weight, TaskID: "t-" + addr, AppID: "/" + name})
	}
	return v
}

func tableOf(vips ...discovery.VIP) *discovery.Table {
	slices.SortFunc(vips, func(a, b discovery.VIP) int { return compareKeys(a.Key, b.Key) })
	return discovery.NewTable(vips, nil, func(*discovery.VIP) bool { return true })
}

func TestDiffVIPs(t *testing.T) {
	a := vipOf("a.marathon", 80, "10.0.0.1:31000/1")
	b := vipOf("b.marathon", 80, "10.0.0.2:31000/1", "10.0.0.3:31000/1")
	bDrained := vipOf("b.marathon", 80, "10.0.0.2:31000/0", "10.0.0.3:31000/1")
	c := vipOf("c.marathon", 443, "10.0.0.4:31000/1")
	tests := []struct {
		name       string
		prev, next *discovery.Table
		want       []string
	}{
		{name: "equal", prev: tableOf(a, b), next: tableOf(a, b), want: nil},
		{name: "first table", prev: nil, next: tableOf(a, b), want: []string{"added a.marathon", "added b.marathon"}},
		{name: "added", prev: tableOf(a), next: tableOf(a, c), want: []string{"added c.marathon"}},
		{name: "removed", prev: tableOf(a, b, c), next: tableOf(b), want: []string{"removed a.marathon", "removed c.marathon"}},
		{name: "weight", prev: tableOf(a, b, c), next: tableOf(a, bDrained, c), want: []string{"changed b.marathon: 10.0.0.2:31000 w=1 → 0"}},
		{name: "all gone", prev: tableOf(a, b), next: tableOf(), want: []string{"removed a.marathon", "removed b.marathon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev discovery.VIPList
			if tt.prev != nil {
				prev = tt.prev.VIPs
			}
			var got []string
			diffVIPs(prev, tt.next.VIPs, func(k discovery.VIPKey, old, cur *discovery.VIP) {
				kind, detail := describeChange(old, cur)
				s := kind + " " + k.Name
				if kind == changeChanged {
					s += ": " + detail
				}
				got = append(got, s)
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("diffVIPs = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiffVIPsMatchesMaps compares the merge walk with a diff by maps on
// random tables.
func TestDiffVIPsMatchesMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() *discovery.Table {
		var vips []discovery.VIP
		for i := range 40 {
			if rng.IntN(3) == 0 {
				continue
			}
			w := "1"
			if rng.IntN(4) == 0 {
				w = "0"
			}
			vips = append(vips, vipOf(fmt.Sprintf("app-%02d.marathon", i), 80, "10.0.0.1:31000/"+w))
		}
		return tableOf(vips...)
	}
	for range 200 {
		prev, next := random(), random()
		want := map[string]string{}
		for v := range prev.VIPs.All() {
			cur, ok := next.VIP(v.Key)
			switch {
			case !ok:
				want[v.Key.Name] = changeRemoved
			case !equalVIP(v, cur):
				want[v.Key.Name] = changeChanged
			}
		}
		for v := range next.VIPs.All() {
			if _, ok := prev.VIP(v.Key); !ok {
				want[v.Key.Name] = changeAdded
			}
		}
		got := map[string]string{}
		diffVIPs(prev.VIPs, next.VIPs, func(k discovery.VIPKey, old, cur *discovery.VIP) {
			kind, _ := describeChange(old, cur)
			if _, dup := got[k.Name]; dup {
				t.Fatalf("%s reported twice", k.Name)
			}
			got[k.Name] = kind
		})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("diffVIPs = %v, want %v", got, want)
		}
	}
}

func TestDescribeChange(t *testing.T) {
	old := vipOf("a.marathon", 80, "10.0.0.1:31000/1", "10.0.0.2:31000/1", "10.0.0.3:31000/1")
	tests := []struct {
		name string
		cur  discovery.VIP
		want string
	}{
		{name: "backend gone", cur: vipOf("a.marathon", 80, "10.0.0.1:31000/1", "10.0.0.3:31000/1"), want: "- 10.0.0.2:31000"},
		{name: "backend new", cur: vipOf("a.marathon", 80, "10.0.0.1:31000/1", "10.0.0.2:31000/1", "10.0.0.3:31000/1", "10.0.0.9:31000/1"), want: "+ 10.0.0.9:31000 w=1"},
		{name: "drained", cur: vipOf("a.marathon", 80, "10.0.0.1:31000/1", "10.0.0.2:31000/0", "10.0.0.3:31000/1"), want: "10.0.0.2:31000 w=1 → 0"},
		{name: "many", cur: vipOf("a.marathon", 80, "10.0.1.1:1/1", "10.0.1.2:1/1", "10.0.1.3:1/1"),
			want: "- 10.0.0.1:31000; - 10.0.0.2:31000; - 10.0.0.3:31000; + 10.0.1.1:1 w=1; … and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, got := describeChange(&old, &tt.cur)
			if kind != changeChanged || got != tt.want {
				t.Errorf("describeChange = %s %q, want changed %q", kind, got, tt.want)
			}
		})
	}
	moved := old
	moved.Addr4 = netip.MustParseAddr("11.0.0.2")
	if _, got := describeChange(&old, &moved); got != "address 11.0.0.1 → 11.0.0.2" {
		t.Errorf("describeChange(address moved) = %q", got)
	}
}

// BenchmarkDiffVIPs walks two tables of 10,000 VIPs. "apart": one weight
// changed, tables built apart, so no chunk is shared and every VIP is
// compared field by field (the worst case). "shared": tables that share
// their VIPs (WithAnnounced), as consecutive tables of the reconciler
// share every chunk a change did not touch: one pointer comparison a VIP.
func BenchmarkDiffVIPs(b *testing.B) {
	const n = 10_000
	vips := make([]discovery.VIP, n)
	for i := range vips {
		vips[i] = vipOf(fmt.Sprintf("app-%05d.marathon", i), 80, "10.0.0.1:31000/1", "10.0.0.2:31000/1")
	}
	prev := tableOf(slices.Clone(vips)...)
	vips[n/2] = vipOf(fmt.Sprintf("app-%05d.marathon", n/2), 80, "10.0.0.1:31000/0", "10.0.0.2:31000/1")
	apart := tableOf(vips...)
	shared := prev.WithAnnounced(func(*discovery.VIP) bool { return false })
	for _, bm := range []struct {
		name string
		next *discovery.Table
		want int
	}{{"apart", apart, 1}, {"shared", shared, 0}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				changed := 0
				diffVIPs(prev.VIPs, bm.next.VIPs, func(discovery.VIPKey, *discovery.VIP, *discovery.VIP) { changed++ })
				if changed != bm.want {
					b.Fatalf("%d changes, want %d", changed, bm.want)
				}
			}
		})
	}
}

// BenchmarkFeedStep is one step of the Feed at 10,000 VIPs with one
// weight changed and a client subscribed: diff, render, change log, event.
func BenchmarkFeedStep(b *testing.B) {
	const n = 10_000
	vips := make([]discovery.VIP, n)
	for i := range vips {
		vips[i] = vipOf(fmt.Sprintf("app-%05d.marathon", i), 80, "10.0.0.1:31000/1", "10.0.0.2:31000/1")
	}
	even := tableOf(slices.Clone(vips)...)
	vips[n/2] = vipOf(fmt.Sprintf("app-%05d.marathon", n/2), 80, "10.0.0.1:31000/0", "10.0.0.2:31000/1")
	odd := tableOf(vips...)
	tables := &fakeTables{t: even}
	f := newFeed(b, FeedConfig{Tables: tables, ClientQueue: 1})
	f.step(time.Now())
	c, _, _, _ := f.subscribe()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tables.mu.Lock()
		tables.t = [2]*discovery.Table{even, odd}[i%2]
		tables.mu.Unlock()
		f.step(time.Now())
		<-c.events
	}
}

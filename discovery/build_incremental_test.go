package discovery

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIncrementalMatchesBuild is the differential test of the incremental
// build: random sequences of app additions, removals, redefinitions, task
// changes and clock jumps past the allocation grace, each step built both
// incrementally and by Build from scratch (with its own allocator); the
// Tables must render equally and have equal names indexes, both as Build
// indexes them and as the reconciler announces them.
func TestIncrementalMatchesBuild(t *testing.T) {
	tests := []struct {
		name  string
		seed  uint64
		steps int
		alloc AllocConfig
	}{
		{name: "default ranges", seed: 1, steps: 400},
		{name: "default ranges, other seed", seed: 2, steps: 400},
		{name: "tiny ranges exhaust", seed: 3, steps: 300,
			alloc: AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/29"), V6: netip.MustParsePrefix("fd01:c::/125")}},
		{name: "ip vips inside the range", seed: 4, steps: 300,
			alloc: AllocConfig{V4: netip.MustParsePrefix("11.0.0.0/28")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 99))
			g := &appGen{rng: rng, v4: cmp.Or(tt.alloc.V4, defaultV4)}
			model := map[string]App{}
			inc := newIncBuilder()
			incAlloc, fullAlloc := NewAllocator(tt.alloc, nil), NewAllocator(tt.alloc, nil)
			now := t0
			var prevInc, prevFull *Table
			prevNil := &Table{} // the incremental names index as Build makes it
			for step := range tt.steps {
				changes := map[appRef]*App{}
				for range 1 + rng.IntN(4) {
					id := g.mutate(model)
					a, ok := model[id]
					if ok {
						changes[appRef{"marathon", id}] = &a
					} else {
						changes[appRef{"marathon", id}] = nil
					}
				}
				now = now.Add(time.Second)
				if rng.IntN(50) == 0 {
					now = now.Add(25 * time.Hour) // every assignment expires
				}
				expiredInc, expiredFull := incAlloc.Expire(now), fullAlloc.Expire(now)
				if !slices.Equal(expiredInc, expiredFull) {
					t.Fatalf("step %d: expired %v incrementally, %v by Build", step, expiredInc, expiredFull)
				}
				res := inc.build(changes, incAlloc, now, len(expiredInc) > 0)
				apps := slices.SortedFunc(maps.Values(model), func(x, y App) int { return strings.Compare(x.ID, y.ID) })
				full := Build(apps, fullAlloc, now)

				if got, want := res.table.String(), full.String(); got != want {
					t.Fatalf("step %d: incremental table differs from Build:\n%s", step, lineDiff(got, want))
				}
				if prevInc != nil && !prevInc.VIPs.same(res.base) {
					t.Fatalf("step %d: base is not the previous result", step)
				}
				if prevInc != nil && res.same != sameTable(prevInc, full) {
					t.Fatalf("step %d: same = %v, Build says %v", step, res.same, !res.same)
				}
				// Names as Build indexes them (every VIP with backends).
				prevNil = res.table.reindexed(prevNil, changedOrAll(res, prevInc), nil)
				if !reflect.DeepEqual(namesOf(prevNil), namesOf(full)) {
					t.Fatalf("step %d: names index differs from Build's:\n%s", step, namesDiff(namesOf(prevNil), namesOf(full)))
				}
				// Names as the reconciler announces them, and withdraws them.
				var nextInc, nextFull *Table
				if prevInc == nil {
					nextInc, nextFull = res.table.WithAnnounced(announcer(nil)), full.WithAnnounced(announcer(nil))
				} else {
					nextInc = res.table.reindexed(prevInc, res.changed, announcer(prevInc))
					nextFull = full.WithAnnounced(announcer(prevFull))
					wInc, okInc := withdrawn(prevInc, nextInc, res.changed)
					wFull, okFull := withdrawn(prevFull, nextFull, nil)
					if okInc != okFull || okInc && !reflect.DeepEqual(namesOf(wInc), namesOf(wFull)) {
						t.Fatalf("step %d: withdrawn = %v, Build's %v", step, okInc, okFull)
					}
				}
				if !reflect.DeepEqual(namesOf(nextInc), namesOf(nextFull)) {
					t.Fatalf("step %d: announced names differ:\n%s", step, namesDiff(namesOf(nextInc), namesOf(nextFull)))
				}
				prevInc, prevFull = nextInc, nextFull
			}
			if prevFull.VIPs.Len() == 0 {
				t.Error("the sequence ended with no VIPs: the generator is too weak")
			}
		})
	}
}

func changedOrAll(res incResult, prev *Table) map[string]struct{} {
	if prev != nil {
		return res.changed
	}
	all := map[string]struct{}{}
	for v := range res.table.VIPs.All() {
		all[v.Key.Name] = struct{}{}
	}
	return all
}

func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}

// namesOf is t's names index as a plain map.
func namesOf(t *Table) map[string]*NameEntry { return maps.Collect(t.NameEntries()) }

func namesDiff(got, want map[string]*NameEntry) string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[n]; !ok || !reflect.DeepEqual(got[n], w) {
			fmt.Fprintf(&b, "+ %s %+v\n", n, *got[n])
		}
	}
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[n]; !ok || !reflect.DeepEqual(g, want[n]) {
			fmt.Fprintf(&b, "- %s %+v\n", n, *want[n])
		}
	}
	return b.String()
}

// appGen makes random apps from small pools of names, spellings, agents
// and states, so that VIPs are shared, names collide, labels are bad, IP
// VIPs land in the VIP range and backends coincide.
type appGen struct {
	rng *rand.Rand
	v4  netip.Prefix
	n   int
}

var (
	genNames  = []string{"/web", "/Web", "/api", "/db.x", "/db/x", "/cache", "/cache:", "/", "/a-b"}
	genFws    = []string{"marathon", "marathon", "marathon", "hello-world", "!!!"}
	genBadVIP = []string{"/nocolon", "/x:0", "/x:70000", "[::1]:80"}
)

// mutate changes model at random and returns the ID of the app it changed.
func (g *appGen) mutate(model map[string]App) string {
	ids := slices.Sorted(maps.Keys(model))
	r := g.rng
	switch op := r.IntN(10); {
	case op < 3 || len(ids) < 3:
		g.n++
		a := g.app(fmt.Sprintf("/app%02d", r.IntN(40)))
		model[a.ID] = a
		return a.ID
	case op < 4:
		id := ids[r.IntN(len(ids))]
		delete(model, id)
		return id
	case op < 5:
		id := ids[r.IntN(len(ids))]
		a := g.app(id)
		a.Tasks = model[id].Tasks
		model[id] = a
		return id
	default: // a task changes state or health, appears or goes
		id := ids[r.IntN(len(ids))]
		a := model[id]
		a.Tasks = slices.Clone(a.Tasks)
		if len(a.Tasks) == 0 || r.IntN(4) == 0 {
			a.Tasks = append(a.Tasks, g.task(id, len(a.Tasks)))
		} else {
			i := r.IntN(len(a.Tasks))
			if r.IntN(5) == 0 {
				a.Tasks = slices.Delete(a.Tasks, i, i+1)
			} else {
				a.Tasks[i].State = TaskState(r.IntN(3))
				a.Tasks[i].Health = Health(r.IntN(3))
			}
		}
		model[id] = a
		return id
	}
}

func (g *appGen) app(id string) App {
	r := g.rng
	a := App{ID: id, Framework: genFws[r.IntN(len(genFws))], HealthChecks: r.IntN(3) == 0}
	for range 1 + r.IntN(2) {
		p := Port{Kind: PortKind(r.IntN(3)), HostPortIndex: r.IntN(2), ContainerPort: uint16(8000 + r.IntN(3)*0)}
		if r.IntN(3) == 0 {
			p.ContainerPort = 0
		}
		switch r.IntN(4) {
		case 0:
			p.Protocols = []Protocol{UDP}
		case 1:
			p.Protocols = []Protocol{TCP, UDP}
		case 2:
			p.Protocols = []Protocol{TCP}
		}
		for li := range r.IntN(3) {
			var v string
			switch r.IntN(8) {
			case 0:
				v = genBadVIP[r.IntN(len(genBadVIP))]
			case 1: // an IP VIP, often inside the VIP range
				ip := g.v4.Addr().As4()
				ip[3] += byte(r.IntN(8))
				v = fmt.Sprintf("%s:%d", netip.AddrFrom4(ip), 80+r.IntN(2))
			case 2:
				v = fmt.Sprintf("fd01:c::%d:53", r.IntN(4))
			case 3:
				v = fmt.Sprintf("%s://%s:%d", []string{"tcp", "udp"}[r.IntN(2)], genNames[r.IntN(len(genNames))], 80+r.IntN(2))
			default:
				v = fmt.Sprintf("%s:%d", genNames[r.IntN(len(genNames))], 80+r.IntN(2))
			}
			p.Labels = append(p.Labels, Label{Key: fmt.Sprintf("VIP_%d", li), Value: v})
		}
		if r.IntN(4) == 0 {
			p.Labels = append(p.Labels, Label{Key: "other", Value: "x"})
		}
		a.Ports = append(a.Ports, p)
	}
	for i := range r.IntN(4) {
		a.Tasks = append(a.Tasks, g.task(id, i))
	}
	return a
}

func (g *appGen) task(app string, i int) Task {
	r := g.rng
	t := Task{
		ID:        fmt.Sprintf("%s.t%d.%d", strings.Trim(app, "/"), i, r.IntN(1000)),
		HostPorts: []uint16{uint16(31000 + r.IntN(3)), uint16(32000 + r.IntN(3))},
		State:     TaskState(r.IntN(4)),
		Health:    Health(r.IntN(3)),
	}
	if r.IntN(5) > 0 {
		t.AgentIP = netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + r.IntN(4))})
	}
	switch r.IntN(3) {
	case 0:
		t.IPs = []netip.Addr{netip.AddrFrom4([4]byte{9, 0, 0, byte(1 + r.IntN(4))})}
	case 1:
		t.IPs = []netip.Addr{netip.AddrFrom16([16]byte{0xfd, 15: byte(1 + r.IntN(4))}), netip.AddrFrom4([4]byte{9, 0, 1, byte(r.IntN(4))})}
	}
	return t
}

// BenchmarkBuildOneUpdate10kApps compares, for one task update among
// 10,000 apps, the reference (Build, then every name indexed) with the
// reconciler's build (tableBuilder.next). BenchmarkUpdateToPublish measures
// the whole path, store and publish included.
func BenchmarkBuildOneUpdate10kApps(b *testing.B) {
	apps := benchApps(10000, 10)
	states := []TaskState{TaskKilling, TaskRunning}
	flip := func(i int) App { // a healthy task of apps[0]: its weight follows its state
		a := apps[0]
		a.Tasks = slices.Clone(a.Tasks)
		a.Tasks[1].State = states[i%2]
		return a
	}
	b.Run("full", func(b *testing.B) {
		apps := slices.Clone(apps)
		alloc := NewAllocator(AllocConfig{}, nil)
		prev := Build(apps, alloc, t0).WithAnnounced(announcer(nil))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			apps[0] = flip(i)
			prev = Build(apps, alloc, t0).WithAnnounced(announcer(prev))
		}
	})
	b.Run("incremental", func(b *testing.B) {
		tables := newTableBuilder(AllocConfig{}, NamesConfig{}, nil)
		all := make(map[appRef]*App, len(apps))
		for i := range apps {
			all[appRef{marathonSource, apps[i].ID}] = &apps[i]
		}
		prev := tables.next(all, nil, nil, t0, true).next
		if step := tables.next(nil, nil, prev, t0, false); step.next != nil { // the first expiry, out of the loop
			prev = step.next
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a := flip(i)
			prev = tables.next(map[appRef]*App{{marathonSource, a.ID}: &a}, nil, prev, t0, false).next
		}
	})
}

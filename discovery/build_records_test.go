package discovery

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// recordsApp is a random app of source: a Marathon app with host ports, or
// (mesos) one task of another framework with DiscoveryInfo, on one of four
// agents; names collide on purpose (few app names, two frameworks).
func recordsApp(rng *rand.Rand, source string, i int) App {
	agent := rng.IntN(4)
	task := Task{
		ID:        fmt.Sprintf("t%d-%d", i, rng.IntN(1000)),
		AgentID:   fmt.Sprintf("agent-S%d", agent),
		AgentIP:   netip.AddrFrom4([4]byte{10, 0, 1, byte(agent)}),
		IPs:       []netip.Addr{netip.AddrFrom4([4]byte{9, 0, byte(i), byte(rng.IntN(200))})},
		HostPorts: []uint16{uint16(31000 + rng.IntN(100))},
		State:     []TaskState{TaskRunning, TaskRunning, TaskKilling}[rng.IntN(3)],
	}
	if source == marathonSource {
		return App{ID: fmt.Sprintf("/g%d/app%d", rng.IntN(2), i%5), Framework: "marathon", Tasks: []Task{task},
			Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP}, Name: "http"}}}
	}
	task.Name = fmt.Sprintf("node-%d", rng.IntN(3))
	task.ResourcePorts = 1
	task.Discovery = &DiscoveryInfo{Name: []string{"", "api.svc"}[rng.IntN(2)],
		Ports: []DiscoveryPort{{Number: task.HostPorts[0], Name: "api", Protocol: "tcp"}}}
	fw := []string{"hello-world", "kafka"}[rng.IntN(2)]
	return App{ID: fw + "/" + task.ID, Framework: fw, FromMesos: true, Tasks: []Task{task}}
}

func recordsCluster(rng *rand.Rand) *Cluster {
	cl := &Cluster{Leader: netip.MustParseAddrPort("10.0.0.1:5050"),
		Frameworks: []Framework{{ID: "f1", Name: "hello-world", Addr: netip.MustParseAddrPort("10.0.1.9:4000")}}}
	for a := range 4 {
		if rng.IntN(4) > 0 { // agents come and go: their tasks' names with them
			cl.Agents = append(cl.Agents, Agent{ID: fmt.Sprintf("agent-S%d", a), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(a)}), 5051)})
		}
	}
	return cl
}

// TestRecordsIncrementalEqualsWhole checks, over random changes to apps
// and clusters, that the incremental index (recordsBuilder) holds exactly
// the records and empty non-terminals of the whole build (WithRecords).
func TestRecordsIncrementalEqualsWhole(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := newRecordsBuilder(NamesConfig{})
		apps := map[appRef]*App{}
		clusters := map[string]*Cluster{}
		for step := range 60 {
			changes := map[appRef]*App{}
			var cls map[string]*Cluster
			for range 1 + rng.IntN(4) {
				source := []string{marathonSource, "mesos"}[rng.IntN(2)]
				i := rng.IntN(12)
				a := recordsApp(rng, source, i)
				ref := appRef{source, a.ID}
				if _, ok := apps[ref]; ok && rng.IntN(3) == 0 {
					delete(apps, ref)
					changes[ref] = nil
					continue
				}
				apps[ref], changes[ref] = &a, &a
			}
			if rng.IntN(5) == 0 {
				clusters["mesos"] = recordsCluster(rng)
				cls = map[string]*Cluster{"mesos": clusters["mesos"]}
			}
			b.build(changes, cls)
			got := &Table{records: b.records, nonTerminals: b.nonTerminals, tasks: b.tasks()}
			want := wholeRecords(b.cfg, apps, clusters)
			compareRecords(t, fmt.Sprintf("seed %d step %d", seed, step), got, want)
			checkOwners(t, fmt.Sprintf("seed %d step %d", seed, step), b)
		}
		if b.records.Len() == 0 || b.nonTerminals.Len() == 0 {
			t.Fatalf("seed %d: %d names, %d empty non-terminals at the end: the test tests nothing", seed, b.records.Len(), b.nonTerminals.Len())
		}
	}
}

// checkOwners checks that every interned owner counts the names it owns
// and that only owners of names are interned.
func checkOwners(t *testing.T, at string, b *recordsBuilder) {
	t.Helper()
	count := map[*ownerRef]int{}
	for _, p := range b.owners {
		count[p]++
	}
	for n, ps := range b.shared {
		if len(ps) < 2 {
			t.Fatalf("%s: shared name %v has %d owners", at, n, len(ps))
		}
		for _, p := range ps {
			count[p]++
		}
	}
	if len(count) != len(b.interned) {
		t.Fatalf("%s: %d owners own names, %d interned", at, len(count), len(b.interned))
	}
	for o, p := range b.interned {
		if p.owner != o || count[p] != p.names {
			t.Fatalf("%s: owner %+v counts %d names, owns %d", at, o, p.names, count[p])
		}
	}
}

// wholeRecords is the reference: every app's and cluster's records built
// whole.
func wholeRecords(cfg NamesConfig, apps map[appRef]*App, clusters map[string]*Cluster) *Table {
	var tasks []*TaskRecords
	var cluster []ZoneRecord
	for _, source := range slices.Sorted(maps.Keys(clusters)) {
		cluster = append(cluster, cfg.ClusterRecords(clusters[source])...)
	}
	for ref, a := range apps {
		var known func(string) bool
		if cl := clusters[ref.source]; cl != nil {
			known = func(id string) bool {
				return slices.ContainsFunc(cl.Agents, func(a Agent) bool { return a.ID == id })
			}
		}
		tasks = append(tasks, cfg.AppRecords(a, known)...)
	}
	return (&Table{}).WithRecords(tasks, cluster)
}

func compareRecords(t *testing.T, at string, got, want *Table) {
	t.Helper()
	g, w := map[RecordName]*Records{}, map[RecordName]*Records{}
	for n, r := range got.AllRecords() {
		g[n] = r
	}
	for n, r := range want.AllRecords() {
		w[n] = r
	}
	if len(w) == 0 && len(g) == 0 {
		return
	}
	for n, wr := range w {
		if gr, ok := g[n]; !ok || !equalRecords(gr, wr) {
			t.Fatalf("%s: %v %s = %+v, want %+v", at, n.Zone, n.Name, gr, wr)
		}
	}
	for n, gr := range g {
		if _, ok := w[n]; !ok {
			t.Fatalf("%s: %v %s = %+v, want no such name", at, n.Zone, n.Name, gr)
		}
	}
	if gn, wn := got.nonTerminals.Len(), want.nonTerminals.Len(); gn != wn {
		t.Fatalf("%s: %d empty non-terminals, want %d", at, gn, wn)
	}
	for k := range want.nonTerminals.All() {
		if _, ok := got.nonTerminals.Get(k); !ok {
			t.Fatalf("%s: %q is not an empty non-terminal, want one", at, k)
		}
	}
	gt, wt := enumerated(got), enumerated(want)
	if len(gt) != len(wt) {
		t.Fatalf("%s: %d tasks enumerated, want %d", at, len(gt), len(wt))
	}
	for i := range gt {
		if gt[i] != wt[i] {
			t.Fatalf("%s: task enumerated as %s, want %s", at, gt[i], wt[i])
		}
	}
}

// enumerated returns the tasks a Table enumerates, each with its records,
// sorted.
func enumerated(tb *Table) []string {
	var out []string
	for tr := range tb.Tasks() {
		out = append(out, fmt.Sprintf("%s %s %s %d %+v", tr.Framework, tr.ID, tr.Name, tr.Skipped, tr.Records))
	}
	slices.Sort(out)
	return out
}

// recordsBenchApps are apps Marathon apps of tasks running tasks each (the
// task IDs and agents the task zones name them by), one host port each.
func recordsBenchApps(apps, tasks int) map[appRef]*App {
	all := make(map[appRef]*App, apps)
	for i := range apps {
		a := App{ID: fmt.Sprintf("/app%d", i), Framework: "marathon", Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP}}}}
		for j := range tasks {
			a.Tasks = append(a.Tasks, Task{ID: fmt.Sprintf("app%d.%d", i, j), AgentID: fmt.Sprintf("a-S%d", j),
				AgentIP: netip.AddrFrom4([4]byte{10, 0, byte(j), 1}), HostPorts: []uint16{uint16(31000 + j)}, State: TaskRunning})
		}
		all[appRef{marathonSource, a.ID}] = &a
	}
	return all
}

// BenchmarkRecordsUpdate is the cost of one task's state flip in an index
// of 10,000 Marathon apps of 10 tasks (100,000 tasks).
func BenchmarkRecordsUpdate(b *testing.B) {
	b.ReportAllocs()
	rb := newRecordsBuilder(NamesConfig{})
	all := recordsBenchApps(10000, 10)
	rb.build(all, nil)
	a := *all[appRef{marathonSource, "/app7"}]
	states := [2]TaskState{TaskKilling, TaskRunning}
	for i := 0; b.Loop(); i++ {
		a.Tasks = slices.Clone(a.Tasks)
		a.Tasks[3].State = states[i%2]
		c := a
		rb.build(map[appRef]*App{{marathonSource, a.ID}: &c}, nil)
	}
}

// BenchmarkRecordsInitial is the first build of the index: 10,000 Marathon
// apps of 10 tasks (100,000 tasks), as after a start with an empty store.
func BenchmarkRecordsInitial(b *testing.B) {
	b.ReportAllocs()
	all := recordsBenchApps(10000, 10)
	for b.Loop() {
		newRecordsBuilder(NamesConfig{}).build(all, nil)
	}
}

// BenchmarkTasksEnumerate is one enumeration (Table.Tasks, /v1/enumerate)
// of 10,000 Marathon apps of 10 tasks: their records are made again.
func BenchmarkTasksEnumerate(b *testing.B) {
	b.ReportAllocs()
	rb := newRecordsBuilder(NamesConfig{})
	all := recordsBenchApps(10000, 10)
	rb.build(all, nil)
	tb := &Table{tasks: rb.tasks()}
	for b.Loop() {
		n := 0
		for range tb.Tasks() {
			n++
		}
		if n != 100000 {
			b.Fatalf("%d tasks enumerated, want 100000", n)
		}
	}
}

// TestTaskZonesFollowBigChanges: the first Table and a change of more than
// deferRecordsAbove apps publish their VIPs at once and their task zones
// in the next build (step.more), so that a restart or a first sync of a
// big cluster serves its VIP names without waiting for the task names.
func TestTaskZonesFollowBigChanges(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	app := func(i int) *App {
		a := App{ID: fmt.Sprintf("/app%d", i), Framework: "marathon",
			Ports: []Port{{Kind: PortHost, Protocols: []Protocol{TCP}, Labels: []Label{{Key: "VIP_0", Value: fmt.Sprintf("/app%d:80", i)}}}},
			Tasks: []Task{{ID: fmt.Sprintf("app%d.1", i), AgentID: "a-S1", AgentIP: netip.MustParseAddr("10.0.1.1"),
				HostPorts: []uint16{31000}, State: TaskRunning}}}
		return &a
	}
	tb := newTableBuilder(AllocConfig{}, NamesConfig{}, nil)
	first := tb.next(map[appRef]*App{{marathonSource, "/app0"}: app(0)}, nil, nil, t0, true)
	if first.next.VIPs.Len() != 1 || first.next.RecordNames() != 0 || !first.more {
		t.Fatalf("first table: %d VIPs, %d task names, more %v; want 1, 0, true", first.next.VIPs.Len(), first.next.RecordNames(), first.more)
	}
	second := tb.next(nil, nil, first.next, t0, false)
	if second.next == nil || second.next.RecordNames() == 0 || second.more {
		t.Fatalf("second build: %v, more %v; want the task names, no more", second.next, second.more)
	}
	big := map[appRef]*App{}
	for i := 1; i <= deferRecordsAbove+1; i++ {
		big[appRef{marathonSource, fmt.Sprintf("/app%d", i)}] = app(i)
	}
	third := tb.next(big, nil, second.next, t0, false)
	if _, err := third.next.Records(ZoneMesos, "app5.marathon"); err == nil || !third.more || third.next.VIPs.Len() != deferRecordsAbove+2 {
		t.Fatalf("big change: VIPs %d, app5's task name present %v, more %v; want all VIPs, no task names yet, more", third.next.VIPs.Len(), err == nil, third.more)
	}
	fourth := tb.next(nil, nil, third.next, t0, false)
	if _, err := fourth.next.Records(ZoneMesos, "app5.marathon"); err != nil || fourth.more {
		t.Fatalf("after a big change: app5's task name %v, more %v; want it, no more", err, fourth.more)
	}
}

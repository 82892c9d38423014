package dnsserver

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// richTaskTable is taskTable with the cases the fast path must get right
// besides: SRV targets with two ports each (a target's records adjacent,
// split by the turn), targets with A and AAAA, a target without records,
// an SRV record at the apex, an answer over 512 octets, the dcos zone.
func richTaskTable(tb testing.TB) *discovery.Table {
	tb.Helper()
	m := discovery.ZoneMesos
	addr := func(z discovery.RecordZone, name, ip string) discovery.ZoneRecord {
		a := netip.MustParseAddr(ip)
		typ := discovery.TypeA
		if a.Is6() {
			typ = discovery.TypeAAAA
		}
		return discovery.ZoneRecord{Zone: z, Type: typ, Name: name, Addr: a}
	}
	srv := func(z discovery.RecordZone, name, target string, port uint16) discovery.ZoneRecord {
		return discovery.ZoneRecord{Zone: z, Type: discovery.TypeSRV, Name: name, Target: target, Port: port}
	}
	var tasks []*discovery.TaskRecords
	for i := range 5 {
		canon := fmt.Sprintf("db-x%d-s%d.marathon", i, i)
		ip := fmt.Sprintf("10.0.2.%d", i+1)
		recs := []discovery.ZoneRecord{
			addr(m, "db.marathon", ip), addr(m, canon, ip), addr(m, "db.marathon.slave", ip),
			srv(m, "_db._tcp.marathon", canon, uint16(31000+i)), srv(m, "_db._tcp.marathon", canon, uint16(32000+i)),
			srv(m, "_db._udp.marathon", canon, uint16(33000+i)),
			addr(discovery.ZoneDCOS, "db.marathon.autoip", ip), addr(discovery.ZoneDCOS, "db.marathon.agentip", ip),
			addr(discovery.ZoneDCOS, "db.marathon.containerip", fmt.Sprintf("fd00::2:%d", i+1)),
		}
		if i%2 == 0 {
			recs = append(recs, addr(m, canon, fmt.Sprintf("fd00::2:%d", i+1)), addr(m, "db.marathon", fmt.Sprintf("fd00::2:%d", i+1)))
		}
		tasks = append(tasks, &discovery.TaskRecords{Framework: "marathon", Name: "db", ID: fmt.Sprintf("db.%d", i), Records: recs})
	}
	var many []discovery.ZoneRecord
	for i := range 40 {
		many = append(many, addr(m, "many.marathon", fmt.Sprintf("10.0.3.%d", i+1)))
	}
	tasks = append(tasks, &discovery.TaskRecords{Framework: "marathon", Name: "many", ID: "many.1", Records: many})
	cluster := []discovery.ZoneRecord{
		srv(m, "_apex._tcp", "", 53), srv(m, "_ghost._tcp", "ghost.marathon", 80),
		addr(m, "master", "10.0.0.1"), addr(m, "master", "10.0.0.2"), addr(m, "master", "10.0.0.3"),
		srv(m, "_leader._udp", "leader", 5050),
		addr(discovery.ZoneDCOS, "leader", "10.0.0.1"), addr(discovery.ZoneDCOS, "master", "10.0.0.1"),
	}
	base := taskTable(tb)
	var all []*discovery.TaskRecords
	for tr := range base.Tasks() {
		all = append(all, tr)
	}
	all = append(all, tasks...)
	leader := []discovery.ZoneRecord{addr(m, "leader", "10.0.0.1"), srv(m, "_leader._tcp", "leader", 5050)}
	return testTable(tb).WithRecords(all, append(cluster, leader...))
}

// taskQueryNames are the names of t's task zones the fast path must answer
// for A, AAAA and SRV (served, empty non-terminals, missing, apexes: every
// plain name, marked ANY, see fastType), in every served spelling of
// their zone, and names it may leave to the full path.
func taskQueryNames(s *Server, t *discovery.Table) (served map[string]uint16, other []string) {
	served = map[string]uint16{}
	for _, z := range s.taskZones {
		rels := []string{"nope", "nope.marathon", "_nope._tcp.marathon", "a.web.marathon", "marathon.slave", "slave", "_tcp.marathon",
			"ghost.marathon"} // an SRV target without records
		for n := range t.AllRecords() {
			if n.Zone == z.records {
				rels = append(rels, n.Name)
			}
		}
		served[z.name] = dns.TypeANY
		for _, rel := range rels {
			served[rel+z.label] = dns.TypeANY
		}
		other = append(other, `a\.b.marathon`+z.label, "x*y.marathon"+z.label, `we\009b.marathon`+z.label)
	}
	return served, other
}

func newTaskServer(tb testing.TB, tbl *discovery.Table, mesosDomain string) (*Server, *tables) {
	tb.Helper()
	tabs := newTables(tbl)
	s, err := New(Config{Tables: tabs, MesosDomain: mesosDomain})
	if err != nil {
		tb.Fatal(err)
	}
	return s, tabs
}

// TestTaskFastPathMatchesFullPath is TestFastPathMatchesFullPath for the
// task zones: every A, AAAA and SRV query of a plain task-zone name is
// answered fast, as the full path answers it from the same rotation
// count. The mesos domains cover a zone of one label, one of several, and
// one ("thisdcos.directory") that holds the VIP zones and the thisdcos
// task zones, which win as the full path has them win.
func TestTaskFastPathMatchesFullPath(t *testing.T) {
	for _, domain := range []string{"mesos", "dc1.example.org", "thisdcos.directory", ""} {
		t.Run(domain, func(t *testing.T) {
			tbl := richTaskTable(t)
			s, _ := newTaskServer(t, tbl, domain)
			served, other := taskQueryNames(s, tbl)
			vips, vipOther := servedNames(t, tbl)
			maps.Copy(served, vips)
			checkFastMatchesFull(t, s, s.buildFast(nil, tbl), served, append(other, vipOther...))
		})
	}
}

// TestTaskFastPathRotates checks that fast answers with several records
// start at each of them in turn.
func TestTaskFastPathRotates(t *testing.T) {
	tbl := richTaskTable(t)
	s, _ := newTaskServer(t, tbl, "mesos")
	f := s.buildFast(nil, tbl)
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	for _, c := range []struct {
		name  string
		qtype uint16
		n     int
	}{{"master.mesos.", dns.TypeA, 3}, {"db.marathon.mesos.", dns.TypeAAAA, 3}, {"_db._tcp.marathon.mesos.", dns.TypeSRV, 10}} {
		q, err := queryVariants[3].msg(1, c.name, c.qtype).Pack()
		if err != nil {
			t.Fatal(err)
		}
		firsts := map[string]bool{}
		for range c.n {
			r, _, _ := f.answerFast(q, out, key)
			var m dns.Msg
			if r == nil || m.Unpack(r) != nil || len(m.Answer) != c.n {
				t.Fatalf("%s: no fast reply with %d records: %v", c.name, c.n, &m)
			}
			firsts[m.Answer[0].String()] = true
		}
		if len(firsts) != c.n {
			t.Errorf("%s: %d first records over %d replies, want %d", c.name, len(firsts), c.n, c.n)
		}
	}
}

// TestTaskFastPathIncremental packs a table from the previous one's index
// where names came, went, changed records, stopped and started being empty
// non-terminals, and an SRV target changed its address: the index equals
// the one packed from nothing, and every answer the full path's.
func TestTaskFastPathIncremental(t *testing.T) {
	old := richTaskTable(t)
	s, tabs := newTaskServer(t, old, "mesos")
	before := s.buildFast(nil, old)

	m := discovery.ZoneMesos
	a := func(name, ip string) discovery.ZoneRecord {
		return discovery.ZoneRecord{Zone: m, Type: discovery.TypeA, Name: name, Addr: netip.MustParseAddr(ip)}
	}
	var tasks []*discovery.TaskRecords
	for tr := range old.Tasks() {
		switch tr.ID {
		case "web.2": // goes: web-bbbbb-s2.marathon.slave and its name go
			continue
		case "db.1": // the target db-x1-s1.marathon moves
			c := *tr
			c.Records = nil
			for _, r := range tr.Records {
				if r.Type == discovery.TypeA && r.Name == "db-x1-s1.marathon" {
					r.Addr = netip.MustParseAddr("10.9.9.9")
				}
				c.Records = append(c.Records, r)
			}
			tr = &c
		}
		tasks = append(tasks, tr)
	}
	tasks = append(tasks, &discovery.TaskRecords{Framework: "marathon", Name: "new", ID: "new.1", Records: []discovery.ZoneRecord{
		a("new.marathon", "10.0.4.1"), a("marathon.slave", "10.0.4.1"), a("x.y.z.new.marathon", "10.0.4.1"),
	}})
	cur := discovery.NewTable(nil, nil, nil).WithRecords(tasks, []discovery.ZoneRecord{a("leader", "10.0.0.7")})
	cur.Generation = old.Generation + 3
	tabs.p.Store(cur)
	after := s.buildFast(before, cur)
	fresh := s.buildFast(nil, cur)
	sameTaskIndex(t, after, fresh)
	served, other := taskQueryNames(s, cur)
	oldServed, oldOther := taskQueryNames(s, old)
	for n := range oldServed {
		if _, ok := served[n]; !ok {
			other = append(other, n)
		}
	}
	served["y.z.new.marathon.mesos."] = dns.TypeANY
	checkFastMatchesFull(t, s, after, served, append(other, oldOther...))
}

// sameTaskIndex fails unless the task-zone indexes of inc (built from a
// previous table's) and fresh (built from nothing) are equal.
func sameTaskIndex(t *testing.T, inc, fresh *fastTable) {
	t.Helper()
	same := func(a, b taskName) bool {
		return a.recs == b.recs && a.full() == b.full() && slices.Equal(a.extraAddrs(), b.extraAddrs())
	}
	for z := range taskRecordZones {
		if !maps.EqualFunc(maps.Collect(inc.tasks.names[z].All()), maps.Collect(fresh.tasks.names[z].All()), same) {
			t.Fatalf("zone %d: incremental index of %d names differs from the fresh one of %d", z, inc.tasks.names[z].Len(), fresh.tasks.names[z].Len())
		}
		if !maps.EqualFunc(maps.Collect(inc.tasks.targets[z].All()), maps.Collect(fresh.tasks.targets[z].All()), func(a, b srvNames) bool {
			return slices.Equal(a.sorted(), b.sorted())
		}) {
			t.Fatalf("zone %d: incremental targets index of %d names differs from the fresh one of %d", z, inc.tasks.targets[z].Len(), fresh.tasks.targets[z].Len())
		}
	}
}

// extraAddrs is n's additional data, nil without.
func (n taskName) extraAddrs() []byte {
	if n.x == nil {
		return nil
	}
	return n.x.extra
}

// sorted is the names of s, sorted.
func (s srvNames) sorted() []string {
	var out []string
	s.each(func(n string) { out = append(out, n) })
	slices.Sort(out)
	return out
}

// Len is the number of names in x.
func (x taskIndex) Len() int {
	n := 0
	for _, m := range x.names {
		n += m.Len()
	}
	return n
}

// targetsLen is the number of SRV targets in x.
func (x taskIndex) targetsLen() int {
	n := 0
	for _, m := range x.targets {
		n += m.Len()
	}
	return n
}

// TestTaskFastPathDoesNotAllocate: task-zone answers allocate nothing.
func TestTaskFastPathDoesNotAllocate(t *testing.T) {
	tbl := richTaskTable(t)
	s, _ := newTaskServer(t, tbl, "mesos")
	s.packFast()
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	for _, c := range []struct {
		name  string
		qtype uint16
	}{{"db.marathon.mesos.", dns.TypeA}, {"DB.marathon.mesos.", dns.TypeAAAA}, {"_db._tcp.marathon.mesos.", dns.TypeSRV},
		{"db.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA}, {"nope.marathon.mesos.", dns.TypeA}} {
		q, err := queryVariants[3].msg(1, c.name, c.qtype).Pack()
		if err != nil {
			t.Fatal(err)
		}
		serve := func() {
			if r, _, _ := s.answerFast(q, out, key); r == nil {
				t.Fatalf("%s not answered by the fast path", c.name)
			}
		}
		serve()
		if n := testing.AllocsPerRun(200, serve); n != 0 {
			t.Errorf("%s: %v allocations per query, want 0", c.name, n)
		}
	}
}

// benchTaskApps are apps × tasks Marathon apps with one host port each,
// as bench-dns's task mix (issue 10: 10,000 apps × 10 tasks); each task's
// agent address differs, so that every task name has its own record.
func benchTaskApps(apps, tasks int) []discovery.App {
	var out []discovery.App
	for i := range apps {
		a := discovery.App{ID: fmt.Sprintf("/app%05d", i), Framework: "marathon",
			Ports: []discovery.Port{{Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP}}}}
		for j := range tasks {
			a.Tasks = append(a.Tasks, discovery.Task{ID: fmt.Sprintf("app%05d.%d", i, j), AgentID: fmt.Sprintf("agent-S%d", (i*tasks+j)%1000),
				AgentIP: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j + 1)}), HostPorts: []uint16{uint16(31000 + j)},
				State: discovery.TaskRunning})
		}
		out = append(out, a)
	}
	return out
}

// benchTaskTables are the tables a Reconciler publishes for apps, then for
// apps with the address of one task changed: related tables, as the
// daemon's consecutive ones.
func benchTaskTables(tb testing.TB, apps []discovery.App) (prev, next *discovery.Table) {
	tb.Helper()
	src := &stepSource{apps: apps}
	dp := appliedTables(make(chan *discovery.Table, 4))
	r, err := discovery.NewReconciler(discovery.Config{
		Sources:   []discovery.SourceConfig{{Name: "marathon", Source: src, Interval: time.Hour}},
		Dataplane: dp,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	wait := func(ok func(*discovery.Table) bool) *discovery.Table {
		for {
			select {
			case t := <-dp:
				if ok(t) {
					return t
				}
			case <-time.After(5 * time.Minute): // bounds a failing benchmark only
				tb.Fatal("no table")
			}
		}
	}
	prev = wait(func(t *discovery.Table) bool { return t.RecordNames() > 0 })
	changed := apps[len(apps)/2]
	changed.Tasks = append([]discovery.Task(nil), changed.Tasks...)
	changed.Tasks[3].AgentIP = netip.MustParseAddr("10.255.255.1")
	apps = append(append([]discovery.App(nil), apps[:len(apps)/2]...), append([]discovery.App{changed}, apps[len(apps)/2+1:]...)...)
	src.set(apps)
	r.Resync("marathon")
	next = wait(func(t *discovery.Table) bool { return t != prev })
	return prev, next
}

// taskBench is a server packed with the task zones of 10,000 apps × 10
// tasks, and its table; built once per benchmark run.
func taskBench(b *testing.B) (*Server, *discovery.Table, *discovery.Table) {
	prev, next := benchTaskTables(b, benchTaskApps(10000, 10))
	s, _ := newTaskServer(b, next, "mesos")
	s.packFast()
	return s, prev, next
}

func benchmarkFastTask(b *testing.B, s *Server, name string, qtype uint16, edns bool) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	q, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	if r, _, _ := s.answerFast(q, out, key); r == nil {
		b.Fatalf("%s not answered by the fast path", name)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.answerFast(q, out, key)
	}
}

// BenchmarkFastTask answers A and SRV queries of the task zones at 100,000
// tasks: an app's name (10 records), a task's name, and the SRV name
// (10 records, 10 additional), in .mesos and autoip.
func BenchmarkFastTask(b *testing.B) {
	s, _, _ := taskBench(b)
	b.Run("A", func(b *testing.B) { benchmarkFastTask(b, s, "app05000.marathon.mesos.", dns.TypeA, false) })
	b.Run("A autoip", func(b *testing.B) {
		benchmarkFastTask(b, s, "app05000.marathon.autoip.dcos.thisdcos.directory.", dns.TypeA, false)
	})
	b.Run("SRV", func(b *testing.B) { benchmarkFastTask(b, s, "_app05000._tcp.marathon.mesos.", dns.TypeSRV, true) })
	b.Run("NXDOMAIN", func(b *testing.B) { benchmarkFastTask(b, s, "nope.marathon.mesos.", dns.TypeA, false) })
	// The full path's reply to the same SRV query, for comparison: unpack,
	// Answer, truncate, pack (fullUDP).
	b.Run("SRV full path", func(b *testing.B) {
		m := new(dns.Msg)
		m.SetQuestion("_app05000._tcp.marathon.mesos.", dns.TypeSRV)
		m.SetEdns0(1232, false)
		q, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			fullUDP(s, q)
		}
	})
}

// BenchmarkFastTaskRepack packs the table where one task's address
// changed from the previous table's packed replies, at 100,000 tasks: the
// cost of a change (the VIP names' and the task zones' repacking).
func BenchmarkFastTaskRepack(b *testing.B) {
	s, prev, next := taskBench(b)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h0 := heap()
	start := time.Now()
	before := s.buildFast(nil, prev)
	took := time.Since(start)
	h1 := heap()
	b.Logf("%d task-zone names, %d SRV targets: packed from nothing in %v, the fast path's index takes %.1f MB of heap; process RSS %s with two tables and two indexes",
		before.tasks.Len(), before.tasks.targetsLen(), took.Round(time.Millisecond), float64(h1-h0)/1e6, rss())
	b.ReportAllocs()
	for b.Loop() {
		s.buildFast(before, next)
	}
}

// TestTaskFastPathTargetMoves packs consecutive tables of a Reconciler
// (related, as the daemon's) where one task's address changed: its names
// change, the SRV names pointing at it do not, yet their additional
// section must carry the new address (the targets index).
func TestTaskFastPathTargetMoves(t *testing.T) {
	prev, next := benchTaskTables(t, benchTaskApps(3, 4))
	s, tabs := newTaskServer(t, prev, "mesos")
	before := s.buildFast(nil, prev)
	srvChanged := 0
	discovery.ChangedRecords(prev, next, func(n discovery.RecordName, old, cur *discovery.Records) {
		if old != nil && len(old.SRV) > 0 || cur != nil && len(cur.SRV) > 0 {
			srvChanged++
		}
	})
	tabs.p.Store(next)
	after := s.buildFast(before, next)
	sameTaskIndex(t, after, s.buildFast(nil, next))
	moved := 0
	for z := range taskRecordZones {
		for k, n := range after.tasks.names[z].All() {
			if old, ok := before.tasks.names[z].Get(k); ok && old.recs == n.recs && !slices.Equal(old.extraAddrs(), n.extraAddrs()) {
				moved++
			}
		}
	}
	if moved == 0 || srvChanged != 0 {
		t.Fatalf("%d SRV names with unchanged records got new additional data, %d SRV names changed: want some and none", moved, srvChanged)
	}
	served, other := taskQueryNames(s, next)
	checkFastMatchesFull(t, s, after, served, other)
}

// rss is the process's resident set size as /proc/self/status gives it.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestTaskFastPathTruncates: answers over the client's UDP size are cut
// by the fast path as miekg/dns cuts the full path's (the answers that
// fit, TC), rather than left to it: SRV answers of apps of ten tasks are
// over 512 octets, the size of queries without EDNS0.
func TestTaskFastPathTruncates(t *testing.T) {
	tbl := richTaskTable(t)
	s, _ := newTaskServer(t, tbl, "mesos")
	f := s.buildFast(nil, tbl)
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	for _, c := range []struct {
		name  string
		qtype uint16
		v     queryVariant
	}{
		{"many.marathon.mesos.", dns.TypeA, queryVariants[0]},
		{"many.marathon.mesos.thisdcos.directory.", dns.TypeA, queryVariants[5]},
		{"_db._tcp.marathon.mesos.thisdcos.global.", dns.TypeSRV, queryVariants[0]},
		{"_db._tcp.marathon.mesos.", dns.TypeSRV, queryVariants[2]},
	} {
		q, err := c.v.msg(7, c.name, c.qtype).Pack()
		if err != nil {
			t.Fatal(err)
		}
		rot := s.rotation.Load()
		r, _, _ := f.answerFast(q, out, key)
		var m dns.Msg
		if r == nil || m.Unpack(r) != nil || !m.Truncated {
			t.Fatalf("%s %s: no truncated fast reply: %v", c.name, c.v.name, &m)
		}
		sameReply(t, s, q, r, rot)
	}
}

// TestSRVNames adds and removes the SRV names of a target, the apex ("")
// among them, and checks that older values are never written.
func TestSRVNames(t *testing.T) {
	one := srvNames{first: ""}
	two := one.with("_a._tcp")
	three := two.with("_b._tcp")
	if !slices.Equal(one.sorted(), []string{""}) || !slices.Equal(two.sorted(), []string{"", "_a._tcp"}) ||
		!slices.Equal(three.sorted(), []string{"", "_a._tcp", "_b._tcp"}) || !three.has("") || one.has("_a._tcp") {
		t.Fatalf("with: %q %q %q", one.sorted(), two.sorted(), three.sorted())
	}
	less, left := three.without("")
	if !left || !slices.Equal(less.sorted(), []string{"_a._tcp", "_b._tcp"}) || !slices.Equal(three.sorted(), []string{"", "_a._tcp", "_b._tcp"}) {
		t.Fatalf("without the first: %q, left %v; the old value %q", less.sorted(), left, three.sorted())
	}
	less, left = three.without("_a._tcp")
	if !left || !slices.Equal(less.sorted(), []string{"", "_b._tcp"}) || !slices.Equal(three.sorted(), []string{"", "_a._tcp", "_b._tcp"}) {
		t.Fatalf("without another: %q, left %v; the old value %q", less.sorted(), left, three.sorted())
	}
	if _, left := one.without(""); left {
		t.Fatal("without the only name: some left")
	}
}

// TestDotted turns wire labels into the index's presentation names.
func TestDotted(t *testing.T) {
	for _, name := range []string{"a", "db.marathon", "_db._tcp.marathon", "x.y.z.new.marathon.slave"} {
		w, err := wireName(name + ".")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(dotted(w[:len(w)-1])); got != name {
			t.Errorf("dotted(%q) = %q, want %q", w, got, name)
		}
	}
	if got := dotted(nil); len(got) != 0 {
		t.Errorf("dotted of no labels = %q", got)
	}
}

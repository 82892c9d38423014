package dnsserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// fullUDP is what the server sends for the UDP query q without the fast
// path: miekg/dns's checks (acceptQuery, Unpack), then ServeDNS's reply
// fitted to the client's size. ok is false when it sends nothing or an
// error miekg/dns builds itself (the fast path must never answer those).
func fullUDP(s *Server, q []byte) (reply []byte, ok bool) {
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil {
		return nil, false
	}
	var h dns.Header
	h.Id, h.Bits = req.Id, binary.BigEndian.Uint16(q[2:])
	h.Qdcount, h.Ancount = uint16(len(req.Question)), uint16(len(req.Answer))
	h.Nscount, h.Arcount = uint16(len(req.Ns)), uint16(len(req.Extra))
	if acceptQuery(h) != dns.MsgAccept {
		return nil, false
	}
	m := s.Answer(req)
	m.Truncate(udpLimit(req))
	b, err := m.Pack()
	if err != nil {
		return nil, false
	}
	return b, true
}

// sameReply fails unless the fast reply, unpacked, equals the full path's.
// rot is the server's rotation count before the fast path answered: the
// full path answers from the same count, so that multi-record answers of
// the task zones are turned alike and the replies must be equal exactly.
func sameReply(t *testing.T, s *Server, q, fast []byte, rot uint64) {
	t.Helper()
	s.rotation.Store(rot)
	full, ok := fullUDP(s, q)
	if !ok {
		t.Fatalf("fast path answered a query the full path rejects: %x", q)
	}
	var fm, gm dns.Msg
	if err := fm.Unpack(fast); err != nil {
		t.Fatalf("unpack fast reply %x: %v", fast, err)
	}
	if err := gm.Unpack(full); err != nil {
		t.Fatalf("unpack full reply: %v", err)
	}
	// Rdlength depends on compression, which may differ.
	for _, m := range []*dns.Msg{&fm, &gm} {
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				rr.Header().Rdlength = 0
			}
		}
	}
	if !reflect.DeepEqual(fm, gm) {
		t.Fatalf("fast and full replies differ for %x\nfast:\n%v\nfull:\n%v", q, &fm, &gm)
	}
	// miekg/dns sends a reply uncompressed when that fits, compressed
	// otherwise; the fast path may serve only what fits, so its reply
	// must never be shorter than the full path's compressed one.
	gm.Compress = true
	if c, err := gm.Pack(); err != nil || len(fast) < len(c) {
		t.Fatalf("fast reply %d octets, full compressed %d (%v): the fast path must never compress more", len(fast), len(c), err)
	}
}

// queryVariant is one way of asking: flags and EDNS0.
type queryVariant struct {
	name     string
	rd, cd   bool
	ad       bool
	edns     uint16 // 0: no OPT
	do       bool
	version  uint8
	option   bool // an EDNS0 option (a cookie)
	fastOnly bool // the fast path must answer served names asked this way
}

var queryVariants = []queryVariant{
	{name: "plain", fastOnly: true},
	{name: "rd", rd: true, fastOnly: true},
	{name: "rd cd ad", rd: true, cd: true, ad: true, fastOnly: true},
	{name: "edns 1232", edns: 1232, fastOnly: true},
	{name: "edns 4096 do", edns: 4096, do: true, rd: true, fastOnly: true},
	{name: "edns 100", edns: 100, fastOnly: true},
	{name: "edns 600", edns: 600},
	{name: "edns version 1", edns: 1232, version: 1},
	{name: "edns cookie", edns: 1232, option: true},
}

func (v queryVariant) msg(id uint16, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData = v.rd, v.cd, v.ad
	if v.edns != 0 {
		m.SetEdns0(v.edns, v.do)
		opt := m.IsEdns0()
		opt.SetVersion(v.version)
		if v.option {
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		}
	}
	return m
}

// spellings are the ways of writing name: as is, upper case, and mixed
// (0x20 randomisation).
func spellings(name string) []string {
	mixed := []byte(name)
	for i := range mixed {
		if i%2 == 0 {
			mixed[i] = bytes.ToUpper(mixed[i : i+1])[0]
		}
	}
	return []string{name, strings.ToUpper(name), string(mixed)}
}

// served are the names a table serves (both zones), which the fast path
// must answer for A, AAAA (names) and SRV (SRV names); other are names it
// may or may not answer.
func servedNames(tb testing.TB, tbl *discovery.Table) (served map[string]uint16, other []string) {
	served = map[string]uint16{}
	seen := map[string]bool{}
	for _, v := range tbl.VIPs.Slice() {
		key := v.Key.Name
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		for _, z := range zones {
			served[key+z.label] = dns.TypeA
			served[discovery.SRVName(key, v.Key.Protocol)+z.label] = dns.TypeSRV
			other = append(other, "_"+strings.ReplaceAll(key, ".", "._udp.")+z.label)
		}
	}
	for _, z := range zones {
		other = append(other, z.name, "marathon"+z.label, "_tcp.marathon"+z.label, "nope"+z.label,
			"nope.marathon"+z.label, "a.nope.marathon"+z.label, "_nope._tcp.marathon"+z.label,
			"_foo._tcp.a.marathon"+z.label, "x-1.y_2.marathon"+z.label)
	}
	other = append(other, "example.com.", "thisdcos.directory.", ".", "l4lb.thisdcos.directory.example.")
	return served, other
}

// TestFastPathMatchesFullPath asks every served and unserved name, in
// every spelling, for many types, with every flag and EDNS0 variant, and
// checks that whatever the fast path answers is the full path's reply;
// and that it does answer the common case.
func TestFastPathMatchesFullPath(t *testing.T) {
	tbl := testTable(t)
	s := newTestServer(t, tbl)
	served, other := servedNames(t, tbl)
	checkFastMatchesFull(t, s, s.buildFast(nil, tbl), served, other)
}

// checkFastMatchesFull asks the served and other names of the server's
// current table through f, as TestFastPathMatchesFullPath describes.
func checkFastMatchesFull(t *testing.T, s *Server, f *fastTable, served map[string]uint16, other []string) {
	t.Helper()
	var names []string
	for n := range served {
		names = append(names, n)
	}
	names = append(names, other...)
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	answered, asked := 0, 0
	id := uint16(1)
	for _, name := range names {
		for _, spelt := range spellings(name) {
			for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY, dns.TypeMX, dns.TypeSOA, dns.TypeNS, dns.TypeTXT} {
				for _, v := range queryVariants {
					id += 7919
					q, err := v.msg(id, spelt, qtype).Pack()
					if err != nil {
						t.Fatal(err)
					}
					asked++
					rot := s.rotation.Load()
					reply, _, _ := f.answerFast(q, out, key)
					if reply != nil {
						answered++
						sameReply(t, s, q, reply, rot)
						continue
					}
					if want, ok := served[name]; ok && v.fastOnly && fastType(want, qtype) {
						full, _ := fullUDP(s, q)
						var m dns.Msg
						if m.Unpack(full) == nil && !m.Truncated {
							t.Errorf("fast path left %s %s (%s) to the full path", spelt, dns.TypeToString[qtype], v.name)
						}
					}
				}
			}
		}
	}
	t.Logf("fast path answered %d of %d queries", answered, asked)
}

// fastType reports whether the fast path must answer qtype for a name
// served for want: A stands for A and AAAA (the VIP names), ANY for A,
// AAAA and SRV (every plain name of the task zones, served or not).
func fastType(want, qtype uint16) bool {
	switch want {
	case dns.TypeA:
		return qtype == dns.TypeA || qtype == dns.TypeAAAA
	case dns.TypeANY:
		return qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeSRV
	}
	return qtype == want
}

// TestFastPathIncremental changes some names of the table and checks that
// the packed replies of the new table, built from the old one, reuse the
// unchanged names' replies and answer every name, changed or not, as the
// full path does from the new table: NODATA serials included.
func TestFastPathIncremental(t *testing.T) {
	alloc := discovery.NewAllocator(discovery.AllocConfig{}, nil)
	apps := testApps()
	old := discovery.Build(apps, alloc, time.Unix(1700000000, 0))
	old.Generation = testGeneration
	tabs := newTables(old)
	s, err := New(Config{Tables: tabs})
	if err != nil {
		t.Fatal(err)
	}
	before := s.buildFast(nil, old)

	tcp := discovery.TCP
	var next []discovery.App
	for _, a := range apps {
		switch a.ID {
		case "/qux": // gains an IPv4 backend: A no longer NODATA
			a.Tasks = append(a.Tasks, task("qux.2", "10.0.0.5", 31007))
		case "/dotted": // gains a port: a new SRV record
			a.Ports = append(a.Ports, vipPort(1, "a.b:8001", tcp))
			a.Tasks = []discovery.Task{task("dotted.1", "10.0.0.3", 31005, 31008)}
		case "hello-world/svc.1": // goes away
			continue
		}
		next = append(next, a)
	}
	next = append(next, manyPorts("fresh", 1, 7000))
	cur := discovery.Build(next, alloc, time.Unix(1700000001, 0))
	cur.Generation = testGeneration + 5
	tabs.p.Store(cur)
	after := s.buildFast(before, cur)

	changed := map[string]bool{"qux.marathon": true, "a.b.marathon": true, "fresh.marathon": true}
	for key, k := range after.keys.All() {
		old, ok := before.keys.Get(key)
		reused := ok && len(old.names) == len(k.names)
		for i := range k.names {
			reused = reused && old.names[i].name == k.names[i].name
		}
		if reused == changed[key] {
			t.Errorf("%s: replies reused %v, want %v", key, reused, !changed[key])
		}
	}
	if _, ok := after.keys.Get("svc.hello-world"); ok {
		t.Errorf("svc.hello-world still packed after it went")
	}
	served, other := servedNames(t, cur)
	oldServed, oldOther := servedNames(t, old)
	for n := range oldServed {
		other = append(other, n)
	}
	checkFastMatchesFull(t, s, after, served, append(other, oldOther...))
}

// TestFastPathFollowsTable checks that the server packs each new table
// and never answers from an old one.
func TestFastPathFollowsTable(t *testing.T) {
	tbl := testTable(t)
	tabs := newTables(tbl)
	s, err := New(Config{Tables: tabs})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := queryVariants[0].msg(1, "foo.marathon."+l4lb, dns.TypeA).Pack()
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	if r, _, _ := s.answerFast(q, out, key); r != nil {
		t.Fatalf("answered before the table was packed")
	}
	s.packFast()
	if r, rcode, _ := s.answerFast(q, out, key); r == nil || rcode != dns.RcodeSuccess {
		t.Fatalf("no fast answer after packing: %v %d", r, rcode)
	}
	tabs.p.Store(discovery.NewTable(nil, nil, nil))
	if r, _, _ := s.answerFast(q, out, key); r != nil {
		t.Fatalf("answered from the old table")
	}
	select {
	case <-s.rebuild:
	default:
		t.Fatalf("new table did not ask for packing")
	}
	s.packFast()
	rot := s.rotation.Load()
	r, rcode, _ := s.answerFast(q, out, key)
	if r == nil || rcode != dns.RcodeNameError {
		t.Fatalf("after the name went: reply %v rcode %d, want NXDOMAIN", r, rcode)
	}
	sameReply(t, s, q, r, rot)
}

// fastQueries are the queries of the allocation test and the benchmarks.
func fastQueries(tb testing.TB) map[string][]byte {
	tb.Helper()
	qs := map[string][]byte{}
	for _, c := range []struct {
		name, qname string
		qtype       uint16
		edns        bool
	}{
		{"A", "foo.marathon." + l4lb, dns.TypeA, false},
		{"A mixed case EDNS0", "FoO.mArAtHoN.L4lB.tHiSdCoS.DiReCtOrY.", dns.TypeA, true},
		{"AAAA", "qux.marathon." + l4lb, dns.TypeAAAA, false},
		{"SRV", "_foo._tcp.marathon." + l4lb, dns.TypeSRV, true},
		{"NXDOMAIN", "nope.marathon." + l4lb, dns.TypeA, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(c.qname, c.qtype)
		if c.edns {
			m.SetEdns0(1232, false)
		}
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		qs[c.name] = b
	}
	return qs
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, testTable(t))
	s.packFast()
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	for name, q := range fastQueries(t) {
		t.Run(name, func(t *testing.T) {
			serve := func() {
				r, rcode, qtype := s.answerFast(q, out, key)
				if r == nil {
					t.Fatalf("not answered by the fast path")
				}
				s.metrics.fast.count(rcode, qtype)
			}
			serve()
			if n := testing.AllocsPerRun(1000, serve); n != 0 {
				t.Errorf("%v allocations per query, want 0", n)
			}
		})
	}
}

func BenchmarkFastPath(b *testing.B) {
	s := newTestServer(b, testTable(b))
	s.packFast()
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	for name, q := range fastQueries(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, _, _ := s.answerFast(q, out, key); r == nil {
					b.Fatal("not answered")
				}
			}
		})
	}
}

// BenchmarkBuildFast packs the replies of a table of n names.
func BenchmarkBuildFast(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var apps []discovery.App
			for i := range n {
				name := fmt.Sprintf("app%05d", i)
				a := manyPorts(name, 1, 80)
				a.Tasks[0].AgentIP = a.Tasks[0].AgentIP.Next()
				apps = append(apps, a)
			}
			tbl := discovery.Build(apps, discovery.NewAllocator(discovery.AllocConfig{}, nil), time.Unix(1700000000, 0))
			s := newTestServer(b, tbl)
			b.ReportAllocs()
			for b.Loop() {
				s.buildFast(nil, tbl)
			}
		})
	}
}

// BenchmarkBuildFastIncremental packs the replies of a table of 10,000
// names from those of a table that differs in one name but was built
// apart from it (Build twice): the worst case, every name compared and
// the non-terminals counted again. The daemon's consecutive tables share
// their index and cost the changed names (cmd/vipbridge
// BenchmarkEventToDNS, make bench-propagation).
func BenchmarkBuildFastIncremental(b *testing.B) {
	const n = 10000
	var apps []discovery.App
	for i := range n {
		name := fmt.Sprintf("app%05d", i)
		a := manyPorts(name, 1, 80)
		a.Tasks[0].AgentIP = a.Tasks[0].AgentIP.Next()
		apps = append(apps, a)
	}
	alloc := discovery.NewAllocator(discovery.AllocConfig{}, nil)
	old := discovery.Build(apps, alloc, time.Unix(1700000000, 0))
	apps[n/2] = manyPorts("app05000", 2, 80)
	cur := discovery.Build(apps, alloc, time.Unix(1700000001, 0))
	cur.Generation = old.Generation + 1
	s := newTestServer(b, cur)
	prev := s.buildFast(nil, old)
	b.ReportAllocs()
	for b.Loop() {
		s.ents.Store(nil)
		s.buildFast(prev, cur)
	}
}

// FuzzFastPath feeds arbitrary query bytes to the fast path, VIP and task
// zones: whatever it answers must be what the full path answers.
func FuzzFastPath(f *testing.F) {
	tbl := richTaskTable(f)
	s, _ := newTaskServer(f, tbl, "mesos")
	_, other := servedNames(f, tbl)
	tasks, taskOther := taskQueryNames(s, tbl)
	other = append(other, taskOther...)
	for n := range tasks {
		other = append(other, n)
	}
	for _, name := range append(other, "foo.marathon."+l4lb, "_foo._tcp.marathon."+dclb, "QuX.marathon."+l4lb) {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV} {
			for _, v := range queryVariants {
				q, err := v.msg(42, name, qtype).Pack()
				if err != nil {
					f.Fatal(err)
				}
				f.Add(q)
			}
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	ft := s.buildFast(nil, tbl)
	out, key := make([]byte, 0, 4096), make([]byte, 0, 256)
	f.Fuzz(func(t *testing.T, q []byte) {
		rot := s.rotation.Load()
		if reply, _, _ := ft.answerFast(q, out, key); reply != nil {
			sameReply(t, s, q, reply, rot)
		}
	})
}

// TestBuildFastIncrementalMatchesFresh packs a sequence of tables whose
// names nest (a served name may be another's empty non-terminal, and
// become one when it goes), each from the previous one's replies, and
// checks that this gives what packing it from nothing gives: the same wire
// names with the same replies, the same non-terminals. The tables come
// from a real Reconciler, so that consecutive ones share most of their
// index as in the daemon (the incremental path), and from Build, so that
// none share anything (every name compared).
func TestBuildFastIncrementalMatchesFresh(t *testing.T) {
	pool := []string{"b", "a.b", "x.a.b", "y.a.b", "c", "a.c", "marathon", "tcp.b"}
	rng := rand.New(rand.NewPCG(3, 5))
	app := func(i int) discovery.App {
		a := discovery.App{ID: fmt.Sprintf("/app%d", i), Framework: "marathon"}
		protos := []discovery.Protocol{discovery.TCP}
		if rng.IntN(2) == 0 {
			protos = append(protos, discovery.UDP)
		}
		a.Ports = []discovery.Port{vipPort(0, fmt.Sprintf("/%s:%d", pool[i], 80+rng.IntN(2)), protos...)}
		a.Tasks = []discovery.Task{task(a.ID+".1", fmt.Sprintf("10.0.0.%d", 1+rng.IntN(3)), 31000)}
		return a
	}
	// Each step changes one or two apps of the pool (added, changed or
	// gone) and the port of /tick, so that every step makes a new table.
	present := map[int]discovery.App{}
	var steps [][]discovery.App
	for step := range 150 {
		for range 1 + rng.IntN(2) {
			if i := rng.IntN(len(pool)); rng.IntN(3) == 0 {
				delete(present, i)
			} else {
				present[i] = app(i)
			}
		}
		tick := discovery.App{ID: "/tick", Framework: "marathon",
			Ports: []discovery.Port{vipPort(0, fmt.Sprintf("/tick:%d", 1000+step), discovery.TCP)},
			Tasks: []discovery.Task{task("tick.1", "10.0.0.9", 31000)}}
		apps := []discovery.App{tick}
		for _, a := range present {
			apps = append(apps, a)
		}
		steps = append(steps, apps)
	}
	for _, tc := range []struct {
		name   string
		tables []*discovery.Table
	}{
		{name: "reconciled", tables: reconciledTables(t, steps)},
		{name: "built apart", tables: builtTables(steps)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tabs := newTables(nil)
			s, err := New(Config{Tables: tabs})
			if err != nil {
				t.Fatal(err)
			}
			var prev *fastTable
			reported, names := 0, 0
			for step, cur := range tc.tables {
				tabs.p.Store(cur)
				if prev != nil {
					discovery.ChangedNames(prev.table, cur, func(string, *discovery.NameEntry, *discovery.NameEntry) { reported++ })
					names += cur.Names()
				}
				inc := s.buildFast(prev, cur)
				fresh := (&Server{ttl: s.ttl, tables: tabs, log: s.log, metrics: s.metrics}).buildFast(nil, cur)
				if a, b := maps.Collect(inc.ents.names.All()), maps.Collect(fresh.ents.names.All()); !maps.Equal(a, b) {
					t.Fatalf("table %d: non-terminals %v, fresh %v", step, a, b)
				}
				sameTaskIndex(t, inc, fresh)
				if inc.names.Len() != fresh.names.Len() {
					t.Fatalf("table %d: %d wire names, fresh %d", step, inc.names.Len(), fresh.names.Len())
				}
				for w, fn := range fresh.names.All() {
					in, ok := inc.names.Get(w)
					if !ok {
						t.Fatalf("table %d: %q missing", step, w)
					}
					if (in == noReplies) != (fn == noReplies) || !sameFastName(in, fn) {
						t.Fatalf("table %d: %q has other replies than fresh", step, w)
					}
				}
				prev = inc
			}
			t.Logf("%d tables; %d of %d names reported changed between consecutive ones; %d task-zone names at the end",
				len(tc.tables), reported, names, prev.tasks.Len())
			if tc.name == "reconciled" && 2*reported > names {
				t.Errorf("consecutive reconciled tables reported %d of %d names changed: their index is not shared", reported, names)
			}
		})
	}
}

// builtTables builds each step's table with Build (one allocator).
func builtTables(steps [][]discovery.App) []*discovery.Table {
	alloc := discovery.NewAllocator(discovery.AllocConfig{}, nil)
	var out []*discovery.Table
	for i, apps := range steps {
		tb := discovery.Build(slices.Clone(apps), alloc, time.Unix(1700000000, 0))
		tb.Generation = uint64(i + 1)
		out = append(out, tb)
	}
	return out
}

// reconciledTables feeds each step's apps to a Reconciler as a snapshot of
// its only source and returns every table its dataplane got, in order,
// until one per step came.
func reconciledTables(t *testing.T, steps [][]discovery.App) []*discovery.Table {
	t.Helper()
	src := &stepSource{apps: steps[0]}
	dp := appliedTables(make(chan *discovery.Table))
	r, err := discovery.NewReconciler(discovery.Config{
		Sources:   []discovery.SourceConfig{{Name: "marathon", Source: src, Interval: time.Hour}},
		Dataplane: dp,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	var out []*discovery.Table
	for i, apps := range steps {
		if i > 0 {
			src.set(apps)
			r.Resync("marathon")
		}
		tick := fmt.Sprintf("tick.marathon:%d", 1000+i)
		for {
			var tb *discovery.Table
			select {
			case tb = <-dp:
			case <-time.After(30 * time.Second): // bounds a failing test only
				t.Fatalf("step %d: no table with %s", i, tick)
			}
			out = append(out, tb)
			if strings.Contains(tb.String(), "tcp "+tick+" ") {
				break
			}
		}
	}
	return out
}

// stepSource is a discovery.Source whose snapshot the test sets.
type stepSource struct {
	mu   sync.Mutex
	apps []discovery.App
}

func (s *stepSource) Snapshot(context.Context) (discovery.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return discovery.State{Apps: slices.Clone(s.apps)}, nil
}

func (s *stepSource) set(apps []discovery.App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps = apps
}

// appliedTables is a discovery.Dataplane that hands every table to the test.
type appliedTables chan *discovery.Table

func (a appliedTables) Apply(ctx context.Context, t *discovery.Table) error {
	select {
	case a <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sameFastName(a, b *fastName) bool {
	// The serial is written at serving time: packed bytes hold any.
	noSerial := func(r fastReply) []byte {
		b := bytes.Clone(r.b)
		if r.serialAt != 0 {
			copy(b[r.serialAt:], []byte{0, 0, 0, 0})
		}
		return b
	}
	same := func(x, y fastReply) bool { return bytes.Equal(noSerial(x), noSerial(y)) && x.serialAt == y.serialAt }
	return same(a.a, b.a) && same(a.aaaa, b.aaaa) && same(a.srv, b.srv)
}

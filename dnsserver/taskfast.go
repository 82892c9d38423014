package dnsserver

// The fast path of the task zones (taskzone.go): A, AAAA and SRV queries
// for their names answered without miekg/dns, from an index of the
// table's records by name, kept up to date per table from
// discovery.ChangedRecords. Unlike the VIP zones' replies (packed whole,
// per name and zone spelling, fastpath.go), a task-zone reply is written
// at serving time from the table's own *discovery.Records: the index
// holds one pointer per name, keyed by the name relative to its record
// zone as the table spells it (the table's own string, no copy), shared
// by the five served spellings (the mesos domain, mesos.thisdcos.directory,
// dcos.thisdcos.directory and the .global twins). The records are
// fixed-size A and AAAA records, SRV records whose target is the record's
// relative name with the zone's wire name spliced in, and the additional
// A and AAAA of each target, kept in the SRV name's entry (buildTasks
// says how they follow the targets); doc.go gives the reasons and the
// memory this costs.

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// taskRecordZones is the number of record zones: the index has a map per
// zone.
const taskRecordZones = int(discovery.ZoneDCOS) + 1

// taskIndex is the fast path's index of the task zones, per record zone:
// names maps each name (relative to the zone, lower case, the table's own
// string) to its entry, targets each SRV target to the SRV names pointing
// at it. Both are versions of the previous table's (cowmap).
type taskIndex struct {
	names   [taskRecordZones]cowmap.Map[taskName]
	targets [taskRecordZones]cowmap.Map[srvNames]
}

// taskName is the index entry of one task-zone name: its records in the
// table (noRecords for an empty non-terminal), the additional data of its
// SRV records, and the types whose records the fast path cannot write
// exactly as the full path does (left to it). It is kept to two
// pointers, being one per name: the common name has no SRV records and
// addresses the fast path writes, and no x.
type taskName struct {
	recs *discovery.Records
	x    *taskExtra // nil: no SRV records, nothing left to the full path
}

// taskExtra is the rest of a name's entry. It is replaced, never
// written: older versions of the index share it.
type taskExtra struct {
	full uint8 // fullA | fullAAAA | fullSRV
	// extra is, per record of recs.SRV, its target's first A and AAAA
	// (as the full path's additional section has them) in stride octets:
	// which it has (hasA | hasAAAA), the A's 4 octets, and the AAAA's 16
	// only if a target of the name has one (stride addrStride, else
	// addrStride4: most tasks have no IPv6 address).
	stride uint8
	extra  []byte
}

// The strides of taskExtra.extra.
const (
	addrStride4 = 1 + 4
	addrStride  = 1 + 4 + 16
)

// full is the types of n left to the full path.
func (n taskName) full() uint8 {
	if n.x == nil {
		return 0
	}
	return n.x.full
}

// srvNames are the SRV names pointing at one target: first, then the
// others (nil in the common case of one). A value in the index holds at
// least first (which may be "", the apex); values are replaced, never
// written: older versions of the index share them.
type srvNames struct {
	first string
	more  *[]string
}

// with returns s with name added after the others.
func (s srvNames) with(name string) srvNames {
	var more []string
	if s.more != nil {
		more = slices.Clip(*s.more)
	}
	more = append(more, name)
	return srvNames{first: s.first, more: &more}
}

// without returns s with name (one of its names) removed, and whether any
// name is left.
func (s srvNames) without(name string) (srvNames, bool) {
	var rest []string
	if s.more != nil {
		rest = *s.more
	}
	if s.first == name {
		if len(rest) == 0 {
			return srvNames{}, false
		}
		s.first, rest = rest[0], rest[1:]
	} else {
		rest = slices.DeleteFunc(slices.Clone(rest), func(n string) bool { return n == name })
	}
	s.more = nil
	if len(rest) > 0 {
		rest = slices.Clip(rest)
		s.more = &rest
	}
	return s, true
}

// has reports whether name is in s.
func (s srvNames) has(name string) bool {
	return s.first == name || s.more != nil && slices.Contains(*s.more, name)
}

// each calls fn with every name of s.
func (s srvNames) each(fn func(name string)) {
	fn(s.first)
	if s.more != nil {
		for _, n := range *s.more {
			fn(n)
		}
	}
}

const (
	hasA = 1 << iota
	hasAAAA
)

const (
	fullA = 1 << iota
	fullAAAA
	fullSRV
)

// noRecords is the records of an empty non-terminal: every type NODATA.
var noRecords = &discovery.Records{}

// fastTaskZone is one served task zone as the fast path answers it.
type fastTaskZone struct {
	wire     []byte // the zone's lower-case wire name
	rz       discovery.RecordZone
	ttl      [4]byte
	mesosDNS bool
	// soa is the zone's SOA for negative answers, as nxReply.soa: two
	// octets for the owner pointer, then type to rdata, serial included.
	soa []byte
}

// maxTaskSRV bounds the SRV records the fast path writes in one reply: a
// UDP reply of ednsSize octets cannot hold more (each is at least 19
// octets), so more go to the full path, which truncates.
const maxTaskSRV = 64

// writable reports whether the fast path can write name (relative to
// its record zone, lower case) as wire labels: labels of 1 to 63 octets,
// no escapes, as wireName takes them. Other names are never in the index,
// and a query could only ask them with octets that answerTask leaves to
// the full path.
func writable(name string) bool {
	if name == "" {
		return true
	}
	if len(name) > 254 || strings.IndexByte(name, '\\') >= 0 {
		return false
	}
	for l := range strings.SplitSeq(name, ".") {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
	}
	return true
}

// buildTasks returns the task-zone index of t from prev's (nil: none).
// It visits the names discovery.ChangedRecords reports and, for each, the
// names above it, whose empty non-terminal status only such a change can
// alter; then it writes the additional data of the SRV names that changed
// or point at a name that changed, found in the targets index. The cost
// of a new table is that of the names that changed and of the SRV names
// pointing at them.
//
// Why a targets index: SRV replies carry their targets' addresses, and a
// target's address may change without its SRV names changing (a task's
// address learnt late). Reading them from the index at serving time costs
// a lookup per target, each a few cache misses in a map of 300,000 names,
// which made an SRV answer of 10 targets several times dearer than its A
// answer; the targets index costs one map entry per target (the common
// target, a task's name, has one or two SRV names pointing at it) and a
// few map edits per changed name.
//
// Every key and name the index holds is the table's own string (the
// names ChangedRecords reports, their suffixes, the SRV records'
// targets): the index copies no name.
func buildTasks(prev *fastTable, t *discovery.Table) taskIndex {
	var prevTable *discovery.Table
	var names [taskRecordZones]*cowmap.Editor[taskName]
	var targets [taskRecordZones]*cowmap.Editor[srvNames]
	for z := range taskRecordZones {
		if prev != nil {
			prevTable, names[z], targets[z] = prev.table, prev.tasks.names[z].Edit(), prev.tasks.targets[z].Edit()
		} else {
			names[z] = cowmap.Map[taskName]{}.EditSized(t.RecordNames())
			targets[z] = cowmap.Map[srvNames]{}.EditSized(t.RecordNames())
		}
	}
	dirty := map[discovery.RecordName]struct{}{}
	discovery.ChangedRecords(prevTable, t, func(n discovery.RecordName, old, cur *discovery.Records) {
		if int(n.Zone) >= taskRecordZones {
			return
		}
		e, rev := names[n.Zone], targets[n.Zone]
		refreshTask(e, t, n.Zone, n.Name, true)
		suffixes(n.Name, func(above string) { refreshTask(e, t, n.Zone, above, false) })
		if !writable(n.Name) {
			return
		}
		if old != nil {
			for i, srv := range old.SRV {
				if i == 0 || srv.Target != old.SRV[i-1].Target {
					pointAt(rev, srv.Target, n.Name, false)
				}
			}
		}
		if cur != nil {
			for _, srv := range cur.SRV {
				pointAt(rev, srv.Target, n.Name, true)
			}
			if len(cur.SRV) > 0 {
				dirty[n] = struct{}{}
			}
		}
		if srvs, ok := rev.Get(n.Name); ok {
			srvs.each(func(k string) { dirty[discovery.RecordName{Zone: n.Zone, Name: k}] = struct{}{} })
		}
	})
	for k := range dirty {
		e := names[k.Zone]
		if n, ok := e.Get(k.Name); ok && len(n.recs.SRV) > 0 {
			e.Set(k.Name, withExtra(e, n))
		}
	}
	var x taskIndex
	for z := range taskRecordZones {
		x.names[z], x.targets[z] = names[z].Map(), targets[z].Map()
	}
	return x
}

// pointAt adds (or removes) the SRV name srv to the names pointing at
// target in rev.
func pointAt(rev *cowmap.Editor[srvNames], target, srv string, add bool) {
	if !writable(target) {
		return
	}
	cur, ok := rev.Get(target)
	switch {
	case add && !ok:
		rev.Set(target, srvNames{first: srv})
	case add && !cur.has(srv):
		rev.Set(target, cur.with(srv))
	case !add && ok && cur.has(srv):
		if rest, left := cur.without(srv); left {
			rev.Set(target, rest)
		} else {
			rev.Delete(target)
		}
	}
}

// withExtra returns n with the additional data of its SRV records from
// the entries of their targets in e; a target whose address the fast path
// cannot write leaves n's SRV answers to the full path.
func withExtra(e *cowmap.Editor[taskName], n taskName) taskName {
	full := n.full()&^fullSRV | indexRecords(n.recs).full()&fullSRV
	extra := make([]byte, addrStride*len(n.recs.SRV))
	has6 := false
	for i, srv := range n.recs.SRV {
		x := extra[i*addrStride : (i+1)*addrStride]
		if i > 0 && srv.Target == n.recs.SRV[i-1].Target {
			copy(x, extra[(i-1)*addrStride:])
			continue
		}
		if !writable(srv.Target) {
			continue
		}
		te, ok := e.Get(srv.Target)
		if !ok {
			continue
		}
		if len(te.recs.A) > 0 {
			if te.full()&fullA != 0 {
				full |= fullSRV
			}
			a := te.recs.A[0].As4()
			x[0] |= hasA
			copy(x[1:5], a[:])
		}
		if len(te.recs.AAAA) > 0 {
			if te.full()&fullAAAA != 0 {
				full |= fullSRV
			}
			a := te.recs.AAAA[0].As16()
			x[0] |= hasAAAA
			copy(x[5:], a[:])
			has6 = true
		}
	}
	if !has6 {
		short := make([]byte, addrStride4*len(n.recs.SRV))
		for i := range n.recs.SRV {
			copy(short[i*addrStride4:(i+1)*addrStride4], extra[i*addrStride:])
		}
		n.x = &taskExtra{full: full, stride: addrStride4, extra: short}
		return n
	}
	n.x = &taskExtra{full: full, stride: addrStride, extra: extra}
	return n
}

// refreshTask sets the entry of name from t: its records if it has some
// (only when own: a name above a changed one keeps its entry, its own
// changes being reported apart), an empty entry if it is an empty
// non-terminal, else none.
func refreshTask(e *cowmap.Editor[taskName], t *discovery.Table, rz discovery.RecordZone, name string, own bool) {
	if !writable(name) {
		return
	}
	if recs, err := t.Records(rz, name); err == nil {
		if own {
			e.Set(name, indexRecords(recs))
		}
		return
	}
	cur, had := e.Get(name)
	switch {
	case t.RecordNonTerminal(rz, name):
		if !had || cur.recs != noRecords {
			e.Set(name, taskName{recs: noRecords})
		}
	case had:
		e.Delete(name)
	}
}

// indexRecords is the entry of recs, with the types the fast path must
// leave to the full path: addresses of the other family, SRV targets it
// cannot write, SRV records not ordered by target (the additional section
// is written assuming each target's records are adjacent, as the table
// sorts them).
func indexRecords(recs *discovery.Records) taskName {
	var full uint8
	for _, a := range recs.A {
		if !a.Is4() {
			full |= fullA
		}
	}
	for _, a := range recs.AAAA {
		if !a.Is6() || a.Is4In6() {
			full |= fullAAAA
		}
	}
	sorted := slices.IsSortedFunc(recs.SRV, func(x, y discovery.SRVTarget) int { return cmp.Compare(x.Target, y.Target) })
	if !sorted || len(recs.SRV) > maxTaskSRV {
		full |= fullSRV
	}
	for _, srv := range recs.SRV {
		if !writable(srv.Target) {
			full |= fullSRV
		}
	}
	if full == 0 {
		return taskName{recs: recs}
	}
	return taskName{recs: recs, x: &taskExtra{full: full}}
}

// fastTaskZones are the served task zones of s with their negative
// answers' SOA from t.
func (s *Server) fastTaskZones(t *discovery.Table) []fastTaskZone {
	var out []fastTaskZone
	for _, z := range s.taskZones {
		w, err := wireName(z.name)
		if err != nil {
			continue // New checked the mesos domain; the others are fixed
		}
		p := &packer{buf: []byte{0xC0, 0}, flat: true}
		if err := p.rdata(s.taskSOA(t, z, z.name)); err != nil {
			continue
		}
		fz := fastTaskZone{wire: w, rz: z.records, mesosDNS: z.mesosDNS, soa: p.buf}
		binary.BigEndian.PutUint32(fz.ttl[:], z.ttl)
		out = append(out, fz)
	}
	return out
}

// vipZoneWire are the wire names of every zone the full path answers by
// the VIP rules (answerQuestion looks there first), all of three labels.
var vipZoneWire = func() (w [len(zones) + len(globalZones)][]byte) {
	for i, z := range append(zones[:len(zones):len(zones)], globalZones[:]...) {
		b, err := wireName(z.name)
		if err != nil {
			panic("dnsserver: zone " + z.name + ": " + err.Error()) // constant input
		}
		w[i] = b
	}
	return w
}()

// inVIPZone reports whether the lower-case wire name key, whose third
// label from the end starts at zoneAt, is a VIP zone or below one.
func inVIPZone(key []byte, zoneAt int) bool {
	if zoneAt < 0 {
		return false
	}
	for _, w := range vipZoneWire {
		if string(key[zoneAt:]) == string(w) {
			return true
		}
	}
	return false
}

// taskZoneOf returns the index in f.taskZones of the longest task zone the
// lower-case wire name key is in, or -1.
func (f *fastTable) taskZoneOf(key []byte) int {
	best := -1
	for i := range f.taskZones {
		w := f.taskZones[i].wire
		at := len(key) - len(w)
		if at < 0 || string(key[at:]) != string(w) || best >= 0 && len(w) <= len(f.taskZones[best].wire) {
			continue
		}
		if labelBoundary(key, at) {
			best = i
		}
	}
	return best
}

// labelBoundary reports whether a label of the wire name key starts at at.
func labelBoundary(key []byte, at int) bool {
	off := 0
	for off < at {
		off += 1 + int(key[off])
	}
	return off == at
}

// plainLabels reports whether the wire labels in rel hold only octets that
// miekg/dns presents as themselves and the naming rules give task names
// (lower-case letters, digits, '-' and '_'), so that the name dotted
// makes of them (no dot inside a label) is the one the full path looks
// up.
func plainLabels(rel []byte) bool {
	for off := 0; off < len(rel); {
		l := int(rel[off])
		for _, c := range rel[off+1 : off+1+l] {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		off += 1 + l
	}
	return true
}

// answerTask writes the reply to the query q for a task-zone name into out
// (reused) from the question on, header counts and flags included but
// not the id, RD, CD or OPT: answerFast's tail adds those. key is the
// question's lower-case wire name (its octets are overwritten), qend
// the end of the question in q and limit the room the reply may take. It
// returns nil when the full path must answer.
func (f *fastTable) answerTask(q, out, key []byte, zi int, qtype uint16, qend, limit int) []byte {
	z := &f.taskZones[zi]
	at := len(key) - len(z.wire)
	if !plainLabels(key[:at]) {
		return nil
	}
	out = append(out[:0], 0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0) // QR AA
	out = append(out, q[12:qend]...)
	if at == 0 { // the apex: SOA and NS only
		return f.taskNegative(out, z, at, dns.RcodeSuccess)
	}
	if int(z.rz) >= taskRecordZones {
		return nil
	}
	e, found := f.tasks.names[z.rz].GetBytes(dotted(key[:at]))
	if !found {
		if z.mesosDNS && qtype == dns.TypeSRV {
			// mesos-dns answers an unknown SRV name NOERROR (taskzone.go).
			return f.taskNegative(out, z, at, dns.RcodeSuccess)
		}
		return f.taskNegative(out, z, at, dns.RcodeNameError)
	}
	recs := e.recs
	switch qtype {
	case dns.TypeA:
		if e.full()&fullA != 0 {
			return nil
		}
		return f.taskAddrs(out, z, at, recs.A, dns.TypeA, 4, limit)
	case dns.TypeAAAA:
		if e.full()&fullAAAA != 0 {
			return nil
		}
		return f.taskAddrs(out, z, at, recs.AAAA, dns.TypeAAAA, 16, limit)
	case dns.TypeSRV:
		if e.full()&fullSRV != 0 {
			return nil
		}
		if len(recs.SRV) == 0 {
			return f.taskNegative(out, z, at, dns.RcodeSuccess)
		}
		if e.x == nil || e.x.stride < addrStride4 || len(e.x.extra) != int(e.x.stride)*len(recs.SRV) {
			return nil
		}
		return f.taskSRV(out, z, &e, limit)
	}
	return nil
}

// taskSRV appends the SRV records of n, turned as the full path turns
// them, and the additional section: for each distinct target, in the
// order of its first record, its first A and AAAA (n.x.extra, which
// answerTask checked), owned by a
// pointer to the target in its first record.
func (f *fastTable) taskSRV(out []byte, z *fastTaskZone, n *taskName, limit int) []byte {
	var targetAt [maxTaskSRV]uint16
	srvs := n.recs.SRV
	k := f.turn(len(srvs))
	answers := 0
	for j := range srvs {
		srv := srvs[(k+j)%len(srvs)]
		start := len(out)
		if start+12+6+wireLen(srv.Target)+len(z.wire) > limit {
			break
		}
		out = append(out, 0xC0, 12, 0, byte(dns.TypeSRV), 0, byte(dns.ClassINET))
		out = append(out, z.ttl[:]...)
		out = append(out, 0, 0, 0, 0, 0, 1, byte(srv.Port>>8), byte(srv.Port))
		targetAt[j] = uint16(len(out))
		out = appendLabels(out, srv.Target)
		out = append(out, z.wire...)
		binary.BigEndian.PutUint16(out[start+10:], uint16(len(out)-start-12))
		answers++
	}
	binary.BigEndian.PutUint16(out[6:], uint16(answers))
	if answers < len(srvs) {
		// Truncated as miekg/dns truncates: no room for the rest of the
		// answers leaves none for the additional section either.
		out[2] |= 0x02 // TC
		return out
	}
	extra := 0
	first := srvs[k].Target
	for j := range srvs {
		i := (k + j) % len(srvs)
		target := srvs[i].Target
		// Each target's records are adjacent (indexRecords), but the
		// turn may split those of the first target between the start
		// and the end.
		if j > 0 && (target == srvs[(k+j-1)%len(srvs)].Target || target == first) {
			continue
		}
		x := n.x.extra[i*int(n.x.stride):][:n.x.stride]
		if x[0]&hasA != 0 {
			if len(out)+16 > limit {
				out[2] |= 0x02 // TC: the additional records that fit, as miekg/dns
				break
			}
			out = appendAddrHeader(out, targetAt[j], dns.TypeA, z.ttl, 4)
			out = append(out, x[1:5]...)
			extra++
		}
		if x[0]&hasAAAA != 0 && len(x) == addrStride {
			if len(out)+28 > limit {
				out[2] |= 0x02
				break
			}
			out = appendAddrHeader(out, targetAt[j], dns.TypeAAAA, z.ttl, 16)
			out = append(out, x[5:addrStride]...)
			extra++
		}
	}
	binary.BigEndian.PutUint16(out[10:], uint16(extra))
	return out
}

// dotted rewrites the wire labels rel (plain labels, no root label) in
// place as the presentation name the index is keyed by, "a.b" for
// \x01a\x01b, and returns it: each label moves one octet left, over its
// length, and a dot takes the place of the next label's length.
func dotted(rel []byte) []byte {
	n := 0
	for off := 0; off < len(rel); {
		l := int(rel[off])
		if n > 0 {
			rel[n] = '.'
			n++
		}
		n += copy(rel[n:], rel[off+1:off+1+l])
		off += 1 + l
	}
	return rel[:n]
}

// taskAddrs writes the A or AAAA answers (size octets of data each) of
// addrs, turned as the full path turns them, as many as fit limit (TC set
// when some do not), or the NODATA reply when there are none.
func (f *fastTable) taskAddrs(out []byte, z *fastTaskZone, at int, addrs []netip.Addr, qtype uint16, size, limit int) []byte {
	if len(addrs) == 0 {
		return f.taskNegative(out, z, at, dns.RcodeSuccess)
	}
	k := f.turn(len(addrs))
	n := fitted(len(out), 12+size, len(addrs), limit)
	for j := range n {
		out = appendAddrHeader(out, 12, qtype, z.ttl, byte(size))
		if a := addrs[(k+j)%len(addrs)]; size == 4 {
			b := a.As4()
			out = append(out, b[:]...)
		} else {
			b := a.As16()
			out = append(out, b[:]...)
		}
	}
	binary.BigEndian.PutUint16(out[6:], uint16(n))
	if n < len(addrs) {
		out[2] |= 0x02 // TC
	}
	return out
}

// fitted is how many of n records of size octets fit after used octets in
// limit: miekg/dns's Truncate keeps the answers that fit, in order, and
// sets TC when one did not; the fast path's answer records are as long as
// miekg/dns compresses them (owner a pointer to the question, address
// records of fixed size, SRV targets never compressed).
func fitted(used, size, n, limit int) int {
	if used >= limit {
		return 0
	}
	return min(n, (limit-used)/size)
}

// wireLen is the length of the wire labels of the relative name name.
func wireLen(name string) int {
	if name == "" {
		return 0
	}
	return len(name) + 1
}

// taskNegative appends z's SOA to the authority section of out, owned by
// the apex in the question (at octets into the name), with rcode.
func (f *fastTable) taskNegative(out []byte, z *fastTaskZone, at, rcode int) []byte {
	out[3] |= byte(rcode)
	binary.BigEndian.PutUint16(out[8:], 1)
	ptr := 0xC000 | uint16(12+at)
	out = append(out, byte(ptr>>8), byte(ptr))
	return append(out, z.soa[2:]...)
}

// turn is the rotation of an answer of n records: taskzone.go's rotated
// turns by the server's count of replies, which the fast path shares.
func (f *fastTable) turn(n int) int {
	if n < 2 || f.rotation == nil {
		return 0
	}
	return int(f.rotation.Add(1) % uint64(n))
}

// appendAddrHeader appends an A or AAAA record's owner (a pointer to
// owner), type, class, TTL and rdata length.
func appendAddrHeader(out []byte, owner uint16, rrtype uint16, ttl [4]byte, rdlen byte) []byte {
	return append(out, 0xC0|byte(owner>>8), byte(owner), 0, byte(rrtype), 0, byte(dns.ClassINET),
		ttl[0], ttl[1], ttl[2], ttl[3], 0, rdlen)
}

// appendLabels appends the wire labels of the relative name name (plain
// labels, checked by indexRecords), without the root label: the name's
// octets copied after one more, each dot then overwritten with the length
// of the label after it.
func appendLabels(out []byte, name string) []byte {
	if name == "" {
		return out
	}
	lenAt := len(out)
	out = append(append(out, 0), name...)
	for i := lenAt + 1; i < len(out); i++ {
		if out[i] == '.' {
			out[lenAt] = byte(i - lenAt - 1)
			lenAt = i
		}
	}
	out[lenAt] = byte(len(out) - lenAt - 1)
	return out
}

package dnsserver

import (
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// The fast path answers the common UDP query without miekg/dns: one
// question of class IN and type A, AAAA or SRV for a name in a served zone,
// no EDNS0 or EDNS0 version 0 without options, flags a plain query may
// carry (RD, AD, CD). Its replies are packed in advance by the full path
// itself (Answer, then packReply), keyed by the lower-case wire name; each
// new table repacks only the names whose records changed (buildFast).
// Serving one copies it, patches id and flags in (and a NODATA reply's SOA
// serial, the only part that depends on the generation), copies the query's
// question bytes over the packed one (so the client's spelling comes back,
// in the question and in every owner name that points at it) and appends
// the OPT record. Missing names in a zone get one NXDOMAIN template per
// zone. The task zones' names are answered from an index of the table's
// records instead (taskfast.go). Everything else, and every reply that
// would not fit the client's UDP size, goes to the full path. fastpath_test.go checks that both paths
// give the same reply for every query the fast path answers.

// fastTable holds the packed replies of one table. Its maps are versions
// of the previous table's (cowmap), so that a new table costs the names
// that changed.
type fastTable struct {
	table  *discovery.Table
	serial uint32                // the SOA serial: the table's generation
	names  cowmap.Map[*fastName] // lower-case wire name → replies
	keys   cowmap.Map[fastKey]   // name key → its replies, for the next build
	ents   *nonTerminals         // the table's empty non-terminals
	nx     [len(zones)]nxReply
	// tasks indexes the task zones' records, taskZones are the served
	// task zones, rotation the server's count that turns multi-record
	// answers (taskfast.go).
	tasks     taskIndex
	taskZones []fastTaskZone
	rotation  *rotationCounter
}

// fastName are the packed replies for one name; a reply without bytes
// leaves the query to the full path.
type fastName struct{ a, aaaa, srv fastReply }

// fastReply is one packed reply. A reply with an SOA (NODATA) gets the
// serving table's serial written at serialAt (0: no SOA), so that the
// packed bytes do not depend on the generation and outlive the table.
type fastReply struct {
	b        []byte
	serialAt int
}

// noReplies is the entry of names that exist without fast replies: the
// apexes and the empty non-terminals.
var noReplies = &fastName{}

// fastKey are the entries one name key ("<name>.<framework>") adds to
// names, in order: its name and SRV names in every zone. They depend on
// the key's NameEntry only (see Server.resolve), so the next table's build
// reuses them while the entry stays the same.
type fastKey struct {
	entry *discovery.NameEntry
	names []fastEntry
}

type fastEntry struct {
	wire string
	rest string // the name relative to its zone, as nonTerminals has it
	name *fastName
}

// nxReply is a zone's NXDOMAIN: the header, then (after the query's
// question) the SOA whose first two octets, the owner, point at the apex
// inside the question.
type nxReply struct {
	hdr [12]byte
	soa []byte
}

// zoneWire are the zones' names in wire form, indexed like zones.
var zoneWire = func() (w [len(zones)][]byte) {
	for i, z := range zones {
		b, err := wireName(z.name)
		if err != nil {
			panic("dnsserver: zone " + z.name + ": " + err.Error()) // constant input
		}
		w[i] = b
	}
	return w
}()

// buildFast packs the replies of t from those of prev (nil: none): it
// repacks the name keys whose NameEntry differs between prev's table and t
// (discovery.ChangedNames: the cost is that of the change when the tables
// are related) and keeps every other. Only names the table serves, their
// SRV names, the empty non-terminals and the apexes get entries; the last
// two with no replies, so that they never count as missing. A served name
// wins over a non-terminal spelt the same.
func (s *Server) buildFast(prev *fastTable, t *discovery.Table) *fastTable {
	ents := s.index(t)
	var prevTable *discovery.Table
	var names *cowmap.Editor[*fastName]
	var keys *cowmap.Editor[fastKey]
	prevEnts := &nonTerminals{}
	if prev != nil {
		prevTable, prevEnts = prev.table, prev.ents
		names, keys = prev.names.Edit(), prev.keys.Edit()
	} else {
		names = cowmap.Map[*fastName]{}.EditSized(3 * t.Names() * len(zones))
		keys = cowmap.Map[fastKey]{}.EditSized(t.Names())
		for _, z := range zones {
			setWire(names, z.name, noReplies)
		}
	}
	discovery.ChangedNames(prevTable, t, func(key string, _, e *discovery.NameEntry) {
		old, had := keys.Get(key)
		if had {
			if e != nil && sameEntry(old.entry, e) {
				old.entry = e // the current table's, so that old tables can go
				keys.Set(key, old)
				return
			}
			for _, n := range old.names {
				if cur, _ := names.Get(n.wire); cur != n.name {
					continue
				}
				if ents.nonTerminal(n.rest) {
					names.Set(n.wire, noReplies)
				} else {
					names.Delete(n.wire)
				}
			}
			keys.Delete(key)
		}
		if e == nil {
			return
		}
		k := s.packKey(t, key, e)
		keys.Set(key, k)
		for _, n := range k.names {
			names.Set(n.wire, n.name)
		}
	})
	// Non-terminals that came or went.
	cowmap.Diff(prevEnts.names, ents.names, func(x, y int) bool { return true }, func(rest string, _ int, _ bool, _ int, now bool) {
		for _, z := range zones {
			w, err := wireName(rest + z.label)
			if err != nil {
				continue // the packer cannot write it: never taken for missing either
			}
			cur, ok := names.Get(string(w))
			switch {
			case now && !ok:
				names.Set(string(w), noReplies)
			case !now && ok && cur == noReplies:
				names.Delete(string(w))
			}
		}
	})
	f := &fastTable{
		table:  t,
		serial: uint32(t.Generation),
		names:  names.Map(),
		keys:   keys.Map(),
		ents:   ents,

		taskZones: s.fastTaskZones(t),
		rotation:  &s.rotation,
	}
	f.tasks = buildTasks(prev, t)
	for i, z := range zones {
		f.nx[i] = s.nxReply(t, z)
	}
	return f
}

// setWire sets the entry of name, in presentation form; names the packer
// cannot write are left out and so never taken for missing ones either:
// the fast path only answers NXDOMAIN for names of plain labels.
func setWire(names *cowmap.Editor[*fastName], name string, e *fastName) {
	if w, err := wireName(name); err == nil {
		names.Set(string(w), e)
	}
}

// sameEntry reports whether a and b serve the same records.
func sameEntry(a, b *discovery.NameEntry) bool {
	return a == b || a.Addr4 == b.Addr4 && a.Addr6 == b.Addr6 && slices.Equal(a.Ports, b.Ports)
}

// packKey packs the replies of name key, whose entry in t is e: A and
// AAAA at its name and SRV at its SRV names, in every zone.
func (s *Server) packKey(t *discovery.Table, key string, e *discovery.NameEntry) fastKey {
	k := fastKey{entry: e}
	add := func(rest string, z zone, n *fastName) {
		if w, err := wireName(rest + z.label); err == nil {
			k.names = append(k.names, fastEntry{wire: string(w), rest: rest, name: n})
		}
	}
	for _, z := range zones {
		name := key + z.label
		add(key, z, &fastName{a: s.pack(t, name, dns.TypeA), aaaa: s.pack(t, name, dns.TypeAAAA)})
		for _, proto := range []discovery.Protocol{discovery.TCP, discovery.UDP} {
			if hasProtocol(e, proto) {
				srv := discovery.SRVName(key, proto)
				add(srv, z, &fastName{srv: s.pack(t, srv+z.label, dns.TypeSRV)})
			}
		}
	}
	return k
}

// pack is the full path's reply from t to a plain query for the
// lower-case name, packed for the fast path; no bytes if the fast path
// must not serve it.
func (s *Server) pack(t *discovery.Table, name string, qtype uint16) fastReply {
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	req.RecursionDesired = false
	req.Id = 0
	m := s.answer(t, req)
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return fastReply{}
	}
	b, serialAt, err := packReply(m, name)
	if err != nil {
		return fastReply{}
	}
	return fastReply{b: b, serialAt: serialAt}
}

// nxReply builds zone z's NXDOMAIN template from the full path's SOA.
func (s *Server) nxReply(t *discovery.Table, z zone) nxReply {
	var r nxReply
	binary.BigEndian.PutUint16(r.hdr[2:], 1<<15|1<<10|dns.RcodeNameError) // QR AA NXDOMAIN
	binary.BigEndian.PutUint16(r.hdr[4:], 1)
	binary.BigEndian.PutUint16(r.hdr[8:], 1)
	// Offsets in the template are not those of the reply, so nothing in
	// it is compressed but the owner, patched in by answerFast.
	p := &packer{buf: []byte{0xC0, 0}, flat: true}
	if err := p.rdata(s.soa(t, z, z.name)); err != nil {
		panic("dnsserver: pack soa: " + err.Error()) // fixed, plain names
	}
	r.soa = p.buf
	return r
}

// answerFast returns the reply to the UDP query q in out (reused), or nil
// if the full path must answer. key is scratch space of capacity ≥ 256.
// It does not allocate.
func (f *fastTable) answerFast(q, out, key []byte) (reply []byte, rcode int, qtype uint16) {
	if len(q) < 17 || q[2]&^0x01 != 0 || q[3]&^0x30 != 0 ||
		q[4] != 0 || q[5] != 1 || q[6]|q[7]|q[8]|q[9]|q[10] != 0 || q[11] > 1 {
		return nil, 0, 0
	}
	key, zoneAt, ok := lowerName(q, key)
	if !ok {
		return nil, 0, 0
	}
	off := 12 + len(key)
	if off+4 > len(q) || q[off+2] != 0 || q[off+3] != 1 {
		return nil, 0, 0
	}
	qtype = binary.BigEndian.Uint16(q[off:])
	off += 4
	edns, do, limit := false, false, dns.MinMsgSize
	if q[11] == 1 {
		// OPT: root owner, type 41, payload size, extended rcode 0,
		// version 0, no flags but DO, no options (RFC 6891 §6.1.2).
		if off+11 != len(q) || q[off] != 0 || q[off+1] != 0 || q[off+2] != 41 ||
			q[off+5]|q[off+6]|q[off+8]|q[off+9]|q[off+10] != 0 || q[off+7]&^0x80 != 0 {
			return nil, 0, 0
		}
		edns, do = true, q[off+7] != 0
		limit = min(max(int(binary.BigEndian.Uint16(q[off+3:])), dns.MinMsgSize), ednsSize)
	} else if off != len(q) {
		return nil, 0, 0
	}
	if e, found := f.names.GetBytes(key); found {
		var r *fastReply
		switch qtype {
		case dns.TypeA:
			r = &e.a
		case dns.TypeAAAA:
			r = &e.aaaa
		case dns.TypeSRV:
			r = &e.srv
		}
		if r == nil || r.b == nil {
			return nil, 0, 0
		}
		out = append(out[:0], r.b...)
		copy(out[12:off-4], q[12:off-4])
		if r.serialAt != 0 {
			binary.BigEndian.PutUint32(out[r.serialAt:], f.serial)
		}
	} else if z := f.missing(key, zoneAt, qtype); z >= 0 {
		nx := &f.nx[z]
		out = append(out[:0], nx.hdr[:]...)
		out = append(out, q[12:off]...)
		ptr := 0xC000 | uint16(12+zoneAt)
		out = append(out, byte(ptr>>8), byte(ptr))
		out = append(out, nx.soa[2:]...)
	} else {
		zi := -1
		if !inVIPZone(key, zoneAt) && (qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeSRV) {
			zi = f.taskZoneOf(key)
		}
		if zi < 0 {
			return nil, 0, 0
		}
		room := limit
		if edns {
			room -= optLen
		}
		if out = f.answerTask(q, out, key, zi, qtype, off, room); out == nil {
			return nil, 0, 0
		}
	}
	binary.BigEndian.PutUint16(out, binary.BigEndian.Uint16(q))
	out[2] |= q[2] & 0x01 // RD
	out[3] |= q[3] & 0x10 // CD
	if edns {
		out = append(out, 0, 0, 41, ednsSize>>8, ednsSize&0xFF, 0, 0, 0, 0, 0, 0)
		if do {
			out[len(out)-4] = 0x80
		}
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	if len(out) > limit {
		return nil, 0, 0
	}
	return out, int(out[3] & 0xF), qtype
}

// optLen is the length of the OPT record the fast path appends.
const optLen = 11

// missing returns the index of the zone a name without an entry is in, if
// the full path answers it NXDOMAIN: a name below the apex whose first
// label does not start with "_" (those may be SRV names spelt another way,
// see discovery.ParseSRVName), queried for A, AAAA or SRV. It returns -1
// otherwise.
func (f *fastTable) missing(key []byte, zoneAt int, qtype uint16) int {
	if zoneAt <= 0 || key[1] == '_' || qtype != dns.TypeA && qtype != dns.TypeAAAA && qtype != dns.TypeSRV {
		return -1
	}
	for i, w := range zoneWire {
		if string(key[zoneAt:]) == string(w) {
			return i
		}
	}
	return -1
}

// lowerName reads the question name at offset 12 of q into key, ASCII
// letters lower-cased, and returns where its third label from the end
// starts (the start of a zone name of three labels; -1 for shorter names).
// It refuses compression pointers, the reserved label types and names over
// 255 octets, as miekg/dns does.
func lowerName(q, key []byte) ([]byte, int, bool) {
	key = key[:0]
	var starts [3]int
	n := 0
	for off := 12; ; {
		if off >= len(q) {
			return nil, 0, false
		}
		l := int(q[off])
		if l == 0 {
			key = append(key, 0)
			break
		}
		if l > 63 || off+1+l > len(q) || len(key)+1+l+1 > 255 {
			return nil, 0, false
		}
		starts[n%3] = len(key)
		n++
		key = append(key, byte(l))
		for _, c := range q[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			key = append(key, c)
		}
		off += 1 + l
	}
	if n < 3 {
		return key, -1, true
	}
	return key, starts[n%3], true
}

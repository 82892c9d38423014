package discovery

// Table, the immutable snapshot the reconciler publishes, its lookups, and
// the types it holds (VIPKey, VIP, Backend, LabelError, NameEntry).

import (
	"errors"
	"iter"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// Sentinel errors of lookups; dnsserver maps them to rcodes.
var (
	// ErrNotFound means no such name: NXDOMAIN.
	ErrNotFound = errors.New("name not found")
	// ErrNoData means the name exists but has no record of the asked type.
	ErrNoData = errors.New("no data for name")
)

// VIPKey identifies a VIP as users declare it: a protocol, a named or IP
// address as normalised, and a port.
type VIPKey struct {
	Protocol Protocol
	// Name is "<name>.<framework>" for named VIPs (no zone suffix), empty
	// for IP VIPs.
	Name string
	// IP is the address of an IP VIP, invalid for named VIPs.
	IP   netip.Addr
	Port uint16
}

// VIP is one virtual service as published: its addresses and backends.
type VIP struct {
	Key VIPKey
	// Labels lists the label values (as written) that declared this VIP,
	// sorted; more than one means names collided (also in Table.Errors).
	Labels []string
	// Addr4 and Addr6 are the VIP addresses: for named VIPs allocated when
	// the VIP has IPv4 resp. IPv6 backends, for IP VIPs the IP itself in
	// the matching field.
	Addr4, Addr6 netip.Addr
	// Backends are sorted by address, then port.
	Backends []Backend
	// Apps lists the app IDs declaring this VIP, sorted.
	Apps []string
}

// Backend is one real server of a VIP.
type Backend struct {
	Addr netip.AddrPort
	// Weight is 1 for a live, healthy task and 0 to drain.
	Weight uint8
	TaskID string
	AppID  string
	// Status says why the backend has its weight.
	Status BackendStatus
}

// BackendStatus says why a backend has its weight.
type BackendStatus uint8

const (
	// BackendUnknown: not said (a table from elsewhere); the weight alone
	// tells.
	BackendUnknown BackendStatus = iota
	// BackendHealthy: the task runs and its health checks pass.
	BackendHealthy
	// BackendUnchecked: the task runs and its app has no health checks.
	BackendUnchecked
	// BackendUnhealthy: a health check fails, or none has passed yet.
	BackendUnhealthy
	// BackendKilling: the task is being killed; it drains.
	BackendKilling
)

// String returns the status as the API shows it.
func (s BackendStatus) String() string {
	switch s {
	case BackendHealthy:
		return "healthy"
	case BackendUnchecked:
		return "unchecked"
	case BackendUnhealthy:
		return "unhealthy"
	case BackendKilling:
		return "killing"
	}
	return "unknown"
}

// Ready reports whether some backend takes new connections (weight > 0).
func (v *VIP) Ready() bool {
	for _, b := range v.Backends {
		if b.Weight > 0 {
			return true
		}
	}
	return false
}

// LabelError is a VIP label that could not be used, with where it was and why.
type LabelError struct {
	AppID  string `json:"app_id"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Error says which label of which app is unusable, and why.
func (e *LabelError) Error() string {
	return "label " + e.Key + "=" + quote(e.Value) + " of " + e.AppID + ": " + e.Reason
}

func quote(s string) string { return "\"" + s + "\"" }

// Table is an immutable snapshot of every VIP: what DNS answers, the HTTP
// API shows and the dataplane programs. Never mutate a published Table.
type Table struct {
	// VIPs sorted by Key (protocol, name, IP, port).
	VIPs VIPList
	// Errors are label errors and name collisions, sorted by app then key.
	Errors []LabelError
	// Generation increases with every published Table.
	Generation uint64
	// Built is when the Table was built.
	Built time.Time
	// Stale is true while some upstream is unreachable and the Table holds
	// its last known state.
	Stale bool
	// Received is when the oldest event this Table is the first to reflect
	// arrived (Update.Received), zero when it reflects none; dataplanes
	// measure event → kernel latency from it.
	Received time.Time
	// SkippedRecords counts the task-zone records the naming rules made
	// but left out because their name cannot be asked over DNS
	// (TaskRecords.Skipped).
	SkippedRecords int

	names cowmap.Map[*NameEntry] // "<name>.<framework>" → records
	// records are the task zones' names (recordKey) → records, tasks what
	// Tasks enumerates; see records.go.
	records      cowmap.Map[*Records]
	nonTerminals cowmap.Map[struct{}]
	tasks        taskIndex
}

// NameEntry is what DNS serves for one "<name>.<framework>".
type NameEntry struct {
	// Addr4 and Addr6 are the name's A and AAAA values (invalid if none).
	Addr4, Addr6 netip.Addr
	// Ports are the VIP ports per protocol, for SRV, sorted.
	Ports []PortProto
}

// PortProto is a VIP port with its protocol.
type PortProto struct {
	Protocol Protocol
	Port     uint16
}

// Lookup returns the records of name ("<name>.<framework>", lower case, no
// zone, no trailing dot), or ErrNotFound.
func (t *Table) Lookup(name string) (*NameEntry, error) {
	if t == nil {
		return nil, ErrNotFound
	}
	if e, ok := t.names.Get(name); ok {
		return e, nil
	}
	return nil, ErrNotFound
}

// Names returns how many names DNS serves.
func (t *Table) Names() int {
	if t == nil {
		return 0
	}
	return t.names.Len()
}

// NameEntries yields every name DNS serves with its records, in no
// particular order.
func (t *Table) NameEntries() iter.Seq2[string, *NameEntry] {
	if t == nil {
		return func(func(string, *NameEntry) bool) {}
	}
	return t.names.All()
}

// ChangedNames calls fn for every name whose records differ between the
// Tables prev and next (nil entry: not served). Consecutive Tables share
// most of their names index, and the parts they share are skipped, so the
// cost is that of the change rather than of the number of names; two
// unrelated Tables, or two between which the index was resized (it grew or
// shrank fourfold: rare, see cowmap), are compared name by name and every
// name is reported. An entry that was recomputed may be reported though
// its records are equal.
func ChangedNames(prev, next *Table, fn func(name string, old, cur *NameEntry)) {
	var a, b cowmap.Map[*NameEntry]
	if prev != nil {
		a = prev.names
	}
	if next != nil {
		b = next.names
	}
	cowmap.Diff(a, b, func(x, y *NameEntry) bool { return x == y }, func(name string, x *NameEntry, _ bool, y *NameEntry, _ bool) {
		fn(name, x, y)
	})
}

// VIP returns the VIP with key k.
func (t *Table) VIP(k VIPKey) (*VIP, bool) {
	if t == nil {
		return nil, false
	}
	return t.VIPs.Get(k)
}

// String renders t as sorted text, one VIP per line, then one line per
// label error; golden files compare it:
//
//	tcp foo.marathon:80 11.0.0.37 fd01:c::1 -> 10.0.0.1:31000 w=1 task=t1, 10.0.0.2:31001 w=0 task=t2
//	udp 10.0.0.1:53 -> 10.0.0.2:31002 w=1 task=t3
//	error /app VIP_0=/foo:0: port 0 out of range 1-65535
//
// Generation, Built and Stale are left out, so equal VIPs and errors render
// equally.
func (t *Table) String() string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	for v := range t.VIPs.All() {
		writeVIP(&b, v)
	}
	for _, e := range t.Errors {
		b.WriteString("error ")
		b.WriteString(e.AppID)
		b.WriteByte(' ')
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
		b.WriteString(": ")
		b.WriteString(e.Reason)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeVIP(b *strings.Builder, v *VIP) {
	b.WriteString(v.Key.Protocol.String())
	b.WriteByte(' ')
	if v.Key.IP.IsValid() {
		b.WriteString(netip.AddrPortFrom(v.Key.IP, v.Key.Port).String())
	} else {
		b.WriteString(v.Key.Name)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(v.Key.Port), 10))
		for _, a := range [...]netip.Addr{v.Addr4, v.Addr6} {
			if a.IsValid() {
				b.WriteByte(' ')
				b.WriteString(a.String())
			}
		}
	}
	b.WriteString(" ->")
	for i, be := range v.Backends {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(be.Addr.String())
		b.WriteString(" w=")
		b.WriteString(strconv.FormatUint(uint64(be.Weight), 10))
		b.WriteString(" task=")
		b.WriteString(be.TaskID)
	}
	b.WriteByte('\n')
}

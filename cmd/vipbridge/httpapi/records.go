package httpapi

import (
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// recordsDoc is the body of GET /records.
type recordsDoc struct {
	Generation uint64                 `json:"generation"`
	Stale      bool                   `json:"stale"`
	Built      time.Time              `json:"built"`
	Records    []recordDoc            `json:"records"`
	VIPs       []vipDoc               `json:"vips"`
	Errors     []discovery.LabelError `json:"errors"`
	// SkippedTaskRecords counts the task-zone records left out because
	// their name cannot be asked over DNS (a label over 63 octets, ...).
	SkippedTaskRecords int `json:"skipped_task_records"`
	// Cluster is cluster mode's state; absent in single-node mode.
	Cluster *clusterDoc `json:"cluster,omitempty"`
}

// nameDoc is the body of GET /records/{name}.
type nameDoc struct {
	Name       string      `json:"name"`
	Generation uint64      `json:"generation"`
	Stale      bool        `json:"stale"`
	Built      time.Time   `json:"built"`
	Records    []recordDoc `json:"records"`
	VIPs       []vipDoc    `json:"vips"`
}

// recordDoc is one DNS record in zone-file terms: names without the
// trailing dot, SRV values as "priority weight port target.".
type recordDoc struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	TTL   uint32 `json:"ttl"`
}

// vipDoc is one VIP with everything the table knows about it.
type vipDoc struct {
	// VIP is "<fqdn>:<port>" for named VIPs, "<ip>:<port>" for IP VIPs
	// (IPv6 unbracketed, as in labels and dcos-net).
	VIP      string             `json:"vip"`
	Protocol discovery.Protocol `json:"protocol"`
	// Name is the FQDN of a named VIP, absent for IP VIPs.
	Name string `json:"name,omitempty"`
	// Addresses are the VIP's IPv4 and IPv6 addresses.
	Addresses []string `json:"addresses"`
	// Announced says whether DNS serves this VIP's name and port; absent
	// for IP VIPs, which have no name.
	Announced *bool        `json:"announced,omitempty"`
	Apps      []string     `json:"apps"`
	Labels    []string     `json:"labels"`
	Backends  []backendDoc `json:"backends"`
	// Dataplane is the VIP's state in the kernel; absent with --lb none.
	Dataplane *dataplaneDoc `json:"dataplane,omitempty"`
}

// backendDoc is one backend of a vipDoc.
type backendDoc struct {
	IP     string `json:"ip"`
	Port   uint16 `json:"port"`
	Weight uint8  `json:"weight"`
	TaskID string `json:"task_id"`
	AppID  string `json:"app_id"`
}

// rr is one record DNS serves, before rendering in either API shape.
type rr struct {
	name string // FQDN without trailing dot
	typ  string // "A", "AAAA", "SRV"
	addr netip.Addr
	// port and target (FQDN without trailing dot) are set for SRV.
	port   uint16
	target string
	ttl    uint32
}

// records serves GET /records: every record DNS serves in every zone (the
// VIP zone, then the task zones), every VIP of the table (announced or
// not) and every label error. Only canonical names are listed, not the
// dclb alias DNS also answers.
func (a *api) records(w http.ResponseWriter, _ *http.Request) {
	t := a.table()
	doc := recordsDoc{
		Generation:         t.Generation,
		Stale:              a.stale(t),
		Built:              t.Built,
		Records:            a.renderRecords(a.allRecords(t)),
		VIPs:               make([]vipDoc, 0, t.VIPs.Len()),
		Errors:             nonNil(t.Errors),
		SkippedTaskRecords: t.SkippedRecords,
		Cluster:            a.clusterDoc(),
	}
	states := a.states()
	for v := range t.VIPs.All() {
		doc.VIPs = append(doc.VIPs, a.vipDoc(t, v, states))
	}
	writeJSON(w, http.StatusOK, doc)
}

// recordsByName serves GET /records/{name}: the records and VIPs of one
// name, given as an FQDN (trailing dot optional, dclb alias accepted) or as
// "<name>.<framework>". A name with VIPs that DNS does not serve yet is
// shown with no records; a name without VIPs is a 404.
func (a *api) recordsByName(w http.ResponseWriter, r *http.Request) {
	t := a.table()
	key, ok := a.nameKey(mux.Vars(r)["name"])
	var vips []vipDoc
	if ok {
		states := a.states()
		for v := range t.VIPs.Named(key) {
			vips = append(vips, a.vipDoc(t, v, states))
		}
	}
	e, err := t.Lookup(key)
	if !ok || (err != nil && len(vips) == 0) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no VIP of that name"})
		return
	}
	var rrs []rr
	if err == nil {
		rrs = a.nameRecords(key, e)
	}
	writeJSON(w, http.StatusOK, nameDoc{
		Name:       a.fqdn(key),
		Generation: t.Generation,
		Stale:      a.stale(t),
		Built:      t.Built,
		Records:    a.renderRecords(rrs),
		VIPs:       nonNil(vips),
	})
}

// stale reports whether the table is served from last known state.
func (a *api) stale(t *discovery.Table) bool {
	return t.Stale || a.tables.Status().Stale
}

// allRecords returns the records of every zone: the VIP zone's, then the
// task zones'.
func (a *api) allRecords(t *discovery.Table) []rr {
	return append(a.vipRecords(t), a.taskRecords(t)...)
}

// vipRecords returns the records of every announced VIP name, sorted by
// name. Names come from the VIPs; t.Lookup decides which DNS serves.
func (a *api) vipRecords(t *discovery.Table) []rr {
	var names []string
	for v := range t.VIPs.All() {
		if n := v.Key.Name; n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var out []rr
	for _, n := range names {
		if e, err := t.Lookup(n); err == nil {
			out = append(out, a.nameRecords(n, e)...)
		}
	}
	return out
}

// nameRecords returns what DNS serves for key: A, AAAA, then one SRV per
// announced port.
func (a *api) nameRecords(key string, e *discovery.NameEntry) []rr {
	fqdn := a.fqdn(key)
	var out []rr
	if e.Addr4.IsValid() {
		out = append(out, rr{name: fqdn, typ: "A", addr: e.Addr4, ttl: a.ttl})
	}
	if e.Addr6.IsValid() {
		out = append(out, rr{name: fqdn, typ: "AAAA", addr: e.Addr6, ttl: a.ttl})
	}
	for _, p := range e.Ports {
		out = append(out, rr{name: a.srvName(key, p.Protocol), typ: "SRV", port: p.Port, target: fqdn, ttl: a.ttl})
	}
	return out
}

// renderRecords renders records in the /records shape.
func (a *api) renderRecords(rrs []rr) []recordDoc {
	out := make([]recordDoc, 0, len(rrs))
	for _, r := range rrs {
		d := recordDoc{Name: r.name, Type: r.typ, TTL: r.ttl}
		if r.typ == "SRV" {
			d.Value = "0 1 " + strconv.Itoa(int(r.port)) + " " + r.target + "."
		} else {
			d.Value = r.addr.String()
		}
		out = append(out, d)
	}
	return out
}

// vipDoc renders v; t tells whether DNS announces it, states (nil without
// a dataplane) where it stands in the kernel.
func (a *api) vipDoc(t *discovery.Table, v *discovery.VIP, states map[discovery.VIPKey][]lb.ServiceState) vipDoc {
	d := vipDoc{
		Dataplane: dataplaneOf(states, v.Key, true),
		VIP:       a.vipString(v),
		Protocol:  v.Key.Protocol,
		Addresses: vipAddresses(v),
		Announced: announced(t, v),
		Apps:      nonNil(v.Apps),
		Labels:    nonNil(v.Labels),
		Backends:  make([]backendDoc, 0, len(v.Backends)),
	}
	if v.Key.Name != "" {
		d.Name = a.fqdn(v.Key.Name)
	}
	for _, b := range v.Backends {
		d.Backends = append(d.Backends, backendDoc{
			IP: b.Addr.Addr().String(), Port: b.Addr.Port(), Weight: b.Weight, TaskID: b.TaskID, AppID: b.AppID,
		})
	}
	return d
}

// vipString is "<fqdn>:<port>" or "<ip>:<port>", the form of dcos-net's
// /v1/vips; IPv6 addresses are unbracketed there (inet:ntoa), as in labels.
func (a *api) vipString(v *discovery.VIP) string {
	host := v.Key.IP.String()
	if v.Key.Name != "" {
		host = a.fqdn(v.Key.Name)
	}
	return host + ":" + strconv.Itoa(int(v.Key.Port))
}

// fqdn appends the zone to "<name>.<framework>".
func (a *api) fqdn(key string) string { return key + "." + a.zone }

// srvName is the SRV owner name of key for protocol p in the zone.
func (a *api) srvName(key string, p discovery.Protocol) string {
	return discovery.SRVName(key, p) + "." + a.zone
}

// nameKey turns an FQDN in the zone or an alias zone (trailing dot
// optional, any case) or a bare "<name>.<framework>" into the table key.
func (a *api) nameKey(s string) (string, bool) {
	if len(s) > maxNameLen {
		return "", false
	}
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	for _, z := range append([]string{a.zone}, a.aliases...) {
		if k, ok := strings.CutSuffix(s, "."+z); ok {
			s = k
			break
		}
	}
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return "", false
	}
	return s, true
}

// srvKey parses an SRV owner name (in the zone, an alias zone, or bare)
// back into the table key and protocol.
func (a *api) srvKey(s string) (string, discovery.Protocol, bool) {
	rest, ok := a.nameKey(s)
	if !ok {
		return "", 0, false
	}
	return discovery.ParseSRVName(rest)
}

// nonNil returns s, or an empty slice so that JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// vipAddresses returns v's IPv4 and IPv6 addresses, as text.
func vipAddresses(v *discovery.VIP) []string {
	out := []string{}
	for _, addr := range []netip.Addr{v.Addr4, v.Addr6} {
		if addr.IsValid() {
			out = append(out, addr.String())
		}
	}
	return out
}

// announced says whether t's DNS serves v's name and port; nil for an IP
// VIP, which has no name.
func announced(t *discovery.Table, v *discovery.VIP) *bool {
	if v.Key.Name == "" {
		return nil
	}
	e, err := t.Lookup(v.Key.Name)
	ok := err == nil && slices.Contains(e.Ports, discovery.PortProto{Protocol: v.Key.Protocol, Port: v.Key.Port})
	return &ok
}

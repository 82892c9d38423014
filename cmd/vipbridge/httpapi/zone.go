package httpapi

// GET /v1/zone: one served zone as an RFC 1035 master file, the form Knot,
// NSD and `vipbridge zone` take.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/dnsserver"
)

// v1Zone serves GET /v1/zone?zone=NAME: the records DNS serves in zone NAME
// (any case, trailing dot optional; default the VIP zone) as a master file.
// The VIP zone and its dclb alias are written by dnsserver.WriteZone, the
// task zones by writeTaskZone. An unknown zone is a 404 naming the served
// ones. The media type is RFC 4027's.
func (a *api) v1Zone(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(strings.TrimSuffix(r.URL.Query().Get("zone"), "."))
	if name == "" {
		name = a.zone
	}
	t := a.table()
	var buf bytes.Buffer
	var err error
	switch z, ok := a.findTaskZone(name); {
	case name == a.zone || slices.Contains(a.aliases, name):
		err = dnsserver.WriteZone(&buf, t, time.Duration(a.ttl)*time.Second, name)
	case ok:
		err = writeTaskZone(&buf, t, z, a.soa(t, z), a.nameServers(z))
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no zone %q; served: %s", name, strings.Join(a.zoneNames(), ", "))})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/dns")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
}

// zoneNames lists the zones /v1/zone serves.
func (a *api) zoneNames() []string {
	out := append([]string{a.zone}, a.aliases...)
	for _, z := range a.taskZones {
		out = append(out, z.origin)
	}
	return out
}

// findTaskZone returns the task zone whose origin is name.
func (a *api) findTaskZone(name string) (taskZone, bool) {
	for _, z := range a.taskZones {
		if z.origin == name {
			return z, true
		}
	}
	return taskZone{}, false
}

// nameServers returns the NS targets DNS answers for the apex of z; none
// while DNS does not serve z (writeTaskZone then uses the SOA's mname).
func (a *api) nameServers(z taskZone) []string {
	var out []string
	for _, rr := range a.ask(z.origin+".", dns.TypeNS).Answer {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, ns.Ns)
		}
	}
	return out
}

// writeTaskZone writes task zone z of t as a master file: $ORIGIN and
// $TTL, the SOA and NS records at the apex, then name by name (sorted) its
// A, AAAA and SRV records, owners relative to $ORIGIN. Names DNS cannot
// carry (a label over 63 octets, as mesos-dns's canonical names of long
// task names; over 255 octets in all; an empty label) are left out and
// counted in a closing comment, since Knot and NSD refuse the whole zone
// for one of them. Other octets are escaped as RFC 1035 §5.1 says.
func writeTaskZone(w io.Writer, t *discovery.Table, z taskZone, soa *dns.SOA, ns []string) error {
	if len(ns) == 0 {
		ns = []string{soa.Ns}
	}
	origin := z.origin + "."
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "$ORIGIN %s\n$TTL %d\n", origin, z.ttl)
	fmt.Fprintf(bw, "@\tIN\tSOA\t%s %s %d %d %d %d %d\n",
		soa.Ns, soa.Mbox, soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minttl)
	for _, n := range ns {
		fmt.Fprintf(bw, "@\tIN\tNS\t%s\n", n)
	}
	skipped := 0
	for _, n := range zoneNames(t, z.zone) {
		owner, ok := relativeName(n.name, origin)
		if !ok {
			skipped++
			continue
		}
		for _, addr := range n.recs.A {
			fmt.Fprintf(bw, "%s\tIN\tA\t%s\n", owner, addr)
		}
		for _, addr := range n.recs.AAAA {
			fmt.Fprintf(bw, "%s\tIN\tAAAA\t%s\n", owner, addr)
		}
		for _, s := range n.recs.SRV {
			target, ok := relativeName(s.Target, origin)
			if !ok {
				skipped++
				continue
			}
			fmt.Fprintf(bw, "%s\tIN\tSRV\t0 1 %d %s\n", owner, s.Port, target)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(bw, "; %d names or SRV targets left out: not valid DNS names\n", skipped)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write zone %s: %w", origin, err)
	}
	return nil
}

// relativeName writes rel (relative to origin, labels separated by dots,
// "" for the apex) in presentation form, or reports that DNS cannot carry
// it below origin.
func relativeName(rel, origin string) (string, bool) {
	if rel == "" {
		return "@", true
	}
	wire := len(origin) + 1 // origin's labels and the root
	var b strings.Builder
	for i, label := range strings.Split(rel, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		wire += len(label) + 1
		if i > 0 {
			b.WriteByte('.')
		}
		escapeLabel(&b, label)
	}
	if wire > 255 {
		return "", false
	}
	return b.String(), true
}

// escapeLabel writes label in presentation form: letters, digits, '-' and
// '_' as is, other printable octets after a backslash, the rest as \DDD.
func escapeLabel(b *strings.Builder, label string) {
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c >= ' ' && c < 0x7f:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			fmt.Fprintf(b, "\\%03d", c)
		}
	}
}

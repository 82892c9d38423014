package dnsserver

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// WriteZone writes the records DNS serves from t in zone (e.g.
// "l4lb.thisdcos.directory", the trailing dot optional) as an RFC 1035
// master file: $ORIGIN and $TTL, the SOA and NS at the apex (as Answer
// gives them: serial the table generation, minimum the TTL), then per name
// its A and AAAA and its SRV records, in the table's order. Owner names are
// relative to $ORIGIN. Knot and NSD load it as is; it is the zone the
// benchmark serves from them. ttl is rounded down to whole seconds; 0
// means 5s.
func WriteZone(w io.Writer, t *discovery.Table, ttl time.Duration, zone string) error {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	secs := uint32(ttl / time.Second)
	origin := strings.ToLower(strings.TrimSuffix(zone, ".")) + "."
	if origin == "." {
		return fmt.Errorf("write zone: empty zone name")
	}
	var serial uint32
	if t != nil {
		serial = uint32(t.Generation)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "$ORIGIN %s\n$TTL %d\n", origin, secs)
	fmt.Fprintf(bw, "@\tIN\tSOA\tns.%s hostmaster.%s %d %d %d %d %d\n",
		origin, origin, serial, soaRefresh, soaRetry, soaExpire, secs)
	fmt.Fprintf(bw, "@\tIN\tNS\tns.%s\n", origin)
	seen := make(map[string]bool)
	for v := range tableVIPs(t) {
		key := v.Key.Name
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		e, err := t.Lookup(key)
		if err != nil {
			continue // not announced
		}
		if e.Addr4.IsValid() {
			fmt.Fprintf(bw, "%s\tIN\tA\t%s\n", key, e.Addr4)
		}
		if e.Addr6.IsValid() {
			fmt.Fprintf(bw, "%s\tIN\tAAAA\t%s\n", key, e.Addr6)
		}
		for _, p := range e.Ports {
			fmt.Fprintf(bw, "%s\tIN\tSRV\t0 1 %d %s.%s\n", discovery.SRVName(key, p.Protocol), p.Port, key, origin)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write zone %s: %w", origin, err)
	}
	return nil
}

// tableVIPs yields t's VIPs, none for a nil table.
func tableVIPs(t *discovery.Table) iter.Seq[*discovery.VIP] {
	if t == nil {
		return func(func(*discovery.VIP) bool) {}
	}
	return t.VIPs.All()
}

package httpapi

// The task zones as the API shows them: where each discovery.RecordZone is
// served (its origins) with which TTL, and the records of each, sorted.

import (
	"cmp"
	"slices"

	"github.com/vipbridge/vipbridge/discovery"
)

// Origins of the task zones other than the configurable mesos domain
// (UPSTREAM.md §2.2).
const (
	// MesosMirrorZone is dcos-dns's copy of the mesos zone.
	MesosMirrorZone = "mesos.thisdcos.directory"
	// DCOSZone holds dcos-dns's task names.
	DCOSZone = "dcos.thisdcos.directory"
)

// taskZone is one origin a discovery.RecordZone is served under.
type taskZone struct {
	zone   discovery.RecordZone
	origin string // lower case, no trailing dot: "mesos", "dcos.thisdcos.directory"
	ttl    uint32
}

// fqdn is the name rel (relative to the zone, "" for the apex) without a
// trailing dot.
func (z taskZone) fqdn(rel string) string {
	if rel == "" {
		return z.origin
	}
	return rel + "." + z.origin
}

// newTaskZones lists the task zones: the mesos domain (none when domain is
// empty) with mesosTTL, its dcos-dns mirror and the dcos zone with ttl.
// The mirror's TTL is dcos-dns's (dcos_dns_mesos_dns.erl ?DCOS_DNS_TTL).
func newTaskZones(domain string, mesosTTL, ttl uint32) []taskZone {
	var zs []taskZone
	if domain != "" {
		zs = append(zs, taskZone{zone: discovery.ZoneMesos, origin: domain, ttl: mesosTTL})
	}
	return append(zs,
		taskZone{zone: discovery.ZoneMesos, origin: MesosMirrorZone, ttl: ttl},
		taskZone{zone: discovery.ZoneDCOS, origin: DCOSZone, ttl: ttl})
}

// namedRecords is one name of a task zone with its records.
type namedRecords struct {
	name string // relative to the zone
	recs *discovery.Records
}

// zoneNames returns the names of record zone z in t, sorted.
func zoneNames(t *discovery.Table, z discovery.RecordZone) []namedRecords {
	var out []namedRecords
	for n, r := range t.AllRecords() {
		if n.Zone == z {
			out = append(out, namedRecords{name: n.Name, recs: r})
		}
	}
	slices.SortFunc(out, func(x, y namedRecords) int { return cmp.Compare(x.name, y.name) })
	return out
}

// taskRecords returns every record of every task zone: zone by zone, name
// by name, A then AAAA then SRV.
func (a *api) taskRecords(t *discovery.Table) []rr {
	byZone := map[discovery.RecordZone][]namedRecords{}
	var out []rr
	for _, z := range a.taskZones {
		names, ok := byZone[z.zone]
		if !ok {
			names = zoneNames(t, z.zone)
			byZone[z.zone] = names
		}
		for _, n := range names {
			out = append(out, z.records(n)...)
		}
	}
	return out
}

// records returns the records of one name of z.
func (z taskZone) records(n namedRecords) []rr {
	name := z.fqdn(n.name)
	out := make([]rr, 0, len(n.recs.A)+len(n.recs.AAAA)+len(n.recs.SRV))
	for _, addr := range n.recs.A {
		out = append(out, rr{name: name, typ: "A", addr: addr, ttl: z.ttl})
	}
	for _, addr := range n.recs.AAAA {
		out = append(out, rr{name: name, typ: "AAAA", addr: addr, ttl: z.ttl})
	}
	for _, s := range n.recs.SRV {
		out = append(out, rr{name: name, typ: "SRV", port: s.Port, target: z.fqdn(s.Target), ttl: z.ttl})
	}
	return out
}

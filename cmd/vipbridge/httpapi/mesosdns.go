package httpapi

// mesos-dns's enumeration endpoints over the mesos zone: /v1/enumerate and
// /v1/axfr, in mesos-dns's exact shapes (mesosphere/mesos-dns
// records/generator.go EnumerationData, models/models.go AXFR). dcos-dns
// polls /v1/axfr to build mesos.thisdcos.directory
// (dcos/dcos-net apps/dcos_dns/src/dcos_dns_mesos_dns.erl).

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
)

// SOA timers of the mesos zone, mesos-dns's defaults (UPSTREAM.md §3.2,
// §3.5): SOARefresh 60, SOARetry 600, SOAExpire 86400; the minimum is the
// TTL.
const (
	mesosSOARefresh = 60
	mesosSOARetry   = 600
	mesosSOAExpire  = 86400
)

// mesosView is what the mesos-dns endpoints show besides the records.
type mesosView struct {
	domain  string // "" when the mesos zone is not served
	ttl     uint32
	refresh int // seconds
}

func newMesosView(cfg Config) mesosView {
	v := mesosView{domain: cfg.MesosDomain, ttl: seconds(defaultMesosTTL), refresh: int(defaultMesosRefresh / time.Second)}
	if cfg.MesosTTL > 0 {
		v.ttl = seconds(cfg.MesosTTL)
	}
	if cfg.MesosRefresh > 0 {
		v.refresh = int(seconds(cfg.MesosRefresh))
	}
	return v
}

// zone is the mesos zone as a taskZone.
func (v mesosView) zone() taskZone {
	return taskZone{zone: discovery.ZoneMesos, origin: v.domain, ttl: v.ttl}
}

// mesosDisabled answers the mesos-dns endpoints when the zone is not
// served, as mesos-dns without EnumerationOn does: 404.
func mesosDisabled(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: "mesos zone not served (--mesos-domain is empty)"})
}

// enumerateDoc is the body of GET /v1/enumerate (mesos-dns's
// EnumerationData).
type enumerateDoc struct {
	Frameworks []enumFramework `json:"frameworks"`
}

type enumFramework struct {
	Tasks []enumTask `json:"tasks"`
	Name  string     `json:"name"`
}

type enumTask struct {
	Name    string       `json:"name"`
	ID      string       `json:"id"`
	Records []enumRecord `json:"records"`
}

// enumRecord is one record of a task: names fully qualified with the
// trailing dot, host the address or "<target>.:<port>", rtype A, AAAA or
// SRV (mesos-dns's EnumerableRecord).
type enumRecord struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	RType string `json:"rtype"`
}

// v1Enumerate serves GET /v1/enumerate: every task with the records it
// gives the mesos zone, grouped by framework; frameworks sorted by name,
// tasks by name then ID, records as the task gives them.
func (a *api) v1Enumerate(w http.ResponseWriter, _ *http.Request) {
	if a.mesos.domain == "" {
		mesosDisabled(w)
		return
	}
	z := a.mesos.zone()
	byName := map[string][]enumTask{}
	for tr := range a.table().Tasks() {
		task := enumTask{Name: tr.Name, ID: tr.ID, Records: []enumRecord{}}
		for _, r := range tr.Records {
			if r.Zone != discovery.ZoneMesos {
				continue
			}
			rec := enumRecord{Name: z.fqdn(r.Name) + ".", RType: r.Type.String(), Host: r.Addr.String()}
			if r.Type == discovery.TypeSRV {
				rec.Host = z.fqdn(r.Target) + ".:" + strconv.Itoa(int(r.Port))
			}
			task.Records = append(task.Records, rec)
		}
		byName[tr.Framework] = append(byName[tr.Framework], task)
	}
	doc := enumerateDoc{Frameworks: make([]enumFramework, 0, len(byName))}
	for name, tasks := range byName {
		slices.SortFunc(tasks, func(x, y enumTask) int {
			return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.ID, y.ID))
		})
		doc.Frameworks = append(doc.Frameworks, enumFramework{Name: name, Tasks: tasks})
	}
	slices.SortFunc(doc.Frameworks, func(x, y enumFramework) int { return cmp.Compare(x.Name, y.Name) })
	writeJSON(w, http.StatusOK, doc)
}

// axfrDoc is the body of GET /v1/axfr, field for field mesos-dns's
// models.AXFR.
type axfrDoc struct {
	TTL            int32
	Serial         uint32
	RefreshSeconds int
	Mname          string
	Rname          string
	Domain         string
	Records        axfrRecords
}

// axfrRecords maps fully qualified names (trailing dot) to addresses, or
// for SRVs to "<target>.:<port>". Every map is present, {} when empty:
// dcos-dns folds over each without a null check.
type axfrRecords struct {
	As    map[string][]string
	AAAAs map[string][]string
	SRVs  map[string][]string
}

// v1AXFR serves GET /v1/axfr: the whole mesos zone. Mname, Rname and
// Serial are those of the SOA DNS serves for the zone (soa).
func (a *api) v1AXFR(w http.ResponseWriter, _ *http.Request) {
	if a.mesos.domain == "" {
		mesosDisabled(w)
		return
	}
	t := a.table()
	z := a.mesos.zone()
	soa := a.soa(t, z)
	doc := axfrDoc{
		TTL:            int32(z.ttl),
		Serial:         soa.Serial,
		RefreshSeconds: a.mesos.refresh,
		Mname:          soa.Ns,
		Rname:          soa.Mbox,
		Domain:         z.origin,
		Records:        axfrRecords{As: map[string][]string{}, AAAAs: map[string][]string{}, SRVs: map[string][]string{}},
	}
	for _, r := range a.taskZoneRecords(t, z) {
		name := r.name + "."
		switch r.typ {
		case "A":
			doc.Records.As[name] = append(doc.Records.As[name], r.addr.String())
		case "AAAA":
			doc.Records.AAAAs[name] = append(doc.Records.AAAAs[name], r.addr.String())
		case "SRV":
			doc.Records.SRVs[name] = append(doc.Records.SRVs[name], r.target+".:"+strconv.Itoa(int(r.port)))
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// taskZoneRecords returns the records of one task zone, sorted by name.
func (a *api) taskZoneRecords(t *discovery.Table, z taskZone) []rr {
	var out []rr
	for _, n := range zoneNames(t, z.zone) {
		out = append(out, z.records(n)...)
	}
	return out
}

// soa returns the SOA of task zone z: the one DNS answers for the apex, or,
// when DNS does not answer it (no resolver, zone not served yet),
// mesos-dns's: mname ns1.<zone>., rname root.ns1.<zone>., serial the Unix
// time the table was built, refresh 60, retry 600, expire 86400, minimum
// the zone's TTL.
func (a *api) soa(t *discovery.Table, z taskZone) *dns.SOA {
	apex := z.origin + "."
	resp := a.ask(apex, dns.TypeSOA)
	for _, rr := range append(resp.Answer, resp.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.CanonicalName(soa.Hdr.Name) == apex {
			return soa
		}
	}
	mname := "ns1." + apex
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.ttl},
		Ns:      mname,
		Mbox:    "root." + mname,
		Serial:  uint32(max(t.Built.Unix(), 0)),
		Refresh: mesosSOARefresh,
		Retry:   mesosSOARetry,
		Expire:  mesosSOAExpire,
		Minttl:  z.ttl,
	}
}

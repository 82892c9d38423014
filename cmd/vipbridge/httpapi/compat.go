package httpapi

import (
	"net/http"
	"strconv"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// v1VIP is one element of GET /v1/vips, dcos-net's shape
// (dcos/dcos-net apps/dcos_rest/src/dcos_rest_vips_handler.erl).
type v1VIP struct {
	VIP      string             `json:"vip"`
	Protocol discovery.Protocol `json:"protocol"`
	Backend  []v1Backend        `json:"backend"`
	// State and Reason are vipbridge's additions: where the VIP stands in
	// the kernel (absent with --lb none).
	State  lb.Status `json:"state,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// v1Backend is a backend of a v1VIP. Weight is vipbridge's addition;
// dcos-net shows none.
type v1Backend struct {
	IP     string `json:"ip"`
	Port   uint16 `json:"port"`
	Weight uint8  `json:"weight"`
}

// v1Record is one element of GET /v1/records, dcos-dns's shape: Host is the
// address for A and AAAA, "<target>:<port>" for SRV
// (dcos/dcos-net apps/dcos_rest/src/dcos_rest_dns_handler.erl).
type v1Record struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	RType string `json:"rtype"`
}

// v1Version is the body of GET /v1/version.
type v1Version struct {
	Service string `json:"Service"`
	Version string `json:"Version"`
	// Dataplane is the dataplane the daemon runs (vipbridge's addition).
	Dataplane string `json:"Dataplane,omitempty"`
}

// v1VIPs serves GET /v1/vips: every VIP of the table, announced or not
// (with dataplane "none" this is the plan), named VIPs by FQDN.
func (a *api) v1VIPs(w http.ResponseWriter, _ *http.Request) {
	t := a.table()
	states := a.states()
	out := make([]v1VIP, 0, t.VIPs.Len())
	for v := range t.VIPs.All() {
		bs := make([]v1Backend, 0, len(v.Backends))
		for _, b := range v.Backends {
			bs = append(bs, v1Backend{IP: b.Addr.Addr().String(), Port: b.Addr.Port(), Weight: b.Weight})
		}
		doc := v1VIP{VIP: a.vipString(v), Protocol: v.Key.Protocol, Backend: bs}
		if d := dataplaneOf(states, v.Key, false); d != nil {
			doc.State, doc.Reason = d.Status, d.Reason
		}
		out = append(out, doc)
	}
	writeJSON(w, http.StatusOK, out)
}

// v1Records serves GET /v1/records: every record DNS serves, in every
// zone. Names carry no trailing dot, as in dcos-dns.
func (a *api) v1Records(w http.ResponseWriter, _ *http.Request) {
	rrs := a.allRecords(a.table())
	out := make([]v1Record, 0, len(rrs))
	for _, r := range rrs {
		host := r.addr.String()
		if r.typ == "SRV" {
			host = r.target + ":" + strconv.Itoa(int(r.port))
		}
		out = append(out, v1Record{Name: r.name, Host: host, RType: r.typ})
	}
	writeJSON(w, http.StatusOK, out)
}

// v1Version serves GET /v1/version in dcos-dns's shape.
func (a *api) v1Version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, v1Version{Service: "vipbridge", Version: a.version, Dataplane: a.lbKind})
}

package httpapi

// The JSON of GET /v1/watch, the status page's stream: the snapshot a
// client gets first, the deltas after it, and how VIPs and the sources'
// status render in them.

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// watchSnapshot is the first event of a watch: everything the page shows.
type watchSnapshot struct {
	// Now is the server's clock, for ages shown in the browser.
	Now        time.Time `json:"now"`
	Zone       string    `json:"zone"`
	Generation uint64    `json:"generation"`
	Built      time.Time `json:"built"`
	// Dataplane is false with --lb none: VIPs then have no kernel state.
	Dataplane bool                   `json:"dataplane"`
	VIPs      []watchVIP             `json:"vips"`
	Errors    []discovery.LabelError `json:"errors"`
	Status    statusDoc              `json:"status"`
	// Changes are the change log, oldest first.
	Changes []changeDoc `json:"changes"`
}

// watchDelta is every later event: what changed since the event before.
// Absent fields are unchanged.
type watchDelta struct {
	Now        time.Time `json:"now"`
	Generation uint64    `json:"generation"`
	Built      time.Time `json:"built"`
	// Upserts are added or changed VIPs, whole.
	Upserts []watchVIP `json:"upserts,omitempty"`
	// Removes are the IDs of VIPs gone.
	Removes []string `json:"removes,omitempty"`
	// Errors, when present, replace the label errors (an empty list: none
	// left).
	Errors []discovery.LabelError `json:"errors,omitzero"`
	Status *statusDoc             `json:"status,omitempty"`
	// Changes are new entries of the change log, oldest first.
	Changes []changeDoc `json:"changes,omitempty"`
}

// empty reports whether d carries no change at all.
func (d *watchDelta) empty() bool {
	return len(d.Upserts) == 0 && len(d.Removes) == 0 && d.Errors == nil && d.Status == nil && len(d.Changes) == 0
}

// watchVIP is one VIP as the page shows it.
type watchVIP struct {
	// ID is "<protocol> <vip>", unique within a table.
	ID       string             `json:"id"`
	VIP      string             `json:"vip"`
	Protocol discovery.Protocol `json:"protocol"`
	Port     uint16             `json:"port"`
	// Addresses are the VIP's IPv4 and IPv6 addresses.
	Addresses []string `json:"addresses"`
	// Announced says whether DNS serves the name and port; absent for IP
	// VIPs.
	Announced *bool    `json:"announced,omitempty"`
	Apps      []string `json:"apps"`
	// Dataplane is the VIP's kernel state; absent with --lb none.
	Dataplane *dataplaneDoc  `json:"dataplane,omitempty"`
	Backends  []watchBackend `json:"backends"`
}

// watchBackend is one backend of a watchVIP.
type watchBackend struct {
	Addr   string `json:"addr"`
	Weight uint8  `json:"weight"`
	TaskID string `json:"task_id"`
	AppID  string `json:"app_id"`
	// Health says why the backend has its weight: "healthy" (checks
	// pass), "unchecked" (the app has no health checks), "unhealthy" (a
	// check fails, or none has passed yet), "killing" (the task is being
	// killed); for a table that does not say (a cluster node's from an
	// older publisher), "healthy" or "drained" by the weight.
	Health string `json:"health"`
}

// statusDoc is the sources' freshness.
type statusDoc struct {
	Loaded  bool        `json:"loaded"`
	Synced  bool        `json:"synced"`
	Stale   bool        `json:"stale"`
	Sources []sourceDoc `json:"sources"`
}

// sourceDoc is one source's freshness.
type sourceDoc struct {
	Name string `json:"name"`
	// LastSync is its last successful sync (zero: never).
	LastSync time.Time `json:"last_sync,omitzero"`
	// Stale is true while it has not synced since start or its last sync
	// failed; its last known state is served.
	Stale     bool   `json:"stale"`
	LastError string `json:"last_error,omitempty"`
}

// watchID is the ID of a VIP on the page.
func watchID(protocol discovery.Protocol, vip string) string {
	return protocol.String() + " " + vip
}

// renderVIP renders v of table t with its dataplane state dp (nil: no
// dataplane).
func (f *Feed) renderVIP(t *discovery.Table, v *discovery.VIP, dp *dataplaneDoc) watchVIP {
	vip := v.Key.IP.String()
	if v.Key.Name != "" {
		vip = v.Key.Name + "." + f.zone
	}
	vip += ":" + strconv.Itoa(int(v.Key.Port))
	d := watchVIP{
		ID:        watchID(v.Key.Protocol, vip),
		VIP:       vip,
		Protocol:  v.Key.Protocol,
		Port:      v.Key.Port,
		Addresses: vipAddresses(v),
		Announced: announced(t, v),
		Apps:      nonNil(v.Apps),
		Dataplane: dp,
		Backends:  make([]watchBackend, 0, len(v.Backends)),
	}
	for _, b := range v.Backends {
		health := b.Status.String()
		switch {
		case b.Status != discovery.BackendUnknown:
		case b.Weight == 0:
			health = "drained"
		default:
			health = "healthy"
		}
		d.Backends = append(d.Backends, watchBackend{
			Addr: b.Addr.String(), Weight: b.Weight, TaskID: b.TaskID, AppID: b.AppID, Health: health,
		})
	}
	return d
}

// newStatusDoc renders st, sources sorted by name.
func newStatusDoc(st discovery.Status) statusDoc {
	d := statusDoc{Loaded: st.Loaded, Synced: st.Synced, Stale: st.Stale, Sources: []sourceDoc{}}
	names := make(map[string]bool)
	for n := range st.LastSync {
		names[n] = true
	}
	for n := range st.LastError {
		names[n] = true
	}
	for _, n := range st.StaleSources {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		d.Sources = append(d.Sources, sourceDoc{
			Name: n, LastSync: st.LastSync[n], Stale: slices.Contains(st.StaleSources, n), LastError: redact(st.LastError[n]),
		})
	}
	return d
}

// equal reports whether d and o say the same.
func (d *statusDoc) equal(o *statusDoc) bool {
	return d.Loaded == o.Loaded && d.Synced == o.Synced && d.Stale == o.Stale && slices.EqualFunc(d.Sources, o.Sources,
		func(a, b sourceDoc) bool {
			return a.Name == b.Name && a.LastSync.Equal(b.LastSync) && a.Stale == b.Stale && a.LastError == b.LastError
		})
}

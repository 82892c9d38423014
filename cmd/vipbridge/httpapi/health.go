package httpapi

import (
	"net/http"
	"regexp"
	"slices"
	"time"
)

// readyDoc is the body of GET /readyz.
type readyDoc struct {
	Ready bool `json:"ready"`
	// Loaded: state came from disk or a first full sync.
	Loaded bool `json:"loaded"`
	// Synced: every source has been synced at least once.
	Synced bool `json:"synced"`
	// Stale and StaleSources: some source is unreachable and its last
	// known state is being served.
	Stale        bool                 `json:"stale"`
	StaleSources []string             `json:"stale_sources"`
	Generation   uint64               `json:"generation"`
	LastSync     map[string]time.Time `json:"last_sync"`
	LastError    map[string]string    `json:"last_error"`
	// Cluster is cluster mode's state; absent in single-node mode.
	Cluster *clusterDoc `json:"cluster,omitempty"`
}

// healthz serves GET /healthz: 200 while the process serves HTTP at all.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n")) // the client went away: nothing to do
}

// readyz serves GET /readyz: 503 until state is loaded (from disk or a
// first sync), 200 after. A stale table is still ready: serving the last
// known state while an upstream is unreachable is the intended behaviour
// (DESIGN.md "Sources and consistency"), and failing readiness then would
// take DNS away exactly when Marathon or Mesos is down. The body says
// "stale": true and names the stale sources instead.
func (a *api) readyz(w http.ResponseWriter, _ *http.Request) {
	st := a.tables.Status()
	doc := readyDoc{
		Ready:        st.Loaded || st.Synced,
		Loaded:       st.Loaded,
		Synced:       st.Synced,
		Stale:        st.Stale,
		StaleSources: slices.Sorted(slices.Values(nonNil(st.StaleSources))),
		Generation:   st.Generation,
		LastSync:     st.LastSync,
		LastError:    make(map[string]string, len(st.LastError)),
		Cluster:      a.clusterDoc(),
	}
	if doc.LastSync == nil {
		doc.LastSync = map[string]time.Time{}
	}
	for src, msg := range st.LastError {
		doc.LastError[src] = redact(msg)
	}
	status := http.StatusOK
	if !doc.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, doc)
}

// userinfo matches the user information of a URL ("//user:pass@").
var userinfo = regexp.MustCompile(`//[^/@\s]*@`)

// redact removes URL user information from an upstream error text. The
// HTTP client already strips passwords from the URLs in its errors; this
// also covers errors built by other code.
func redact(s string) string { return userinfo.ReplaceAllString(s, "//") }

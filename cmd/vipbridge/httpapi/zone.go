package httpapi

import (
	"bytes"
	"net/http"
	"time"

	"github.com/vipbridge/vipbridge/dnsserver"
)

// v1Zone serves GET /v1/zone: the records DNS serves, as an RFC 1035
// master file of the API's zone (dnsserver.WriteZone), the form Knot, NSD
// and `vipbridge zone` take. The media type is RFC 4027's.
func (a *api) v1Zone(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if err := dnsserver.WriteZone(&buf, a.table(), time.Duration(a.ttl)*time.Second, a.zone); err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/dns")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
}

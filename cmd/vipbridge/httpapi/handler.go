package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vipbridge/vipbridge/discovery"
)

// Tables is what the API reads: the latest published Table and the
// reconciler's status. *discovery.Reconciler satisfies it.
type Tables interface {
	Table() *discovery.Table
	Status() discovery.Status
}

// Config configures the handler returned by New.
type Config struct {
	// Tables supplies the table and status to serve; required.
	Tables Tables
	// TTL is the TTL shown for records, the one DNS serves; zero means 5s.
	TTL time.Duration
	// Version is shown by /v1/version.
	Version string
	// DataplaneKind is the dataplane the daemon runs (ipvs, nftables or
	// none: what --lb auto chose), shown by /v1/version.
	DataplaneKind string
	// Gatherer backs /metrics; nil makes /metrics a 404.
	Gatherer prometheus.Gatherer
	// Logger receives one Debug line per request; nil discards.
	Logger *slog.Logger
	// Zone is the DNS zone of VIP names; "" means "l4lb.thisdcos.directory".
	Zone string
	// Dataplane, if not nil, adds each VIP's kernel state to /records and
	// /v1/vips.
	Dataplane Dataplane
	// Resolver answers /v1/hosts and /v1/services; nil answers every name
	// with the empty entry.
	Resolver Resolver
	// MesosDomain is mesos-dns's domain (--mesos-domain): the mesos zone's
	// origin in /records, /v1/records and /v1/zone, and the zone of
	// /v1/enumerate and /v1/axfr. "" means the mesos zone is not served:
	// those two answer 404, the others leave it out. The dcos-dns mirror
	// mesos.thisdcos.directory is listed either way.
	MesosDomain string
	// MesosTTL is the TTL of the mesos zone (--mesos-ttl); zero means 60s,
	// mesos-dns's default.
	MesosTTL time.Duration
	// MesosRefresh is shown as /v1/axfr's RefreshSeconds, the longest a
	// record taken from a Mesos poll can lag (--mesos-interval); zero
	// means 60s, mesos-dns's default refreshSeconds.
	MesosRefresh time.Duration
	// Settings is the daemon's effective configuration, shown by
	// /v1/config with secrets removed (settings.go); nil makes /v1/config
	// an empty object.
	Settings any
	// Feed backs /v1/watch, the status page's live stream (feed.go);
	// nil makes /v1/watch a 404 (the page at /ui/ then shows no data).
	Feed *Feed
	// Cluster, in cluster mode, adds the role, the leading publisher and
	// the applied etcd revision to /readyz and /records (cluster.go).
	Cluster Cluster
}

const (
	// DefaultZone is the zone of VIP names when Config.Zone is empty.
	DefaultZone = "l4lb.thisdcos.directory"
	// defaultTTL matches dcos-dns's ?DCOS_DNS_TTL (UPSTREAM.md §2.2).
	defaultTTL = 5 * time.Second
	// defaultMesosTTL and defaultMesosRefresh are mesos-dns's ttl and
	// refreshSeconds defaults (UPSTREAM.md §3.2).
	defaultMesosTTL     = 60 * time.Second
	defaultMesosRefresh = 60 * time.Second
	// maxRequestBody bounds what any handler could read from a request
	// body; none reads one today.
	maxRequestBody = 4 << 10
	// maxNameLen is the longest DNS name in presentation form (RFC 1035
	// §3.1) plus a trailing dot; longer path variables are unknown names.
	maxNameLen = 254
)

// api holds the handlers' shared state.
type api struct {
	tables    Tables
	ttl       uint32
	version   string
	lbKind    string
	zone      string
	aliases   []string // other zones accepted on input, never listed
	log       *slog.Logger
	gatherer  prometheus.Gatherer
	dataplane Dataplane
	resolver  Resolver
	settings  any
	feed      *Feed
	cluster   Cluster
	// mesos is the mesos-dns view (/v1/enumerate, /v1/axfr); its domain
	// is "" when the mesos zone is not served.
	mesos mesosView
	// taskZones are the served task zones, in the order the API lists
	// them.
	taskZones []taskZone
}

// New returns the API's handler: a gorilla/mux router wrapped in request
// logging (Debug) and a request body limit.
func New(cfg Config) http.Handler {
	a := &api{
		tables:    cfg.Tables,
		ttl:       uint32(defaultTTL / time.Second),
		version:   cfg.Version,
		lbKind:    cfg.DataplaneKind,
		zone:      cfg.Zone,
		log:       cfg.Logger,
		gatherer:  cfg.Gatherer,
		dataplane: cfg.Dataplane,
	}
	if cfg.TTL > 0 {
		a.ttl = seconds(cfg.TTL)
	}
	a.resolver, a.settings = cfg.Resolver, cfg.Settings
	a.feed = cfg.Feed
	a.cluster = cfg.Cluster
	a.mesos = newMesosView(cfg)
	a.taskZones = newTaskZones(a.mesos.domain, a.mesos.ttl, a.ttl)
	if a.zone == "" {
		a.zone = DefaultZone
	}
	if a.zone == DefaultZone {
		// dcos-dns renames dclb to l4lb (UPSTREAM.md §1.3).
		a.aliases = []string{"dclb.thisdcos.directory"}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "http")
	return a.logRequests(a.router())
}

// seconds is d in whole seconds as a TTL: at least 1, at most 2^31-1
// (RFC 2181 §8).
func seconds(d time.Duration) uint32 {
	return uint32(min(max(d/time.Second, 1), math.MaxInt32))
}

// router registers every route for GET and HEAD.
func (a *api) router() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	routes := []struct {
		path    string
		handler http.HandlerFunc
	}{
		{"/records", a.records},
		{"/records/{name}", a.recordsByName},
		{"/v1/vips", a.v1VIPs},
		{"/v1/records", a.v1Records},
		{"/v1/hosts/{host}", a.v1Hosts},
		{"/v1/hosts/{host}/ports", notImplemented},
		{"/v1/services/{service}", a.v1Services},
		{"/v1/enumerate", a.v1Enumerate},
		{"/v1/axfr", a.v1AXFR},
		{"/v1/config", a.v1Config},
		{"/v1/version", a.v1Version},
		{"/v1/zone", a.v1Zone},
		{"/healthz", healthz},
		{"/readyz", a.readyz},
		{"/v1/watch", a.v1Watch},
		{"/ui", redirectToUI},
	}
	for _, rt := range routes {
		r.Handle(rt.path, rt.handler).Methods(http.MethodGet, http.MethodHead)
	}
	r.PathPrefix("/ui/").Handler(uiHandler()).Methods(http.MethodGet, http.MethodHead)
	if a.gatherer != nil {
		metrics := promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLogger{a.log},
			ErrorHandling: promhttp.ContinueOnError,
		})
		r.Handle("/metrics", metrics).Methods(http.MethodGet, http.MethodHead)
	}
	return r
}

// table returns the current table, never nil.
func (a *api) table() *discovery.Table {
	if t := a.tables.Table(); t != nil {
		return t
	}
	return &discovery.Table{}
}

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
}

// notImplemented answers what mesos-dns answers with 501 (/v1/hosts/{host}/ports).
func notImplemented(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotImplemented, errorBody{Error: "not implemented"})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method " + r.Method + " not allowed"})
}

// writeJSON renders v completely before sending the status, so that an
// encoding failure becomes a 500 instead of a truncated 200.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"error": "encode response"}` + "\n")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
}

// logRequests bounds request bodies and logs each request at Debug. The
// query string is not logged: it is ignored, and clients sometimes put
// tokens there.
func (a *api) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.String("remote", r.RemoteAddr),
			slog.Duration("took", time.Since(start)))
	})
}

// statusRecorder remembers the status and size of a response for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// promLogger adapts slog to promhttp's error logger.
type promLogger struct{ log *slog.Logger }

func (p promLogger) Println(v ...any) { p.log.Warn("gather metrics", "err", fmt.Sprint(v...)) }

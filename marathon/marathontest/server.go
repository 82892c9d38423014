package marathontest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a simulated Marathon (one or more nodes, one of them leader)
// and Mesos master, each on its own 127.0.0.1 listener. Its methods are
// safe for concurrent use.
type Server struct {
	opts options
	now  func() time.Time

	mu           sync.Mutex // guards c, nodes, leader; held while events are published
	c            *cluster
	nodes        []*node
	leader       int
	mesos        *node // the leading master; guarded by mu
	mesosStandby *node
	history      []event     // the last events published, for Replay; guarded by mu
	faults       *faultState // injected faults (faults.go)
	mesosAPI     mesosAPI    // the operator API's streams (mesosapi.go)

	subMu   sync.Mutex // guards subs, closing
	subs    map[*subscriber]struct{}
	closing bool
	streams sync.WaitGroup // running event streams (hijacked, so http.Server does not track them)
}

// node is one HTTP listener.
type node struct {
	srv *http.Server
	url string // "http://127.0.0.1:port"
}

type options struct {
	heartbeat      time.Duration
	legacy         bool
	maxOutstanding int
	standbyMaster  bool
	basicAuth      string
	token          string
	now            func() time.Time
	healthGap      time.Duration
	mesosHeartbeat time.Duration
	noSubscribe    bool
}

// Option configures a Server.
type Option func(*options)

// WithHeartbeat sets the period of the bare "\r\n" heartbeat on event
// streams; the default is Jetty's 10 s.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithLegacyShape serves the Marathon ≤1.4 JSON shape: container.docker
// network and portMappings, ipAddress with discovery ports, the ports list,
// task ids "<app>.<uuid>" and health results naming taskId.
func WithLegacyShape() Option { return func(o *options) { o.legacy = true } }

// WithMaxOutstanding sets how many events may queue per stream before the
// stream is dropped; the default is Marathon's 1024
// (--event_stream_max_outstanding_messages).
func WithMaxOutstanding(n int) Option { return func(o *options) { o.maxOutstanding = n } }

// WithStandbyMaster starts a second, non-leading Mesos master
// (StandbyMesosURL) that answers every request with 307 to the leader.
func WithStandbyMaster() Option { return func(o *options) { o.standbyMaster = true } }

// WithBasicAuth requires HTTP Basic credentials "user:password" on every
// Marathon and Mesos request (Marathon's --http_credentials); others get 401.
func WithBasicAuth(userPass string) Option { return func(o *options) { o.basicAuth = userPass } }

// WithToken requires the DC/OS header "Authorization: token=<token>".
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithClock sets the clock used for timestamps; the default is time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewServer starts a Server for sc on 127.0.0.1, like httptest.NewServer.
// It is meant for tests: like httptest.NewServer it panics when the
// scenario is invalid or no loopback listener can be opened. Use Start to
// get an error instead.
func NewServer(sc *Scenario, opts ...Option) *Server {
	s, err := Start(sc, opts...)
	if err != nil {
		panic(fmt.Sprintf("marathontest: %v", err))
	}
	return s
}

// Start starts a Server for sc: one Marathon node (the leader) and one
// Mesos master, each on its own 127.0.0.1:0 listener, with the scenario's
// apps deployed and running. Close releases everything.
func Start(sc *Scenario, opts ...Option) (*Server, error) {
	if sc == nil {
		sc = &Scenario{}
	}
	if err := sc.check(); err != nil {
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	o := options{heartbeat: 10 * time.Second, maxOutstanding: 1024, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{opts: o, now: o.now, c: newCluster(sc, o.legacy), subs: make(map[*subscriber]struct{}), faults: newFaultState()}
	now := s.now()
	for _, spec := range sc.Apps {
		a, err := s.c.addApp(spec, now)
		if err != nil {
			return nil, fmt.Errorf("start simulator: %w", err)
		}
		for range spec.Instances {
			if err := s.launch(a, now); err != nil {
				return nil, fmt.Errorf("start simulator: %w", err)
			}
		}
	}
	if err := s.startPods(sc.Pods, now); err != nil {
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	n, err := s.listen(s.marathonHandler)
	if err != nil {
		return nil, err
	}
	s.nodes = []*node{n}
	if s.mesos, err = s.listen(s.mesosHandler); err != nil {
		s.Close()
		return nil, err
	}
	if o.standbyMaster {
		if s.mesosStandby, err = s.listen(s.mesosHandler); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// listen starts an HTTP server on a fresh 127.0.0.1 port.
func (s *Server) listen(handler func(*node) http.Handler) (*node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	n := &node{url: "http://" + ln.Addr().String()}
	n.srv = &http.Server{Handler: handler(n), ReadHeaderTimeout: 10 * time.Second}
	go n.srv.Serve(ln)
	return n, nil
}

// URL is the base URL of the first Marathon node, e.g.
// "http://127.0.0.1:34567". After ChangeLeader it is no longer the leader
// but keeps serving REST and redirects /v2/events to the leader.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[0].url
}

// LeaderURL is the base URL of the current leading Marathon node.
func (s *Server) LeaderURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[s.leader].url
}

// URLs are the base URLs of every Marathon node, oldest first.
func (s *Server) URLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = n.url
	}
	return out
}

// MesosURL is the base URL of the leading Mesos master; its state is at
// MesosURL()+"/master/state".
func (s *Server) MesosURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mesos.url
}

// StandbyMesosURL is the base URL of the non-leading Mesos master started
// by WithStandbyMaster, or "" without it.
func (s *Server) StandbyMesosURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mesosStandby == nil {
		return ""
	}
	return s.mesosStandby.url
}

func (s *Server) leaderNode() *node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[s.leader]
}

// ChangeLeader makes a new Marathon node on a new listener the leader, as
// after a Marathon failover: every event stream is closed, the old nodes
// answer /v2/events with 302 to the new leader and keep serving REST with
// elected=false. With WithFailoverHealthGap, health results are missing
// from the REST API for a while afterwards. It returns the new leader's URL.
func (s *Server) ChangeLeader() (string, error) {
	n, err := s.listen(s.marathonHandler)
	if err != nil {
		return "", fmt.Errorf("change leader: %w", err)
	}
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.leader = len(s.nodes) - 1
	s.blindHealth()
	s.mu.Unlock()
	s.dropStreams()
	return n.url, nil
}

// DropConnections closes every open event stream abruptly, without any
// further byte, as a network failure or proxy restart would.
func (s *Server) DropConnections() { s.dropStreams() }

// Streams returns the number of open event streams.
func (s *Server) Streams() int {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	return len(s.subs)
}

// Close stops every listener and closes every stream; it waits for the
// stream writers to finish.
func (s *Server) Close() {
	s.subMu.Lock()
	s.closing = true
	s.subMu.Unlock()
	s.faults.close()
	s.dropStreams()
	s.mu.Lock()
	nodes := append([]*node{}, s.nodes...)
	nodes = append(nodes, s.mesos, s.mesosStandby)
	s.mu.Unlock()
	for _, n := range nodes {
		if n != nil {
			n.srv.Close()
		}
	}
	s.streams.Wait()
}

// Run serves until ctx is done, then closes the server; for the demo's
// errgroup. It returns nil.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	s.Close()
	return nil
}

// authorized checks the configured credentials.
func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.opts.basicAuth != "":
		user, pass, ok := r.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(user+":"+pass), []byte(s.opts.basicAuth)) == 1
	case s.opts.token != "":
		return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("token="+s.opts.token)) == 1
	}
	return true
}

func (s *Server) withAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			if s.opts.basicAuth != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere"`)
			}
			writeJSON(w, http.StatusUnauthorized, obj{"message": "invalid username or password."})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// marathonHandler routes one Marathon node's API.
func (s *Server) marathonHandler(n *node) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/events", func(w http.ResponseWriter, r *http.Request) { s.handleEvents(n, w, r) })
	mux.HandleFunc("GET /v2/apps", s.handleApps)
	mux.HandleFunc("GET /v2/apps/{id...}", s.handleApp)
	mux.HandleFunc("GET /v2/tasks", s.handleTasks)
	mux.HandleFunc("GET /v2/info", func(w http.ResponseWriter, r *http.Request) { s.handleInfo(n, w) })
	mux.HandleFunc("GET /v2/leader", s.handleLeader)
	s.routePods(mux)
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("pong\n")) })
	return s.faults.wrap(s.withAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Marathon-Leader", s.leaderNode().url)
		mux.ServeHTTP(w, r)
	})))
}

// mesosHandler routes Mesos master n; while n is not the leading master it
// redirects every request to the leader with 307, as non-leading masters do.
func (s *Server) mesosHandler(n *node) http.Handler {
	mux := http.NewServeMux()
	state := func(w http.ResponseWriter, r *http.Request) {
		if leader := s.mesosLeader(); leader != n {
			http.Redirect(w, r, leader.url+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		s.handleMasterState(w)
	}
	mux.HandleFunc("GET /master/state", state)
	mux.HandleFunc("GET /state", state)
	mux.HandleFunc("GET /master/state.json", state)
	mux.HandleFunc("GET /master/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.mesosLeader().url, http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/api/v1", func(w http.ResponseWriter, r *http.Request) { s.handleOperatorAPI(n, w, r) })
	mux.HandleFunc("GET /version", s.handleVersion)
	return s.countMesos(s.faults.wrap(s.withAuth(mux)))
}

func (s *Server) mesosLeader() *node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mesos
}

func (s *Server) handleApps(w http.ResponseWriter, r *http.Request) {
	embed := r.URL.Query()["embed"]
	withTasks := false
	for _, e := range embed {
		withTasks = withTasks || e == "apps.tasks" || e == "tasks"
	}
	s.mu.Lock()
	apps := s.c.snapshotApps()
	s.mu.Unlock()
	// appendApp reads c.agents and c.legacy besides the copies: both are
	// fixed at creation.
	writeJSONList(w, "apps", len(apps), func(b []byte, i int) []byte { return s.c.appendApp(b, apps[i], withTasks) })
}

// handleApp serves /v2/apps/{id} and /v2/apps/{id}/tasks.
func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	id := "/" + strings.Trim(r.PathValue("id"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.c.apps[id]; ok {
		b := append([]byte(`{"app":`), s.c.appendApp(nil, a, true)...)
		writeRawJSON(w, http.StatusOK, append(b, '}'))
		return
	}
	if base, ok := strings.CutSuffix(id, "/tasks"); ok {
		if a, ok := s.c.apps[base]; ok {
			b := []byte(`{"tasks":[`)
			for i, t := range a.tasks {
				if i > 0 {
					b = append(b, ',')
				}
				b = s.c.appendTask(b, a, t)
			}
			writeRawJSON(w, http.StatusOK, append(b, "]}"...))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, obj{"message": fmt.Sprintf("App '%s' does not exist", id)})
}

func (s *Server) handleTasks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	apps := s.c.snapshotApps()
	s.mu.Unlock()
	type ref struct{ a, t int }
	var refs []ref
	for i, a := range apps {
		for j := range a.tasks {
			refs = append(refs, ref{i, j})
		}
	}
	writeJSONList(w, "tasks", len(refs), func(b []byte, i int) []byte {
		a := apps[refs[i].a]
		return s.c.appendTask(b, a, a.tasks[refs[i].t])
	})
}

func (s *Server) handleInfo(n *node, w http.ResponseWriter) {
	s.mu.Lock()
	leader := s.nodes[s.leader]
	info := s.c.infoJSON(leader == n, hostPort(leader.url), n.url, s.mesos.url)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, obj{"leader": hostPort(s.leaderNode().url)})
}

func (s *Server) handleMasterState(w http.ResponseWriter) {
	s.mu.Lock()
	hp := hostPort(s.mesos.url)
	host, _, _ := net.SplitHostPort(hp)
	state := s.c.masterState("master@"+hp, host, s.nodes[s.leader].url, s.now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, state)
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}

// writeRawJSON answers code with data, JSON rendered already.
func writeRawJSON(w http.ResponseWriter, code int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}

// errNotFound is returned by control methods for unknown apps and tasks.
var errNotFound = errors.New("not found")

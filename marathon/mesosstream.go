package marathon

// The Mesos operator API's event stream: POST /api/v1 {"type":"SUBSCRIBE"}
// on the leading master (shared/facts/mesos-operator-api-and-pods.md A).
// Its SUBSCRIBED snapshot and the events after it keep a mirror of the
// master (mesosmirror.go), which the Mesos source serves instead of polling
// /master/state; every task event becomes an update of that source.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// MesosSource is the name of the discovery source the Mesos stream feeds:
// the daemon must give its Mesos source this name.
const MesosSource = "mesos"

const (
	mesosAPIPath     = "/api/v1"
	mesosVersionPath = "/version"
	// mesosFirstTimeout is how long a subscription may stay silent before
	// its SUBSCRIBED starts arriving, as dcos-net arms its watchdog at
	// connect: 3 × the 15 s heartbeat interval.
	mesosFirstTimeout = 45 * time.Second
	// heartbeatsMissed is how many heartbeat intervals without a byte
	// make the stream dead (dcos-net waits 3; master.proto suggests 5).
	heartbeatsMissed = 3
	// pollRecheck is how often a master found without SUBSCRIBE is asked
	// again (after an upgrade, it may have it).
	pollRecheck = 10 * time.Minute
	// maxMesosRecord bounds one record. SUBSCRIBED holds the whole state
	// in one record: 5–60 MB on large clusters.
	maxMesosRecord = 256 << 20
	// versionTimeout bounds the version probe before each subscription.
	versionTimeout = 10 * time.Second
)

var subscribeBody = []byte(`{"type":"SUBSCRIBE"}`)

// MesosStream is the Mesos source of a Client, fed by the operator event
// stream while Run runs: Snapshot serves the stream's mirror of the master
// (no request), or polls /master/state when the master has no SUBSCRIBE.
// Until the first subscription succeeds or fails for good, Snapshot waits.
type MesosStream struct {
	c   *Client
	now func() time.Time

	decided     chan struct{} // closed once streaming or polling is decided
	decideOnce  sync.Once
	polling     atomic.Bool
	subscribedN atomic.Int64 // SUBSCRIBED snapshots taken, for tests

	mu     sync.Mutex // guards mirror, seq and leader
	mirror *mesosMirror
	seq    uint64 // bumped with every change of the mirror
	leader masterHost
}

// masterHost is the host and port of the master a stream subscribed to.
type masterHost struct {
	host string
	port uint16
}

// MesosStream returns c's Mesos source fed by the operator stream, or nil
// when no Mesos URL is configured. Use it instead of Mesos, and run it.
func (c *Client) MesosStream() *MesosStream {
	if len(c.mesosURLs) == 0 {
		return nil
	}
	return &MesosStream{c: c, now: time.Now, decided: make(chan struct{}), mirror: newMesosMirror()}
}

// Snapshot implements discovery.Source: the mirror of the leading master
// (every framework's tasks but the followed Marathon's, one App each, and
// the cluster), numbered for the updates that follow (State.Seq); or a
// poll of /master/state when the master has no SUBSCRIBE.
func (s *MesosStream) Snapshot(ctx context.Context) (discovery.State, error) {
	select {
	case <-s.decided:
	case <-ctx.Done():
		return discovery.State{}, fmt.Errorf("wait for the mesos stream: %w", ctx.Err())
	}
	if s.polling.Load() {
		return s.c.pollMesos(ctx)
	}
	marathonID, err := s.c.marathonID(ctx)
	if err != nil {
		return discovery.State{}, err
	}
	s.mu.Lock()
	st, agents := s.mirror.state(marathonID)
	st.Seq = s.seq
	leader := s.leader
	s.mu.Unlock()
	if !st.Cluster.Leader.IsValid() && leader.host != "" {
		// The master is configured by name (http://leader.mesos:5050).
		rctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		if ip := s.c.resolver.resolve(rctx, leader.host); ip.IsValid() {
			st.Cluster.Leader = netip.AddrPortFrom(ip, leader.port)
		}
		cancel()
	}
	return s.c.finishMesosState(ctx, st, agents), nil
}

// Run follows the operator stream of the Mesos URLs in turn until ctx
// ends, feeding sink with updates of the source named MesosSource. It
// reconnects with capped, jittered backoff and resyncs on every
// subscription; it asks for a resync as well when Marathon's framework ID
// changes (the tasks are classified anew) and when tasks held through a
// master failover are given up. It returns nil when ctx is cancelled.
func (s *MesosStream) Run(ctx context.Context, sink Sink) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { s.watch(ctx, sink) })
	c := s.c
	bo := newRetryBackoff(c.backoff)
	k := 0
	for {
		base := c.mesosURLs[k]
		r := s.session(ctx, base, sink)
		if ctx.Err() != nil {
			return nil
		}
		c.metrics.mesosReconnects.WithLabelValues(r.reason).Inc()
		delay := bo.NextBackOff()
		switch {
		case r.unsupported:
			if !s.polling.Swap(true) {
				c.log.Warn("mesos master has no operator event stream, polling its state instead",
					"url", redact(base), "reason", r.err, "interval", c.mesosEvery)
				sink.Update(discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: "poll"})
			}
			s.decide()
			delay = pollRecheck
		case r.subscribed:
			bo.Reset()
			delay = bo.NextBackOff()
			c.log.Warn("mesos stream ended", "url", redact(base), "reason", r.reason, "events", r.events, "err", r.err, "retry_in", delay)
		default:
			k = (k + 1) % len(c.mesosURLs)
			c.log.Debug("mesos stream attempt failed", "url", redact(base), "reason", r.reason, "err", r.err, "retry_in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *MesosStream) decide() { s.decideOnce.Do(func() { close(s.decided) }) }

// watch asks for a resync of the Mesos source when Marathon's framework ID
// changes and when held tasks expire.
func (s *MesosStream) watch(ctx context.Context, sink Sink) {
	every := min(time.Second, s.c.failoverGrace/4)
	tick := time.NewTicker(every)
	defer tick.Stop()
	resync := func(reason string) {
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: reason})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.c.identity:
			resync("marathon framework id")
		case <-tick.C:
			s.mu.Lock()
			dropped, _ := s.mirror.expire(s.now())
			if dropped {
				s.seq++
			}
			s.mu.Unlock()
			if dropped {
				resync("failover grace over")
			}
		}
	}
}

// mesosSession is the outcome of one stream attempt.
type mesosSession struct {
	subscribed  bool // a SUBSCRIBED arrived
	unsupported bool // the master has no SUBSCRIBE
	events      int
	reason      string
	err         error
}

// session runs one subscription against base until the stream ends.
func (s *MesosStream) session(ctx context.Context, base string, sink Sink) (r mesosSession) {
	if v, ok := s.masterVersion(ctx, base); ok && !versionAtLeast(v, 1, 1) {
		return mesosSession{unsupported: true, reason: "unsupported", err: fmt.Errorf("mesos %s has no SUBSCRIBE (1.1 or later)", v)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dog := &swappableWatchdog{}
	dog.swap(newWatchdog(mesosFirstTimeout, cancel))
	defer dog.stop()
	resp, leaderHost, err := s.subscribe(ctx, base)
	if err != nil {
		var st *statusError
		if errors.As(err, &st) && subscribeRefused(st.code) {
			return mesosSession{unsupported: true, reason: "unsupported", err: err}
		}
		return mesosSession{reason: "connect", err: s.idleErr(dog, err)}
	}
	defer resp.Body.Close()
	leader := s.setLeader(leaderHost)
	body := &kickingReader{r: resp.Body, dog: dog}
	rr := newRecordReader(body, maxMesosRecord)
	defer s.c.metrics.mesosConnected.Set(0)
	for {
		rec, err := rr.Next()
		if err != nil {
			r.reason = "ended"
			var re *RecordError
			if errors.As(err, &re) {
				r.reason = "framing"
			} else if err != io.EOF {
				r.reason, err = "read", s.idleErr(dog, err)
			}
			r.err = err
			return r
		}
		r.events++
		ev, err := decodeMesosEvent(rec)
		if err != nil {
			s.c.metrics.mesosEvents.WithLabelValues(mesosEventLabel(ev.Type), resultError).Inc()
			s.c.log.Warn("bad mesos event skipped", "err", err)
			continue
		}
		if ev.Type == mesosSubscribed {
			r.subscribed = true
			s.c.metrics.mesosConnected.Set(1)
			if hb := ev.Subscribed.HeartbeatIntervalSeconds; hb > 0 {
				d := time.Duration(hb*float64(time.Second)) * heartbeatsMissed
				dog.swap(newWatchdog(d, cancel))
			}
		}
		s.apply(&ev, leader, sink)
	}
}

// setLeader records the master subscribed to and returns its address when
// its host is an IP literal.
func (s *MesosStream) setLeader(hostport string) netip.AddrPort {
	h := masterHost{host: hostport}
	if host, port, err := net.SplitHostPort(hostport); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		h = masterHost{host: host, port: uint16(p)}
	}
	s.mu.Lock()
	s.leader = h
	s.mu.Unlock()
	if ip, ok := parseIP(h.host); ok && h.port != 0 {
		return netip.AddrPortFrom(ip, h.port)
	}
	return netip.AddrPort{}
}

// subscribeRefused reports whether a status answering SUBSCRIBE means the
// master will not stream to us: no operator API (404, 501), or /api/v1 in
// the read-write authentication realm (--authenticate_http_readwrite)
// while our credentials only read (401, 403): /master/state, read-only,
// may still answer.
func subscribeRefused(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusNotImplemented, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// idleErr reports a cancelled request as the watchdog's doing when it was.
func (s *MesosStream) idleErr(dog *swappableWatchdog, err error) error {
	if dog.fired() {
		return fmt.Errorf("%w: no byte from the mesos master in time (heartbeats stopped)", errIdleTimeout)
	}
	return err
}

// statusError is an unexpected HTTP status.
type statusError struct {
	code int
	text string
}

func (e *statusError) Error() string { return e.text }

// subscribe sends SUBSCRIBE and follows a standby master's 307 itself, so
// that the credentials go along (net/http drops Authorization on a
// redirect to another host: golang/go#65065) and a scheme-less Location
// ("//10.0.0.1:5050/api/v1", apache/mesos src/master/http.cpp redirect)
// keeps the request's scheme. It returns the 200 response and the
// leader's host:port.
func (s *MesosStream) subscribe(ctx context.Context, base string) (*http.Response, string, error) {
	u, err := url.Parse(base + mesosAPIPath)
	if err != nil {
		return nil, "", fmt.Errorf("mesos url: %w", err)
	}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(subscribeBody))
		if err != nil {
			return nil, "", fmt.Errorf("request %s: %w", redactURL(u), err)
		}
		// Exactly this Content-Type: the master compares it as a string
		// (apache/mesos src/master/http.cpp Master::Http::api).
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := s.c.mesosAPI.Do(req)
		if err != nil {
			return nil, "", err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return resp, u.Host, nil
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusMovedPermanently:
			loc := resp.Header.Get("Location")
			resp.Body.Close()
			next, err := u.Parse(loc)
			switch {
			case err != nil || loc == "":
				return nil, "", fmt.Errorf("POST %s: %s with a bad Location", redactURL(u), resp.Status)
			case hop+1 >= maxRedirects:
				return nil, "", fmt.Errorf("POST %s: stopped after %d redirects", redactURL(u), maxRedirects)
			case u.Scheme == "https" && next.Scheme != "https":
				return nil, "", fmt.Errorf("refusing redirect from https to %s", redactURL(next))
			}
			next.User = nil
			u = next
		default:
			resp.Body.Close()
			return nil, "", &statusError{code: resp.StatusCode, text: fmt.Sprintf("POST %s: %s", redactURL(u), resp.Status)}
		}
	}
}

// masterVersion reads GET /version ({"version":"1.4.0",…}); ok is false
// when it cannot tell.
func (s *MesosStream) masterVersion(ctx context.Context, base string) (string, bool) {
	var v struct {
		Version string `json:"version"`
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	err := s.c.get(ctx, "mesos_version", []string{base}, new(atomic.Int32), mesosVersionPath, func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&v)
	})
	return v.Version, err == nil && v.Version != ""
}

// versionAtLeast reports whether version "1.4.0" is at least major.minor;
// an unparsable version is taken to be recent.
func versionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return true
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// apply takes one event into the mirror and hands the change to sink
// without waiting: the read loop never blocks on discovery (a stream read
// too slowly makes the master buffer it without bound, MESOS-7748).
func (s *MesosStream) apply(ev *mesosEventJSON, leader netip.AddrPort, sink Sink) {
	now := s.now()
	result := resultOK
	defer func() { s.c.metrics.mesosEvents.WithLabelValues(mesosEventLabel(ev.Type), result).Inc() }()
	marathonID := s.c.knownMarathonID()
	classified := marathonID != "" || len(s.c.marathonURLs) == 0
	var (
		key    taskKey
		known  = true
		resync string
	)
	s.mu.Lock()
	switch ev.Type {
	case mesosSubscribed:
		s.mirror.subscribed(&ev.Subscribed.GetState, leader, now, s.c.failoverGrace)
		resync = "subscribed"
	case mesosTaskAdded:
		key = s.mirror.taskAdded(&ev.TaskAdded.Task)
	case mesosTaskUpdated:
		key, known = s.mirror.taskUpdated(ev.TaskUpdated)
	case mesosAgentAdded:
		s.mirror.agentAdded(ev.AgentAdded.Agent, now)
		resync = "agent added"
	case mesosAgentRemoved:
		s.mirror.agentRemoved(ev.AgentRemoved.AgentID.Value)
		resync = "agent removed"
	case mesosFrameworkAdded:
		s.mirror.frameworkAdded(ev.FrameworkAdded.Framework.FrameworkInfo)
		resync = "framework added"
	case mesosFrameworkUpdated:
		s.mirror.frameworkAdded(ev.FrameworkUpdated.Framework.FrameworkInfo)
		resync = "framework updated"
	case mesosFrameworkRemoved:
		s.mirror.frameworkRemoved(ev.FrameworkRemoved.FrameworkInfo.ID.Value)
		resync = "framework removed"
	case mesosHeartbeat:
		s.mu.Unlock()
		return
	default:
		s.mu.Unlock()
		result = resultUnknown
		return
	}
	s.seq++
	seq := s.seq
	var (
		app discovery.App
		id  string
		ok  bool
	)
	if key != (taskKey{}) {
		app, id, ok = s.mirror.app(key, marathonID)
	}
	s.mu.Unlock()

	switch {
	case ev.Type == mesosSubscribed:
		s.subscribedN.Add(1)
		s.decide()
		s.polling.Store(false)
		s.c.log.Info("mesos stream subscribed", "leader", leader)
	case !known:
		// TASK_UPDATED of a task never added: the mirror missed events.
		result = resultError
		s.c.log.Debug("mesos update for an unknown task", "framework_id", key.framework, "task_id", key.task)
		return
	}
	switch {
	case resync != "":
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: resync})
	case !classified:
		// Marathon's identity is not known: the snapshot that follows
		// learning it classifies this task.
	case ok:
		sink.Update(discovery.Update{Source: MesosSource, Kind: discovery.UpdateAppReplace, App: app, Seq: seq, Received: now})
	case marathonID == "" || key.framework != marathonID:
		sink.Update(discovery.Update{Source: MesosSource, Kind: discovery.UpdateAppRemoved, AppID: id, Seq: seq, Received: now})
	}
}

// mesosEventLabel bounds the metrics' type label to the known types.
func mesosEventLabel(t string) string {
	switch t {
	case mesosSubscribed, mesosHeartbeat, mesosTaskAdded, mesosTaskUpdated, mesosAgentAdded, mesosAgentRemoved,
		mesosFrameworkAdded, mesosFrameworkUpdated, mesosFrameworkRemoved:
		return t
	}
	return otherEventType
}

// swappableWatchdog is the session's current watchdog: the first one
// waits for SUBSCRIBED, the next one for heartbeats at the interval
// SUBSCRIBED announced.
type swappableWatchdog struct {
	cur      atomic.Pointer[watchdog]
	anyFired atomic.Bool
}

func (d *swappableWatchdog) swap(w *watchdog) {
	if old := d.cur.Swap(w); old != nil && old.stop() {
		d.anyFired.Store(true)
	}
}

func (d *swappableWatchdog) kick() { d.cur.Load().kick() }

func (d *swappableWatchdog) stop() {
	if d.cur.Load().stop() {
		d.anyFired.Store(true)
	}
}

func (d *swappableWatchdog) fired() bool { return d.anyFired.Load() || d.cur.Load().fired.Load() }

// kickingReader feeds the watchdog with every byte read.
type kickingReader struct {
	r   io.Reader
	dog *swappableWatchdog
}

func (k *kickingReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.dog.kick()
	}
	return n, err
}

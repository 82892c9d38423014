package marathon

// The Mesos operator API's event stream: POST /api/v1 {"type":"SUBSCRIBE"}
// on the leading master (shared/facts/mesos-operator-api-and-pods.md A).
// Its SUBSCRIBED snapshot and the events after it keep a mirror of the
// master (mesosmirror.go), which the Mesos source serves instead of polling
// /master/state; every task event becomes an update of that source.

import (
	"context"
	"fmt"
	"net/netip"
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
	// in one record: 5–60 MB on large clusters, 100 MB at 100,000 tasks.
	// It is read as a stream (mesoseventread.go), so the bound costs no
	// memory: it only stops a length that makes no sense.
	maxMesosRecord = 1 << 30
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

	mu     sync.Mutex // guards mirror, seq, leader, finished and cancel
	mirror *mesosMirror
	seq    uint64 // bumped with every change of the mirror
	leader masterHost
	// finished is what the last Snapshot added to the mirror's cluster,
	// which the agent and framework events' cluster updates repeat.
	finished struct {
		done    bool
		leader  netip.AddrPort
		masters []netip.Addr
	}
	// cancel ends the current session (resubscribe); nil between them.
	cancel       context.CancelFunc
	resubscribed atomic.Bool // the session was ended to resubscribe
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
	// The read loop waits for the lock: only the maps are copied under it
	// (their tasks are never changed in place); the Apps are built after.
	s.mu.Lock()
	mirror := s.mirror.clone()
	seq, leader := s.seq, s.leader
	s.mu.Unlock()
	st, agents := mirror.state(marathonID)
	st.Seq = seq
	if !st.Cluster.Leader.IsValid() && leader.host != "" {
		// The master is configured by name (http://leader.mesos:5050).
		rctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		if ip := s.c.resolver.resolve(rctx, leader.host); ip.IsValid() {
			st.Cluster.Leader = netip.AddrPortFrom(ip, leader.port)
		}
		cancel()
	}
	st = s.c.finishMesosState(ctx, st, agents)
	s.mu.Lock()
	s.finished.done, s.finished.leader, s.finished.masters = true, st.Cluster.Leader, st.Cluster.Masters
	s.mu.Unlock()
	return st, nil
}

// Run follows the operator stream of the Mesos URLs in turn until ctx
// ends, feeding sink with updates of the source named MesosSource. It
// reconnects with capped, jittered backoff and resyncs on every
// subscription; it asks for a resync as well when Marathon's framework ID
// changes (the tasks are classified anew, and the stream subscribes again
// when the framework it left out before is no longer Marathon's) and when
// tasks held through a master failover are given up. It returns nil when
// ctx is cancelled.
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

// follow leaves the tasks of the followed Marathon's framework out of the
// mirror once its ID is known or changed. The tasks of the framework
// followed before were never kept: they are read again from a new
// subscription (a reinstalled Marathon leaves the old one's tasks to the
// Mesos source).
func (s *MesosStream) follow() {
	id := s.c.knownMarathonID()
	s.mu.Lock()
	prev := s.mirror.marathonID
	if prev != id {
		s.mirror.follow(id)
		s.seq++
	}
	cancel := s.cancel
	s.mu.Unlock()
	if prev != "" && prev != id && cancel != nil {
		s.resubscribed.Store(true)
		cancel()
	}
}

// identityChanged makes watch call follow.
func (s *MesosStream) identityChanged() {
	select {
	case s.c.identity <- struct{}{}:
	default:
	}
}

func (s *MesosStream) decide() { s.decideOnce.Do(func() { close(s.decided) }) }

// watch asks for a resync of the Mesos source when Marathon's framework ID
// changes, when held tasks expire, and every Config.MesosInterval while
// the master is polled (a followed stream needs no more than the
// reconciler's periodic resync).
func (s *MesosStream) watch(ctx context.Context, sink Sink) {
	every := min(time.Second, s.c.failoverGrace/4)
	tick := time.NewTicker(every)
	defer tick.Stop()
	poll := time.NewTicker(s.c.mesosEvery)
	defer poll.Stop()
	resync := func(reason string) {
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: reason})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.c.identity:
			s.follow()
			resync("marathon framework id")
		case <-poll.C:
			if s.polling.Load() {
				resync("poll")
			}
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

// mesosEventLabel bounds the metrics' type label to the known types.
func mesosEventLabel(t string) string {
	switch t {
	case mesosSubscribed, mesosHeartbeat, mesosTaskAdded, mesosTaskUpdated, mesosAgentAdded, mesosAgentRemoved,
		mesosFrameworkAdded, mesosFrameworkUpdated, mesosFrameworkRemoved:
		return t
	}
	return otherEventType
}

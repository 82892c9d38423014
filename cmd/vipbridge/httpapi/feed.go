package httpapi

// Feed: follows the published Tables, the sources' status and the
// dataplane's state, keeps the change log, and fans each change out to the
// clients of GET /v1/watch through bounded queues.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/internal/metrics"
	"github.com/vipbridge/vipbridge/lb"
)

// FeedConfig configures NewFeed.
type FeedConfig struct {
	// Tables supplies tables and status; required. If it also has
	// Subscribe (as *discovery.Reconciler), every publish wakes the feed;
	// otherwise it looks every Poll.
	Tables Tables
	// Dataplane, if not nil, adds each VIP's kernel state.
	Dataplane Dataplane
	// Zone is the zone of VIP names; "" means DefaultZone.
	Zone string
	// Poll is how often the feed looks at the status and the dataplane
	// (and the table, without Subscribe); zero means 1s.
	Poll time.Duration
	// ClientQueue is how many events a watch client may have queued; a
	// client that falls further behind is dropped and told. Zero means 64.
	ClientQueue int
	// MaxClients bounds concurrent watch clients; zero means 64.
	MaxClients int
	// Registerer, if not nil, receives the feed's metrics.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// publisher is the part of *discovery.Reconciler that says when a Table
// is published.
type publisher interface {
	Subscribe() (<-chan struct{}, func())
}

// errTooManyWatchers is returned by subscribe at MaxClients.
var errTooManyWatchers = errors.New("too many watch clients")

// Feed is the source of GET /v1/watch. Run follows the state; the API's
// handlers subscribe clients. A client never blocks the feed: each has a
// queue of ClientQueue events, and one whose queue is full is dropped.
type Feed struct {
	tables      Tables
	dataplane   Dataplane
	zone        string
	poll        time.Duration
	clientQueue int
	maxClients  int
	log         *slog.Logger
	clientsG    prometheus.Gauge
	dropped     prometheus.Counter

	// done is closed when Run returns: clients end.
	done     chan struct{}
	doneOnce sync.Once

	mu      sync.Mutex
	state   feedState // as of the last event sent
	changes changeLog
	clients map[*watchClient]struct{}
}

// feedState is what the feed last sent: a snapshot renders from it. Its
// maps and slices are never changed once set, only replaced.
type feedState struct {
	table  *discovery.Table
	dp     map[discovery.VIPKey]dpState // nil without a dataplane
	status statusDoc
}

// watchClient is one subscribed client.
type watchClient struct {
	events chan []byte
	// dropped is closed when the feed drops the client.
	dropped chan struct{}
}

// NewFeed returns a Feed; Run starts it. It fails only if its metrics
// cannot be registered.
func NewFeed(cfg FeedConfig) (*Feed, error) {
	f := &Feed{
		tables: cfg.Tables, dataplane: cfg.Dataplane, zone: cfg.Zone,
		poll: cfg.Poll, clientQueue: cfg.ClientQueue, maxClients: cfg.MaxClients,
		log:     cfg.Logger,
		done:    make(chan struct{}),
		clients: make(map[*watchClient]struct{}),
		clientsG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vipbridge_http_watch_clients", Help: "Clients following GET /v1/watch.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vipbridge_http_watch_dropped_total", Help: "Watch clients dropped because they fell behind.",
		}),
	}
	f.zone = cmp.Or(f.zone, DefaultZone)
	f.poll = cmp.Or(f.poll, time.Second)
	f.clientQueue = cmp.Or(f.clientQueue, 64)
	f.maxClients = cmp.Or(f.maxClients, 64)
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("component", "http")
	if err := metrics.Register(cfg.Registerer, f.clientsG, f.dropped); err != nil {
		return nil, fmt.Errorf("new watch feed: register metrics: %w", err)
	}
	return f, nil
}

// Run follows the state until ctx ends, then ends every client's stream
// and returns nil.
func (f *Feed) Run(ctx context.Context) error {
	defer f.doneOnce.Do(func() { close(f.done) })
	var wake <-chan struct{}
	if p, ok := f.tables.(publisher); ok {
		ch, stop := p.Subscribe()
		defer stop()
		wake = ch
	}
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		f.step(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}

// step compares the state with what was last sent and sends the
// difference to every client.
func (f *Feed) step(now time.Time) {
	t := f.tables.Table()
	if t == nil {
		t = &discovery.Table{}
	}
	next := feedState{table: t, status: newStatusDoc(f.tables.Status())}
	if f.dataplane != nil {
		next.dp = dataplaneStates(t, f.dataplane.State())
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.state
	d := watchDelta{Now: now, Generation: t.Generation, Built: t.Built}
	var changes []changeDoc
	upserted := make(map[discovery.VIPKey]bool)
	if prev.table != t {
		changes = f.diffTables(prev.table, next, now, &d, upserted)
		if prev.table == nil || !slices.Equal(prev.table.Errors, t.Errors) {
			d.Errors = nonNil(t.Errors)
		}
	}
	if next.dp != nil {
		changes = append(changes, f.diffDataplane(prev, next, now, &d, upserted)...)
	}
	if !prev.status.equal(&next.status) {
		d.Status = &next.status
	}
	f.state = next
	for _, c := range changes {
		f.changes.add(c)
	}
	d.Changes = changes[max(0, len(changes)-changeLogSize):]
	if !d.empty() && len(f.clients) > 0 {
		f.broadcast(sseEvent("delta", d))
	}
}

// diffTables adds to d the VIPs that changed from prev to next.table, and
// returns the changes to log. A first table is logged as one change.
func (f *Feed) diffTables(prev *discovery.Table, next feedState, now time.Time, d *watchDelta, upserted map[discovery.VIPKey]bool) []changeDoc {
	t := next.table
	var prevVIPs discovery.VIPList
	if prev != nil {
		prevVIPs = prev.VIPs
	}
	var changes []changeDoc
	diffVIPs(prevVIPs, t.VIPs, func(k discovery.VIPKey, old, cur *discovery.VIP) {
		var r watchVIP
		if cur == nil {
			r = f.renderVIP(prev, old, nil)
			d.Removes = append(d.Removes, r.ID)
		} else {
			r = f.renderVIP(t, cur, next.dataplane(k))
			d.Upserts = append(d.Upserts, r)
			upserted[k] = true
		}
		if prev != nil {
			kind, detail := describeChange(old, cur)
			changes = append(changes, changeDoc{At: now, Generation: t.Generation, Kind: kind,
				VIP: r.VIP, Protocol: k.Protocol.String(), Detail: detail})
		}
	})
	if prev == nil && t.VIPs.Len() > 0 {
		changes = append(changes, changeDoc{At: now, Generation: t.Generation, Kind: changeLoaded,
			Detail: fmt.Sprintf("%d VIPs, %d backends", t.VIPs.Len(), t.VIPs.Backends())})
	}
	return changes
}

// diffDataplane adds to d the VIPs whose kernel state moved (and that the
// table did not change already), and returns the changes to log.
func (f *Feed) diffDataplane(prev, next feedState, now time.Time, d *watchDelta, upserted map[discovery.VIPKey]bool) []changeDoc {
	var changes []changeDoc
	for v := range next.table.VIPs.All() { // in key order, unlike the map
		k := v.Key
		cur := next.dp[k]
		old, had := prev.dp[k]
		if (had && old == cur) || upserted[k] {
			continue
		}
		r := f.renderVIP(next.table, v, next.dataplane(k))
		d.Upserts = append(d.Upserts, r)
		if had {
			detail := string(old.Status) + " → " + string(cur.Status)
			if cur.Reason != "" {
				detail += ": " + cur.Reason
			}
			changes = append(changes, changeDoc{At: now, Generation: next.table.Generation, Kind: changeDataplane,
				VIP: r.VIP, Protocol: k.Protocol.String(), Detail: detail})
		}
	}
	return changes
}

// dpState is a VIP's kernel state in brief: comparable, so that the feed
// can tell when it moved.
type dpState struct {
	Status lb.Status
	Reason string
}

// dataplaneStates sums up states for every VIP of t.
func dataplaneStates(t *discovery.Table, states map[discovery.VIPKey][]lb.ServiceState) map[discovery.VIPKey]dpState {
	if states == nil {
		states = map[discovery.VIPKey][]lb.ServiceState{}
	}
	out := make(map[discovery.VIPKey]dpState, t.VIPs.Len())
	for v := range t.VIPs.All() {
		d := dataplaneOf(states, v.Key, false)
		out[v.Key] = dpState{Status: d.Status, Reason: d.Reason}
	}
	return out
}

// dataplane returns the kernel state of k to render, nil without a
// dataplane.
func (s *feedState) dataplane(k discovery.VIPKey) *dataplaneDoc {
	if s.dp == nil {
		return nil
	}
	d := s.dp[k]
	return &dataplaneDoc{Status: d.Status, Reason: d.Reason}
}

// subscribe registers a client and returns it with the state its first
// event (the snapshot) shows; every later change reaches its queue.
func (f *Feed) subscribe() (*watchClient, feedState, []changeDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.clients) >= f.maxClients {
		return nil, feedState{}, nil, errTooManyWatchers
	}
	c := &watchClient{events: make(chan []byte, f.clientQueue), dropped: make(chan struct{})}
	f.clients[c] = struct{}{}
	f.clientsG.Inc()
	return c, f.state, f.changes.list(), nil
}

// unsubscribe forgets c; it may have been dropped already.
func (f *Feed) unsubscribe(c *watchClient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clients[c]; ok {
		delete(f.clients, c)
		f.clientsG.Dec()
	}
}

// broadcast queues ev for every client, dropping those whose queue is
// full. The caller holds f.mu.
func (f *Feed) broadcast(ev []byte) {
	for c := range f.clients {
		select {
		case c.events <- ev:
		default:
			f.drop(c)
		}
	}
}

// drop forgets c and tells its handler, which sends the event "dropped"
// and ends the stream. The caller holds f.mu.
func (f *Feed) drop(c *watchClient) {
	delete(f.clients, c)
	close(c.dropped)
	f.clientsG.Dec()
	f.dropped.Inc()
	f.log.Warn("dropped slow watch client", "queue", f.clientQueue)
}

// snapshot renders the first event of a client from st and changes.
func (f *Feed) snapshot(st feedState, changes []changeDoc, now time.Time) []byte {
	t := st.table
	if t == nil {
		t = &discovery.Table{}
	}
	doc := watchSnapshot{
		Now: now, Zone: f.zone, Generation: t.Generation, Built: t.Built, Dataplane: f.dataplane != nil,
		VIPs: make([]watchVIP, 0, t.VIPs.Len()), Errors: nonNil(t.Errors), Status: st.status, Changes: changes,
	}
	if doc.Status.Sources == nil {
		doc.Status.Sources = []sourceDoc{}
	}
	for v := range t.VIPs.All() {
		doc.VIPs = append(doc.VIPs, f.renderVIP(t, v, st.dataplane(v.Key)))
	}
	return sseEvent("snapshot", doc)
}

// sseEvent renders one server-sent event: its name and v as one line of
// JSON (json.Marshal escapes no newline into the output).
func sseEvent(name string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		name, data = "error", []byte(`{"error":"encode event"}`)
	}
	var b bytes.Buffer
	b.Grow(len(name) + len(data) + 16)
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

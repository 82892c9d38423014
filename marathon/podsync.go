package marathon

// Pods in the Marathon source: read at every resync beside the apps, and
// refetched one at a time when the event stream says one changed. Pod
// events carry no definition and a pod's status_update_events describe one
// container's task, not the instance vipbridge models, so an event about a
// pod is never applied as it is: it marks the pod for a fetch of
// GET /v2/pods/{id}::status by a side goroutine, and the stream's reader
// never waits for it.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// Paths of the pod API (docs/docs/rest-api/public/api/v2/pods.raml, since
// Marathon 1.4).
const (
	podsStatusPath = "/v2/pods/::status"
	podsPrefix     = "/v2/pods"
)

// resyncPodFetch is the Reason of the resync asked for when a pod could not
// be fetched after an event.
const resyncPodFetch = "pod fetch failed"

// isNotFound reports whether err holds a 404 answer.
func isNotFound(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == http.StatusNotFound
}

// podTracker knows which app IDs are pods, with the instances and their
// times each had when last read, and which pods wait for a fetch.
type podTracker struct {
	mu      sync.Mutex
	pods    map[string]map[string]time.Time // pod id → instance id → Task.Updated
	pending map[string]time.Time            // pod id → when the first event asking for it arrived
	absent  bool                            // Marathon answered 404 for the pods (before 1.4)
	kick    chan struct{}
}

func newPodTracker() *podTracker {
	return &podTracker{pods: map[string]map[string]time.Time{}, pending: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// instances returns the instance IDs and times of a pod's tasks.
func instances(app *discovery.App) map[string]time.Time {
	m := make(map[string]time.Time, len(app.Tasks))
	for _, t := range app.Tasks {
		m[t.ID] = t.Updated
	}
	return m
}

// reset makes pods (a snapshot's) the known pods.
func (p *podTracker) reset(pods []discovery.App) {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.pods)
	for i := range pods {
		p.pods[pods[i].ID] = instances(&pods[i])
	}
}

// set records a fetched pod.
func (p *podTracker) set(pod *discovery.App) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pods[pod.ID] = instances(pod)
}

// remove forgets a pod.
func (p *podTracker) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pods, id)
}

// want marks pod id for a fetch.
func (p *podTracker) want(id string, received time.Time) {
	p.mu.Lock()
	if _, ok := p.pending[id]; !ok {
		p.pending[id] = received
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// take returns the pods waiting for a fetch and clears them.
func (p *podTracker) take() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pending
	p.pending = map[string]time.Time{}
	return out
}

// route returns the updates of one event that are not about pods, and
// marks the pods the event is about for a fetch: updates naming a known or
// pending pod, and pod_created/updated/deleted_event.
func (p *podTracker) route(eventType string, data []byte, updates []discovery.Update, received time.Time) []discovery.Update {
	if id, ok := podEventID(eventType, data); ok {
		p.want(id, received)
		return updates
	}
	if len(updates) == 0 {
		return updates
	}
	p.mu.Lock()
	out := updates[:0]
	var podIDs []string
	for _, u := range updates {
		id := updateAppID(u)
		_, known := p.pods[id]
		_, waiting := p.pending[id]
		if id != "" && (known || waiting) {
			podIDs = append(podIDs, id)
			continue
		}
		out = append(out, u)
	}
	p.mu.Unlock()
	for _, id := range podIDs {
		p.want(id, received)
	}
	return out
}

func updateAppID(u discovery.Update) string {
	if u.AppID != "" {
		return u.AppID
	}
	return u.App.ID
}

// podEventID returns the pod a pod_created_event, pod_updated_event or
// pod_deleted_event is about: its uri minus /v2/pods (Events.scala; the
// events carry no definition).
func podEventID(eventType string, data []byte) (string, bool) {
	switch eventType {
	case "pod_created_event", "pod_updated_event", "pod_deleted_event":
	default:
		return "", false
	}
	var e struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return "", false
	}
	uri := e.URI
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	rest, ok := strings.CutPrefix(uri, podsPrefix+"/")
	rest, _, _ = strings.Cut(rest, "::")
	rest = strings.Trim(rest, "/")
	if !ok || rest == "" {
		return "", false
	}
	return "/" + rest, true
}

// snapshotPods reads every pod's status for a resync; a Marathon without
// pods (404: before 1.4) has none.
func (c *Client) snapshotPods(ctx context.Context, resolve func(string) netip.Addr) ([]discovery.App, error) {
	var pods []discovery.App
	err := c.get(ctx, "pods", c.marathonURLs, &c.marathonNext, podsStatusPath, func(r io.Reader) error {
		var err error
		pods, err = DecodePods(r, resolve)
		return err
	})
	absent := isNotFound(err)
	c.pods.mu.Lock()
	was := c.pods.absent
	c.pods.absent = absent
	c.pods.mu.Unlock()
	if absent {
		if !was {
			c.log.Info("marathon serves no pods (before 1.4?), reading apps only")
		}
		pods, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	fw := c.framework()
	for i := range pods {
		pods[i].Framework = fw
	}
	c.pods.reset(pods)
	return pods, nil
}

// followPods fetches the pods events ask for until ctx ends, one at a
// time, and sends what changed to sink.
func (c *Client) followPods(ctx context.Context, sink Sink) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.pods.kick:
		}
		for id, received := range c.pods.take() {
			if ctx.Err() != nil {
				return
			}
			c.fetchPod(ctx, id, received, sink)
		}
	}
}

// fetchPod reads one pod's status and sends its changes: the definition
// (UpdateApp), each instance (UpdateTask, with health), and the end of
// every instance it had before and lacks now; a pod that is gone
// (404) is removed. A failed fetch asks for a resync, which reads every pod.
func (c *Client) fetchPod(ctx context.Context, id string, received time.Time, sink Sink) {
	rctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	var pod discovery.App
	err := c.get(ctx, "pod", c.marathonURLs, &c.marathonNext, podsPrefix+id+"::status", func(r io.Reader) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		pod, err = DecodePod(data, c.resolver.bind(rctx))
		return err
	})
	switch {
	case isNotFound(err):
		c.pods.remove(id)
		c.log.Debug("pod gone", "app_id", id)
		sink.Update(discovery.Update{Kind: discovery.UpdateAppRemoved, AppID: id, Received: received})
		return
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("pod fetch failed, resyncing", "app_id", id, "err", err)
			sink.Update(discovery.Update{Kind: discovery.UpdateResync, Reason: resyncPodFetch, Received: received})
		}
		return
	}
	pod.Framework = c.framework()
	c.pods.set(&pod)
	c.log.Debug("pod fetched", "app_id", pod.ID, "instances", len(pod.Tasks))
	sink.Update(podUpdate(pod, received))
}

// podUpdate makes the model's pod what a fetch read, definition and
// instances: the status of a pod is the whole truth about it, so an
// instance the model has and the fetch lacks (known from a snapshot, or
// from a fetch before) goes with it.
func podUpdate(pod discovery.App, received time.Time) discovery.Update {
	return discovery.Update{Kind: discovery.UpdateAppReplace, AppID: pod.ID, App: pod, Received: received}
}

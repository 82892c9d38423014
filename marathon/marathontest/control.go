package marathontest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// launch starts one task of a: TASK_STAGING then TASK_RUNNING, each with a
// status_update_event (and instance_changed_event in the ≥1.5 shape); for
// apps with health checks the first result (healthy) follows. The caller
// holds s.mu (or owns s exclusively during Start).
func (s *Server) launch(a *app, now time.Time) error {
	t, err := s.c.newTask(a, now)
	if err != nil {
		return err
	}
	s.publishTask(t, now)
	t.setState("TASK_RUNNING", now)
	s.publishTask(t, now)
	if a.spec.HealthChecks {
		s.publish(s.c.healthEvents(t, t.setHealth(true, now))...)
	}
	return nil
}

// publishTask publishes the events of t's current state.
func (s *Server) publishTask(t *task, now time.Time) {
	s.publish(s.c.statusUpdateEvent(t, now))
	s.publish(s.c.instanceChangedEvent(t, now)...)
}

// kill ends t: TASK_KILLING (when graceful) then TASK_KILLED, and removes
// it from a. The caller holds s.mu.
func (s *Server) kill(a *app, t *task, graceful bool, now time.Time) {
	if graceful {
		t.setState("TASK_KILLING", now)
		s.publishTask(t, now)
	}
	t.setState("TASK_KILLED", now)
	s.publishTask(t, now)
	s.c.removeTask(a, t)
}

// AddApp deploys a new app with spec.Instances running tasks, as a POST to
// /v2/apps would: api_post_event, the tasks' status updates, then
// deployment_success.
func (s *Server) AddApp(spec AppSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	a, err := s.c.addApp(spec, now)
	if err != nil {
		return fmt.Errorf("add app: %w", err)
	}
	s.publish(s.c.apiPostEvent(a, "/v2/apps", now))
	for range spec.Instances {
		if err := s.launch(a, now); err != nil {
			return fmt.Errorf("add app %s: %w", spec.ID, err)
		}
	}
	s.publish(s.c.deploymentSuccess(a.spec.ID, now))
	return nil
}

// ScaleApp sets the number of instances of app id, as a PUT to
// /v2/apps/{id} would: api_post_event; new tasks go TASK_STAGING →
// TASK_RUNNING; surplus tasks (youngest first) go TASK_KILLING →
// TASK_KILLED; then deployment_success.
func (s *Server) ScaleApp(id string, n int) error {
	if n < 0 {
		return fmt.Errorf("scale app %s: negative instances %d", id, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.c.apps[id]
	if !ok {
		return fmt.Errorf("scale app %s: %w", id, errNotFound)
	}
	now := s.now()
	a.spec.Instances = n
	a.version, a.lastScaling = now, now
	s.publish(s.c.apiPostEvent(a, "/v2/apps"+id, now))
	for len(a.tasks) < n {
		if err := s.launch(a, now); err != nil {
			return fmt.Errorf("scale app %s: %w", id, err)
		}
	}
	for len(a.tasks) > n {
		s.kill(a, a.tasks[len(a.tasks)-1], true, now)
	}
	s.publish(s.c.deploymentSuccess(id, now))
	return nil
}

// KillTask kills one task (by task or instance id) with a TASK_KILLED
// status update. No replacement is launched: the app keeps fewer tasks
// than its instances until ScaleApp.
func (s *Server) KillTask(taskID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, t := s.c.findTask(taskID)
	if t == nil {
		return fmt.Errorf("kill task %s: %w", taskID, errNotFound)
	}
	s.kill(a, t, false, s.now())
	return nil
}

// SetHealth records a health check result for a task (by task or instance
// id), updates its healthCheckResults and emits
// health_status_changed_event and instance_health_changed_event.
func (s *Server) SetHealth(taskID string, healthy bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t := s.c.findTask(taskID)
	if t == nil {
		return fmt.Errorf("set health of %s: %w", taskID, errNotFound)
	}
	now := s.now()
	s.publish(s.c.healthEvents(t, t.setHealth(healthy, now))...)
	return nil
}

// DeleteApp removes app id: its tasks go TASK_KILLING → TASK_KILLED, then
// app_terminated_event.
func (s *Server) DeleteApp(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.c.apps[id]
	if !ok {
		return fmt.Errorf("delete app %s: %w", id, errNotFound)
	}
	now := s.now()
	for len(a.tasks) > 0 {
		s.kill(a, a.tasks[len(a.tasks)-1], true, now)
	}
	delete(s.c.apps, id)
	s.c.sorted = nil
	s.publish(appTerminatedEvent(id, now))
	return nil
}

// Emit sends an arbitrary event to every stream subscribed to eventType,
// with data written as is (split into several data lines at newlines): for
// unknown, malformed or oversized events. State is not changed.
func (s *Server) Emit(eventType string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publish(event{Type: eventType, Data: slices.Clone(data), raw: true})
}

// EmitStatus sends n status_update_events for running tasks, round robin,
// restating their current state (TASK_RUNNING, same ports): a burst that
// changes nothing, for benchmarks of the event path. Unlike other events it
// waits for room in slow streams instead of dropping them. It returns the
// number sent: 0 when no task is running.
func (s *Server) EmitStatus(n int) int {
	s.mu.Lock()
	now := s.now()
	var evs []event
	for _, a := range s.c.sortedApps() {
		for _, t := range a.tasks {
			if t.state == "TASK_RUNNING" && len(evs) < n {
				evs = append(evs, s.c.statusUpdateEvent(t, now))
			}
		}
	}
	s.mu.Unlock()
	if len(evs) == 0 {
		return 0
	}
	for i := range n {
		s.publishBlocking(evs[i%len(evs)])
	}
	return n
}

// Apps returns the ground truth: every app with its tasks, sorted by id.
func (s *Server) Apps() []App {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []App
	for _, a := range s.c.sortedApps() {
		out = append(out, s.c.truth(a))
	}
	return out
}

// App returns the ground truth of one app.
func (s *Server) App(id string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.c.apps[id]
	if !ok {
		return App{}, false
	}
	return s.c.truth(a), true
}

// Framework is Marathon's Mesos framework name, as reported in /v2/info.
func (s *Server) Framework() string { return s.c.framework }

// TaskIDs returns the ids of app id's tasks in launch order.
func (s *Server) TaskIDs(id string) []string {
	a, ok := s.App(id)
	if !ok {
		return nil
	}
	ids := make([]string, len(a.Tasks))
	for i, t := range a.Tasks {
		ids[i] = t.ID
	}
	return ids
}

// appIDs returns the sorted app ids.
func (s *Server) appIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.c.apps))
	for id := range s.c.apps {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, strings.Compare)
	return ids
}

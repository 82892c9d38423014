package marathontest

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// SizedScenario returns a scenario for load tests: apps host-networked apps
// "/load/app<n>", each with tasksPerApp instances and one TCP port labelled
// VIP_0=/load/app<n>:80, spread round robin over enough loopback agents
// (127.0.<x>.<y>) that no agent runs more than 200 tasks.
func SizedScenario(apps, tasksPerApp int) *Scenario {
	nAgents := max(1, (apps*tasksPerApp+199)/200)
	sc := &Scenario{Agents: make([]Agent, nAgents), Apps: make([]AppSpec, apps)}
	for i := range sc.Agents {
		sc.Agents[i].IP = netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)})
	}
	for i := range sc.Apps {
		sc.Apps[i] = AppSpec{
			ID:        fmt.Sprintf("/load/app%05d", i),
			Instances: tasksPerApp,
			Ports:     []PortSpec{{Labels: map[string]string{"VIP_0": fmt.Sprintf("/load/app%05d:80", i)}}},
		}
	}
	return sc
}

// EmitSteady sends status_update_events restating running tasks (as
// EmitStatus does, from up to 1,000 running tasks taken once) at perSecond,
// in 1 ms ticks, until ctx ends, and returns how many it sent: the steady
// background traffic of a propagation benchmark.
func (s *Server) EmitSteady(ctx context.Context, perSecond int) int {
	s.mu.Lock()
	now := s.now()
	var evs []event
	for _, a := range s.c.sortedApps() {
		for _, t := range a.tasks {
			if t.state == "TASK_RUNNING" && len(evs) < 1000 {
				evs = append(evs, s.c.statusUpdateEvent(t, now))
			}
		}
	}
	s.mu.Unlock()
	if len(evs) == 0 {
		return 0
	}
	const tick = time.Millisecond
	start := time.Now()
	tk := time.NewTicker(tick)
	defer tk.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return sent
		case now := <-tk.C:
			// Catch up with the schedule after a slow tick.
			for due := int(now.Sub(start).Seconds()*float64(perSecond)) - sent; due > 0; due-- {
				s.publishBlocking(evs[sent%len(evs)])
				sent++
			}
		}
	}
}

// FlipTask starts one task of app id when it has none running (TASK_STAGING
// then TASK_RUNNING status updates), else kills its first task at once
// (TASK_KILLED): status updates only, without the deployment events of
// ScaleApp, which make the daemon resync. It reports whether a task now
// runs.
func (s *Server) FlipTask(id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.c.apps[id]
	if !ok {
		return false, fmt.Errorf("flip task: no app %s", id)
	}
	now := s.now()
	if len(a.tasks) > 0 {
		s.kill(a, a.tasks[0], false, now)
		return false, nil
	}
	if err := s.launch(a, now); err != nil {
		return false, fmt.Errorf("flip task: %w", err)
	}
	return true, nil
}

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

// EmitSteady sends status_update_events restating running tasks (see
// EmitStatus) at perSecond, in 1 ms ticks, until ctx ends, and returns how
// many it sent: the steady background traffic of a propagation benchmark.
func (s *Server) EmitSteady(ctx context.Context, perSecond int) int {
	const tick = time.Millisecond
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return sent
		case now := <-t.C:
			// Catch up with the schedule after a slow tick.
			due := int(now.Sub(start).Seconds()*float64(perSecond)) - sent
			if due > 0 {
				if n := s.EmitStatus(due); n == 0 {
					return sent
				}
				sent += due
			}
		}
	}
}

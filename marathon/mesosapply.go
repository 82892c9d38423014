package marathon

// How one operator event changes the stream's mirror, and what discovery
// is told: the Apps of the tasks it changed (replaced or removed) and, for
// agent and framework events, the cluster; a resync only for SUBSCRIBED.

import (
	"net/netip"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// mesosChange is what one event changed in the mirror.
type mesosChange struct {
	// resync, when set, is why the whole source must be read again.
	resync string
	// tasks are the tasks whose App may have changed.
	tasks []taskKey
	// oldIDs are the App IDs tasks had before the change, for the changes
	// that may rename or end them (a framework renamed or removed).
	oldIDs map[taskKey]string
	// cluster says the agents or frameworks changed.
	cluster bool
	// unknown is a TASK_UPDATED of a task the mirror never had.
	unknown bool
}

// apply takes one event into the mirror and hands the change to sink
// without waiting: the read loop never blocks on discovery (a stream read
// too slowly makes the master buffer it without bound, MESOS-7748).
func (s *MesosStream) apply(ev *mesosEventJSON, leader netip.AddrPort, sink Sink) {
	now := s.now()
	result := resultOK
	defer func() { s.c.metrics.mesosEvents.WithLabelValues(mesosEventLabel(ev.Type), result).Inc() }()
	switch ev.Type {
	case mesosHeartbeat:
		return
	case mesosSubscribed, mesosTaskAdded, mesosTaskUpdated, mesosAgentAdded, mesosAgentRemoved,
		mesosFrameworkAdded, mesosFrameworkUpdated, mesosFrameworkRemoved:
	default:
		result = resultUnknown
		return
	}
	marathonID := s.c.knownMarathonID()
	classified := marathonID != "" || len(s.c.marathonURLs) == 0
	s.mu.Lock()
	ch := s.change(ev, leader, now)
	s.seq++
	seq := s.seq
	var updates []discovery.Update
	if ch.resync == "" && classified {
		updates = s.updates(ch, marathonID, seq, now)
	}
	s.mu.Unlock()

	if ev.Type == mesosSubscribed {
		s.subscribedN.Add(1)
		s.decide()
		s.polling.Store(false)
		s.c.log.Info("mesos stream subscribed", "leader", leader)
		if ev.Subscribed.Skipped != marathonID {
			s.identityChanged() // learnt while the snapshot was read
		}
	}
	if ch.unknown {
		// TASK_UPDATED of a task never added: the mirror missed events.
		result = resultError
		s.c.log.Debug("mesos update for an unknown task", "framework_id", ch.tasks[0].framework, "task_id", ch.tasks[0].task)
		return
	}
	if ch.resync != "" {
		sink.Update(discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: ch.resync})
		return
	}
	// Until Marathon's identity is known nothing is told: the snapshot
	// that follows learning it classifies every task.
	for _, u := range updates {
		sink.Update(u)
	}
}

// change applies ev to the mirror. s.mu is held.
func (s *MesosStream) change(ev *mesosEventJSON, leader netip.AddrPort, now time.Time) mesosChange {
	m := s.mirror
	switch ev.Type {
	case mesosSubscribed:
		m.subscribed(ev.Subscribed, leader, now, s.c.failoverGrace)
		return mesosChange{resync: "subscribed"}
	case mesosTaskAdded:
		return mesosChange{tasks: []taskKey{m.taskAdded(&ev.TaskAdded.Task)}}
	case mesosTaskUpdated:
		k, known := m.taskUpdated(ev.TaskUpdated)
		return mesosChange{tasks: []taskKey{k}, unknown: !known}
	case mesosAgentAdded:
		m.agentAdded(ev.AgentAdded.Agent, now)
		return mesosChange{tasks: m.agentTasks(ev.AgentAdded.Agent.AgentInfo.ID.Value), cluster: true}
	case mesosAgentRemoved:
		id := ev.AgentRemoved.AgentID.Value
		m.agentRemoved(id)
		return mesosChange{tasks: m.agentTasks(id), cluster: true}
	case mesosFrameworkAdded, mesosFrameworkUpdated:
		f := ev.FrameworkAdded
		if ev.Type == mesosFrameworkUpdated {
			f = ev.FrameworkUpdated
		}
		id := f.Framework.FrameworkInfo.ID.Value
		ch := mesosChange{cluster: true}
		if name := m.frameworkName(id); name != frameworkName(f.Framework.FrameworkInfo.Name, id) {
			ch.tasks, ch.oldIDs = m.frameworkTasks(id) // renamed: its Apps are too
		}
		m.frameworkAdded(f.Framework.FrameworkInfo)
		return ch
	case mesosFrameworkRemoved:
		id := ev.FrameworkRemoved.FrameworkInfo.ID.Value
		ch := mesosChange{cluster: true}
		ch.tasks, ch.oldIDs = m.frameworkTasks(id)
		m.frameworkRemoved(id)
		return ch
	}
	return mesosChange{}
}

// updates are what sink is told of ch: an App replaced or removed per task
// (the followed Marathon's excepted), then the cluster. s.mu is held.
func (s *MesosStream) updates(ch mesosChange, marathonID string, seq uint64, now time.Time) []discovery.Update {
	var out []discovery.Update
	for _, k := range ch.tasks {
		if marathonID != "" && k.framework == marathonID {
			continue
		}
		app, id, ok := s.mirror.app(k, marathonID)
		old, had := ch.oldIDs[k]
		if had && (old != id || !ok) {
			out = append(out, discovery.Update{Source: MesosSource, Kind: discovery.UpdateAppRemoved, AppID: old, Seq: seq, Received: now})
		}
		if ok {
			out = append(out, discovery.Update{Source: MesosSource, Kind: discovery.UpdateAppReplace, App: app, Seq: seq, Received: now})
		} else if !had {
			out = append(out, discovery.Update{Source: MesosSource, Kind: discovery.UpdateAppRemoved, AppID: id, Seq: seq, Received: now})
		}
	}
	if ch.cluster {
		out = append(out, s.clusterUpdate(marathonID, seq, now))
	}
	return out
}

// clusterUpdate is the mirror's cluster as the last Snapshot finished it
// (leader resolved, masters), and the agents' addresses handed to the
// resolver of Marathon's task hosts. Before any Snapshot it asks for one.
// s.mu is held.
func (s *MesosStream) clusterUpdate(marathonID string, seq uint64, now time.Time) discovery.Update {
	if !s.finished.done {
		return discovery.Update{Kind: discovery.UpdateResync, Source: MesosSource, Reason: "cluster"}
	}
	d := s.mirror.decoder(marathonID)
	if !d.cluster.Leader.IsValid() {
		d.cluster.Leader = s.finished.leader
	}
	d.cluster.Masters = s.finished.masters
	s.c.resolver.setAgents(d.agents)
	return discovery.Update{Kind: discovery.UpdateCluster, Source: MesosSource, Cluster: d.cluster, Seq: seq, Received: now}
}

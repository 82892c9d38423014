package marathon

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// discardSink is a Sink that keeps nothing.
type discardSink struct{ n int }

func (d *discardSink) Update(discovery.Update) { d.n++ }

// FuzzMesosEvents feeds a RecordIO stream through the reader, the event
// decoder and the mirror, as a subscription does: whatever the bytes, no
// panic, every app is well formed, and a TASK_UPDATED never invents a
// task.
func FuzzMesosEvents(f *testing.F) {
	addUpstreamSeeds(f, func(data []byte) {
		var records [][]byte
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				records = append(records, bytes.Clone(line))
			}
		}
		// One small seed per event. The captured events are 1–4 KB, most
		// of it fields no decoder reads: with them as seeds each new
		// input the workers find is minimized for up to a minute
		// (-fuzzminimizetime) and the fuzzer seems to stall after a few
		// thousand execs.
		for _, r := range records {
			if seed := fuzzSeed(r); len(seed) <= maxFuzzSeed {
				f.Add(frame([][]byte{seed}))
			}
		}
	}, captureDir+"*.json")
	f.Add(frame([][]byte{[]byte(`{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"F"},"state":"TASK_RUNNING","status":{"task_id":{"value":"t"}}}}`)}))
	f.Add(frame([][]byte{[]byte(`{"type":"TASK_ADDED","task_added":{"task":{"task_id":{"value":"t"},"framework_id":{"value":"F"},"state":"TASK_RUNNING"}}}`)}))
	c, err := New(Config{MesosURLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		f.Fatal(err)
	}
	c.resolver.lookup = func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no dns") }
	f.Fuzz(func(t *testing.T, data []byte) {
		s := c.MesosStream()
		sink := &discardSink{}
		rr := newRecordReader(bytes.NewReader(data), 1<<20)
		for {
			rec, err := rr.Next()
			if err != nil {
				var re *RecordError
				if err != io.EOF && !errors.As(err, &re) {
					t.Fatalf("reader error %v", err)
				}
				break
			}
			ev, err := decodeMesosEvent(rec)
			if err != nil {
				continue
			}
			if ev.Type == mesosSubscribed {
				checkSkipped(t, rec, ev.Subscribed)
			}
			if ev.Type == mesosTaskUpdated {
				s.mu.Lock()
				k := taskKey{ev.TaskUpdated.FrameworkID.Value, ev.TaskUpdated.taskID()}
				_, had := s.mirror.tasks[k]
				_, held := s.mirror.held[k]
				s.mu.Unlock()
				s.apply(&ev, netip.AddrPort{}, sink)
				s.mu.Lock()
				_, has := s.mirror.tasks[k]
				s.mu.Unlock()
				if has && !had && !held {
					t.Fatalf("TASK_UPDATED invented task %v", k)
				}
				continue
			}
			s.apply(&ev, netip.AddrPort{}, sink)
		}
		s.mu.Lock()
		st, _ := s.mirror.state("")
		checkAgentIndex(t, s.mirror)
		s.mu.Unlock()
		checkApps(t, st.Apps, true)
		checkCluster(t, st.Cluster)
	})
}

// maxFuzzSeed bounds a FuzzMesosEvents seed.
const maxFuzzSeed = 512

// fuzzReadKeys are the members the Mesos decoders read; fuzzSeed keeps only
// them.
var fuzzReadKeys = map[string]bool{
	"type": true, "subscribed": true, "heartbeat_interval_seconds": true, "get_state": true, "get_tasks": true,
	"tasks": true, "launched_tasks": true, "get_frameworks": true, "frameworks": true, "framework_info": true,
	"get_agents": true, "agents": true, "agent_info": true, "pid": true, "hostname": true, "id": true, "value": true,
	"name": true, "task_id": true, "framework_id": true, "agent_id": true, "slave_id": true, "state": true,
	"statuses": true, "timestamp": true, "healthy": true, "labels": true, "key": true, "container_status": true,
	"network_infos": true, "ip_address": true, "ip_addresses": true, "resources": true, "ranges": true, "range": true,
	"begin": true, "end": true, "discovery": true, "ports": true, "number": true, "protocol": true, "health_check": true,
	"task_added": true, "task": true, "task_updated": true, "status": true, "agent_added": true, "agent": true,
	"agent_removed": true, "framework_added": true, "framework_updated": true, "framework": true, "framework_removed": true,
}

// fuzzSeed is event r with only the members a decoder reads, at most one
// element per array, compacted; r itself if it is no JSON.
func fuzzSeed(r []byte) []byte {
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		return r
	}
	var prune func(any) any
	prune = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if !fuzzReadKeys[k] {
					delete(v, k)
					continue
				}
				v[k] = prune(e)
			}
		case []any:
			v = v[:min(len(v), 1)]
			for i := range v {
				v[i] = prune(v[i])
			}
			return v
		}
		return v
	}
	out, err := json.Marshal(prune(v))
	if err != nil {
		return r
	}
	return out
}

// checkAgentIndex checks that the mirror's agent index lists exactly its
// tasks, live and held, each under its agent.
func checkAgentIndex(t *testing.T, m *mesosMirror) {
	t.Helper()
	n := 0
	for agent, set := range m.byAgent {
		if len(set) == 0 {
			t.Fatalf("agent %q indexed without tasks", agent)
		}
		for k := range set {
			task, ok := m.tasks[k]
			if !ok {
				task, ok = m.held[k]
			}
			if !ok || task.agentID != agent {
				t.Fatalf("index lists %v under agent %q: task %v", k, agent, task)
			}
			n++
		}
	}
	if n != len(m.tasks)+len(m.held) {
		t.Fatalf("index lists %d tasks, the mirror has %d", n, len(m.tasks)+len(m.held))
	}
}

// checkSkipped reads SUBSCRIBED record rec again leaving out the tasks of
// one of its frameworks (a task's, else "F"): it keeps all the others, as
// read without skipping (all), and none of that framework's.
func checkSkipped(t *testing.T, rec []byte, all *mesosSubscribedEvent) {
	t.Helper()
	skip := "F"
	for k := range all.Tasks {
		skip = cmp.Or(k.framework, skip)
		break
	}
	ev, err := readMesosEvent(bytes.NewReader(rec), skip)
	if err != nil {
		t.Fatalf("SUBSCRIBED read whole, but not skipping %q: %v", skip, err)
	}
	for k := range all.Tasks {
		_, kept := ev.Subscribed.Tasks[k]
		if kept == (k.framework == skip) {
			t.Fatalf("skipping %q: task %v kept %v", skip, k, kept)
		}
	}
	if len(ev.Subscribed.Tasks) > len(all.Tasks) {
		t.Fatalf("skipping %q kept %d tasks, more than the %d read whole", skip, len(ev.Subscribed.Tasks), len(all.Tasks))
	}
}

package marathon

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// TestMesosApplyIncremental: agent and framework events change the Apps of
// the tasks they touch and the cluster, with no resync; applied to the
// last snapshot, the updates give what a new snapshot gives, step by step.
func TestMesosApplyIncremental(t *testing.T) {
	c, _, _ := testClient(t, Config{MesosURLs: []string{"http://127.0.0.1:1"}})
	noDNS(c)
	s := c.MesosStream()
	sink := newRecorder()
	apply := func(record string) {
		t.Helper()
		ev, err := decodeMesosEvent([]byte(record))
		if err != nil {
			t.Fatalf("decodeMesosEvent(%.60s): %v", record, err)
		}
		s.apply(&ev, netip.AddrPort{}, sink)
	}
	apply(string(subscribedWith(6)))
	st, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]discovery.App{}
	for _, a := range st.Apps {
		model[a.ID] = a
	}
	cluster := st.Cluster
	const agentS100 = `{"agent_info":{"id":{"value":"S100"},"hostname":"agent-100"},"pid":"slave(1)@10.9.0.100:5051"}`
	steps := []struct {
		name, event string
		changed     int // updates told, the cluster's included
	}{
		{"new agent", `{"type":"AGENT_ADDED","agent_added":{"agent":` + agentS100 + `}}`, 1},
		{"task on the new agent", `{"type":"TASK_ADDED","task_added":{"task":{"task_id":{"value":"x1"},"framework_id":{"value":"F1"},"agent_id":{"value":"S100"},"state":"TASK_RUNNING",` +
			`"discovery":{"visibility":"FRAMEWORK","name":"x1","ports":{"ports":[{"number":80,"protocol":"tcp","labels":{"labels":[{"key":"VIP_0","value":"/x:80"},{"key":"network-scope","value":"container"}]}}]}}}}}`, 1},
		{"agent gone", `{"type":"AGENT_REMOVED","agent_removed":{"agent_id":{"value":"S100"}}}`, 2},
		{"agent back", `{"type":"AGENT_ADDED","agent_added":{"agent":` + agentS100 + `}}`, 2},
		{"new framework", `{"type":"FRAMEWORK_ADDED","framework_added":{"framework":{"framework_info":{"id":{"value":"F2"},"name":"kafka"}}}}`, 1},
		{"framework renamed", `{"type":"FRAMEWORK_UPDATED","framework_updated":{"framework":{"framework_info":{"id":{"value":"F1"},"name":"spark2"}}}}`, 7*2 + 1},
		{"framework updated, same name", `{"type":"FRAMEWORK_UPDATED","framework_updated":{"framework":{"framework_info":{"id":{"value":"F1"},"name":"spark2","hostname":"10.0.0.9"}}}}`, 1},
		{"framework removed", `{"type":"FRAMEWORK_REMOVED","framework_removed":{"framework_info":{"id":{"value":"F1"}}}}`, 7 + 1},
	}
	for _, step := range steps {
		before := len(sink.all())
		apply(step.event)
		got := sink.all()[before:]
		for _, u := range got {
			switch u.Kind {
			case discovery.UpdateResync:
				t.Fatalf("%s: resync %q, want incremental updates", step.name, u.Reason)
			case discovery.UpdateAppReplace:
				model[u.App.ID] = u.App
			case discovery.UpdateAppRemoved:
				delete(model, u.AppID)
			case discovery.UpdateCluster:
				cluster = u.Cluster
			}
		}
		if len(got) != step.changed {
			t.Errorf("%s: %d updates, want %d: %s", step.name, len(got), step.changed, describe(got))
		}
		s.mu.Lock()
		checkAgentIndex(t, s.mirror)
		s.mu.Unlock()
		want, err := s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ids, wantIDs := slices.Sorted(maps.Keys(model)), appIDs(want); !slices.Equal(ids, wantIDs) {
			t.Fatalf("%s: apps %q, snapshot has %q", step.name, ids, wantIDs)
		}
		for _, a := range want.Apps {
			if !reflect.DeepEqual(model[a.ID], a) {
				t.Errorf("%s: app %s = %+v, snapshot has %+v", step.name, a.ID, model[a.ID], a)
			}
		}
		if !reflect.DeepEqual(cluster, want.Cluster) {
			t.Errorf("%s: cluster = %+v, snapshot has %+v", step.name, cluster, want.Cluster)
		}
	}
}

// TestMesosSubscribedStreamed: SUBSCRIBED read as a stream gives the Apps
// GET_STATE of the same state gives decoded whole, but the skipped
// framework's; a record cut inside it is a framing fault, not a bad event.
func TestMesosSubscribedStreamed(t *testing.T) {
	record := subscribedWith(50)
	whole := append(append([]byte(`{"get_state":`), record[len(`{"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":15.0,"get_state":`):len(record)-2]...), '}')
	want, _, err := DecodeMesosState(bytes.NewReader(whole), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, skip := range []string{"", "F1", "F9"} {
		t.Run(fmt.Sprintf("skip=%q", skip), func(t *testing.T) {
			ev, err := readMesosEvent(bytes.NewReader(record), skip)
			if err != nil {
				t.Fatal(err)
			}
			m := newMesosMirror()
			m.subscribed(ev.Subscribed, netip.AddrPort{}, time.Unix(1.5e9, 0), defaultFailoverGrace)
			got, _ := m.state("")
			wantApps := want.Apps
			if skip == "F1" {
				wantApps = nil
			}
			if !reflect.DeepEqual(sortedApps(got.Apps), sortedApps(wantApps)) {
				t.Errorf("streamed apps differ from GET_STATE's:\n got %+v\nwant %+v", sortedApps(got.Apps), sortedApps(wantApps))
			}
			byID := func(a, b discovery.Agent) int { return strings.Compare(a.ID, b.ID) }
			if !reflect.DeepEqual(slices.SortedFunc(slices.Values(got.Cluster.Agents), byID), slices.SortedFunc(slices.Values(want.Cluster.Agents), byID)) ||
				!reflect.DeepEqual(got.Cluster.Frameworks, want.Cluster.Frameworks) {
				t.Errorf("cluster differs from GET_STATE's: %d agents, frameworks %+v; want %d, %+v",
					len(got.Cluster.Agents), got.Cluster.Frameworks, len(want.Cluster.Agents), want.Cluster.Frameworks)
			}
			if ev.Subscribed.HeartbeatIntervalSeconds != 15 {
				t.Errorf("heartbeat interval %v, want 15", ev.Subscribed.HeartbeatIntervalSeconds)
			}
		})
	}
	rr := newRecordReader(bytes.NewReader(appendRecord(nil, record)[:len(record)/2]), 1<<30)
	body, err := rr.NextReader()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readMesosEvent(body, ""); err == nil || !rr.failed() {
		t.Errorf("cut SUBSCRIBED: err %v, failed %v; want an error and a failed reader", err, rr.failed())
	}
	if _, err := rr.NextReader(); err == nil {
		t.Errorf("NextReader after a cut record: no error")
	}
}

func sortedApps(apps []discovery.App) []discovery.App {
	return slices.SortedFunc(slices.Values(apps), func(a, b discovery.App) int { return strings.Compare(a.ID, b.ID) })
}

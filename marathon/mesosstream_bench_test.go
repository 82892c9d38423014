package marathon

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// subscribedWith is a SUBSCRIBED of n running tasks of framework "spark"
// on 100 agents, each with a host-port VIP.
func subscribedWith(n int) []byte {
	b := []byte(`{"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":15.0,"get_state":{"get_agents":{"agents":[`)
	for a := range 100 {
		if a > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"agent_info":{"id":{"value":"S%d"},"hostname":"10.0.%d.%d"},"pid":"slave(1)@10.0.%d.%d:5051"}`, a, a/250, a%250+1, a/250, a%250+1)
	}
	b = append(b, `]},"get_frameworks":{"frameworks":[{"framework_info":{"id":{"value":"F1"},"name":"spark"}}]},"get_tasks":{"tasks":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"task_id":{"value":"t%d"},"name":"exec-%d","framework_id":{"value":"F1"},"agent_id":{"value":"S%d"},"state":"TASK_RUNNING",`+
			`"resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":%d,"end":%d}]}}],`+
			`"discovery":{"visibility":"FRAMEWORK","name":"exec-%d","ports":{"ports":[{"number":%d,"protocol":"tcp","labels":{"labels":[{"key":"VIP_0","value":"/spark-%d:80"}]}}]}},`+
			`"statuses":[{"state":"TASK_RUNNING","timestamp":1.5e9,"healthy":true,"container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.0.0.1"}]}]}}]}`,
			i, i, i%100, 31000+i%1000, 31000+i%1000, i, 31000+i%1000, i%500)
	}
	return append(b, `]}}}}`...)
}

// BenchmarkMesosTaskUpdated is the read loop's work for one TASK_UPDATED
// (a health flip) in a cluster of n tasks: decode, merge into the mirror,
// build the task's App and hand it over. It never waits on discovery.
func BenchmarkMesosTaskUpdated(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			c, err := New(Config{MesosURLs: []string{"http://127.0.0.1:1"}})
			if err != nil {
				b.Fatal(err)
			}
			s := c.MesosStream()
			sink := &discardSink{}
			ev, err := decodeMesosEvent(subscribedWith(n))
			if err != nil {
				b.Fatal(err)
			}
			s.apply(&ev, netip.AddrPort{}, sink)
			updates := [2][]byte{}
			for i, healthy := range []string{"false", "true"} {
				updates[i] = fmt.Appendf(nil, `{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"F1"},"state":"TASK_RUNNING",`+
					`"status":{"task_id":{"value":"t%d"},"agent_id":{"value":"S7"},"state":"TASK_RUNNING","healthy":%s,"timestamp":1.6e9,`+
					`"reason":"REASON_TASK_HEALTH_CHECK_STATUS_UPDATED","source":"SOURCE_EXECUTOR","uuid":"rtYwPoq7QzKB8FuVfH7raQ=="}}}`, n/2, healthy)
			}
			b.SetBytes(int64(len(updates[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev, err := decodeMesosEvent(updates[i%2])
				if err != nil {
					b.Fatal(err)
				}
				s.apply(&ev, netip.AddrPort{}, sink)
				i++
			}
		})
	}
}

// BenchmarkMesosSnapshot is the Mesos source's Snapshot from the mirror
// (no request) with n tasks: what a resync costs after SUBSCRIBED, an
// agent or framework event, or a full update queue.
func BenchmarkMesosSnapshot(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			m := newMesosMirror()
			ev, err := decodeMesosEvent(subscribedWith(n))
			if err != nil {
				b.Fatal(err)
			}
			m.subscribed(ev.Subscribed, netip.AddrPort{}, time.Unix(1.5e9, 0), defaultFailoverGrace)
			b.ReportAllocs()
			var st discovery.State
			for b.Loop() {
				st, _ = m.state("")
			}
			if len(st.Apps) != n {
				b.Fatalf("%d apps, want %d", len(st.Apps), n)
			}
		})
	}
}

// BenchmarkMesosMirrorClone is how long a Snapshot holds the mirror's lock
// (and so may hold up the read loop) with n tasks: the maps' copy.
func BenchmarkMesosMirrorClone(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			m := newMesosMirror()
			ev, err := decodeMesosEvent(subscribedWith(n))
			if err != nil {
				b.Fatal(err)
			}
			m.subscribed(ev.Subscribed, netip.AddrPort{}, time.Unix(1.5e9, 0), defaultFailoverGrace)
			b.ReportAllocs()
			for b.Loop() {
				m.clone()
			}
		})
	}
}

// BenchmarkMesosSubscribed is reading a SUBSCRIBED of n tasks into the
// mirror's compact tasks, from the record as the stream delivers it: all
// of them kept (another framework's), or all skipped (the followed
// Marathon's). B/op is the garbage the read makes.
func BenchmarkMesosSubscribed(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		record := subscribedWith(n)
		for _, skip := range []string{"", "F1"} {
			b.Run(fmt.Sprintf("tasks=%d/skip=%q", n, skip), func(b *testing.B) {
				b.SetBytes(int64(len(record)))
				b.ReportAllocs()
				for b.Loop() {
					ev, err := readMesosEvent(bytes.NewReader(record), skip)
					if err != nil {
						b.Fatal(err)
					}
					if want := map[string]int{"": n, "F1": 0}[skip]; len(ev.Subscribed.Tasks) != want {
						b.Fatalf("%d tasks kept, want %d", len(ev.Subscribed.Tasks), want)
					}
				}
			})
		}
	}
}

// BenchmarkMesosAgentAdded is the read loop's work for an AGENT_ADDED (an
// agent re-registering) in a cluster of n tasks, 1/100 of them on it: the
// tasks on the agent found, their Apps and the cluster handed over, no
// resync.
func BenchmarkMesosAgentAdded(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("tasks=%d", n), func(b *testing.B) {
			c, err := New(Config{MesosURLs: []string{"http://127.0.0.1:1"}})
			if err != nil {
				b.Fatal(err)
			}
			s := c.MesosStream()
			ev, err := decodeMesosEvent(subscribedWith(n))
			if err != nil {
				b.Fatal(err)
			}
			sink := &discardSink{}
			s.apply(&ev, netip.AddrPort{}, sink)
			s.finished.done = true // as after the first Snapshot
			added, err := decodeMesosEvent([]byte(`{"type":"AGENT_ADDED","agent_added":{"agent":{"agent_info":{"id":{"value":"S7"},"hostname":"10.0.0.8"},"pid":"slave(1)@10.0.0.8:5051"}}}`))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			before := sink.n
			for b.Loop() {
				s.apply(&added, netip.AddrPort{}, sink)
			}
			if per := (sink.n - before) / b.N; per != n/100+1 {
				b.Fatalf("%d updates per event, want %d", per, n/100+1)
			}
		})
	}
}

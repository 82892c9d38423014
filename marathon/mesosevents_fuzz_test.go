package marathon

import (
	"bufio"
	"bytes"
	"context"
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
		// One seed per event: whole captures as seeds make the
		// coverage-guided workers crawl.
		for _, r := range records {
			if len(r) < 4<<10 {
				f.Add(frame([][]byte{r}))
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
		s.mu.Unlock()
		checkApps(t, st.Apps, true)
		checkCluster(t, st.Cluster)
	})
}

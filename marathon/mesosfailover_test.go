package marathon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const recoveredWeb = "marathon/web.instance-8b38cc52-c951-11e9-8d5b-70b3d5800001._app.2"

// TestMesosStreamFailover: recovered-agents.json is a failed-over master's
// stream: its SUBSCRIBED lists the agent as recovered and holds no task;
// the agent re-registers, then its tasks come back as TASK_ADDED. The task
// the previous master reported is not withdrawn meanwhile; a task the
// agent does not report again is withdrawn agentTasksWait after the agent
// re-registered, and any held task when the failover grace ends.
func TestMesosStreamFailover(t *testing.T) {
	records := captureRecords(t, "recovered-agents.json")
	before := records // the old master: the web task runs on agent S0
	tests := []struct {
		name    string
		after   [][]byte // the new master's stream
		advance time.Duration
		want    []string
	}{
		{name: "agents not back yet", after: records[:2], want: []string{recoveredWeb}},
		{name: "agent back with its task", after: records, advance: agentTasksWait + time.Second, want: []string{recoveredWeb}},
		{name: "agent back without the task", after: records[:3], advance: agentTasksWait + time.Second, want: nil},
		{name: "agent never back", after: records[:2], advance: time.Minute + time.Second, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newOperatorAPI(t, before, tt.after)
			c, _, _ := testClient(t, Config{MesosURLs: []string{api.URL}, MesosFailoverGrace: time.Minute})
			noDNS(c)
			clock := &testClock{now: time.Unix(1566970877, 0)}
			s := c.MesosStream()
			s.now = clock.Now
			rec := newRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx, rec) }()
			t.Cleanup(func() { cancel(); <-done })

			// The new master's events are applied once its last change is.
			want := uint64(changes(t, before) + changes(t, tt.after))
			waitChanges(t, s, rec, want)
			if s.subscribedN.Load() < 2 {
				t.Fatalf("subscribed %d times, want 2", s.subscribedN.Load())
			}
			st, err := s.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := appIDs(st); !slices.Equal(got, []string{recoveredWeb}) {
				t.Fatalf("apps right after the failover = %q, want the web task kept", got)
			}
			if task := st.Apps[0].Tasks[0]; !task.AgentIP.IsValid() || task.State != discovery.TaskRunning {
				t.Errorf("kept task = %+v, want running with its agent's address", task)
			}
			if tt.advance == 0 {
				return
			}
			clock.Add(tt.advance)
			rec.waitFor(t, "the expiry check", func(us []discovery.Update) bool {
				st, err := s.Snapshot(context.Background())
				return err == nil && slices.Equal(appIDs(st), tt.want) && (tt.want != nil || resyncs(us, "failover grace over") > 0)
			})
		})
	}
}

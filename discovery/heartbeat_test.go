package discovery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// blockingDataplane holds every Apply until release closes; entered
// receives once per Apply, from the loop that called it.
type blockingDataplane struct {
	entered chan struct{}
	release chan struct{}
}

func (d *blockingDataplane) Apply(ctx context.Context, _ *Table) error {
	d.entered <- struct{}{}
	select {
	case <-d.release:
	case <-ctx.Done():
	}
	return nil
}

// TestHeartbeatStopsWhileTheLoopHangs checks that the heartbeat comes from
// the loop that owns the model: it beats while the loop is free, never
// while a dataplane apply holds the loop, and again once the apply returns.
func TestHeartbeatStopsWhileTheLoopHangs(t *testing.T) {
	var beats atomic.Int64
	dp := &blockingDataplane{entered: make(chan struct{}, 1), release: make(chan struct{})}
	src := &fakeSource{}
	src.set(nil, webApp("/web", false, 31000))
	r, err := NewReconciler(Config{
		Sources:        []SourceConfig{{Name: "marathon", Source: src, Interval: time.Hour}},
		Dataplane:      dp,
		Heartbeat:      func() { beats.Add(1) },
		HeartbeatEvery: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	<-dp.entered // the first build holds the loop in Apply
	held := beats.Load()
	if held == 0 {
		t.Errorf("no heartbeat before the first build, want one when the loop starts")
	}
	// However long the loop is held, the count cannot move: every beat
	// comes from the loop. A hundred periods give a wrong implementation
	// every chance to show.
	time.Sleep(100 * time.Millisecond)
	if n := beats.Load(); n != held {
		t.Errorf("heartbeat called %d times while Apply held the loop, want 0", n-held)
	}
	close(dp.release)
	deadline := time.After(20 * time.Second)
	for beats.Load() < held+3 {
		select {
		case <-dp.entered:
		case <-deadline:
			t.Fatalf("heartbeat did not resume after Apply returned: %d beats", beats.Load())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestNoHeartbeatConfigured checks that a reconciler without a heartbeat
// runs as before.
func TestNoHeartbeatConfigured(t *testing.T) {
	rt := startReconciler(t, nil, nil, webApp("/web", false, 31000))
	rt.waitSynced(t)
}

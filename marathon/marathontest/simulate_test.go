package marathontest_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSimulate(t *testing.T) {
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events?event_type=deployment_success&event_type=health_status_changed_event")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Simulate(ctx, time.Millisecond, rand.New(rand.NewPCG(1, 2))) }()
	for range 20 {
		st.event()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Simulate: %v", err)
	}
	for _, a := range s.Apps() {
		if n := len(a.Tasks); n < 1 || n > 5 {
			t.Errorf("app %s has %d tasks, want 1-5", a.ID, n)
		}
	}
}

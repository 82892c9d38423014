package marathontest

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Simulate changes the cluster every period until ctx is done, for the
// demo: each step picks a random app and scales it up or down by one
// (between 1 and 5 instances), or flips the health of one task of an app
// with health checks. Apps deleted meanwhile are skipped. It returns nil
// when ctx is cancelled, or the first other error of a control method.
func (s *Server) Simulate(ctx context.Context, every time.Duration, rng *rand.Rand) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := s.step(rng); err != nil && !errors.Is(err, errNotFound) {
			return err
		}
	}
}

// step makes one random change.
func (s *Server) step(rng *rand.Rand) error {
	ids := s.appIDs()
	if len(ids) == 0 {
		return nil
	}
	a, ok := s.App(ids[rng.IntN(len(ids))])
	if !ok {
		return nil
	}
	if a.HealthChecks && len(a.Tasks) > 0 && rng.IntN(3) == 0 {
		t := a.Tasks[rng.IntN(len(a.Tasks))]
		healthy := t.Healthy == nil || !*t.Healthy
		return s.SetHealth(t.ID, healthy)
	}
	n := len(a.Tasks)
	switch {
	case n <= 1:
		n++
	case n >= 5:
		n--
	case rng.IntN(2) == 0:
		n++
	default:
		n--
	}
	return s.ScaleApp(a.ID, n)
}

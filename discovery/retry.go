package discovery

// Retrying after failures: capped, jittered backoff, and the timer the
// loops select on while they wait it out.

import (
	"math/rand/v2"
	"time"
)

// retryBackoff is capped exponential backoff with jitter: each wait is the
// current step plus up to half of it, never above max.
type retryBackoff struct {
	min, max, cur time.Duration
}

func (b *retryBackoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur + rand.N(b.cur/2+1)
	b.cur = min(2*b.cur, b.max)
	return min(d, b.max)
}

func (b *retryBackoff) reset() { b.cur = 0 }

// retryTimer waits out a retryBackoff after each failure. C is nil while
// no retry is pending, so a select on it blocks until failed arms it.
type retryTimer struct {
	bo retryBackoff
	t  *time.Timer
	C  <-chan time.Time
}

func newRetryTimer() *retryTimer {
	return &retryTimer{bo: retryBackoff{min: retryMin, max: retryMax}}
}

// failed arms the timer for the next backoff step.
func (r *retryTimer) failed() {
	r.t = time.NewTimer(r.bo.next())
	r.C = r.t.C
}

// fired notes that C delivered: no retry is pending any more.
func (r *retryTimer) fired() { r.C = nil }

// succeeded starts the backoff over.
func (r *retryTimer) succeeded() { r.bo.reset() }

// pending reports whether a retry is armed and has not fired.
func (r *retryTimer) pending() bool { return r.C != nil }

// stop releases the timer.
func (r *retryTimer) stop() {
	if r.t != nil {
		r.t.Stop()
	}
}

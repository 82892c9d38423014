package marathon

import (
	"math/rand/v2"
	"time"

	"gopkg.in/cenkalti/backoff.v1"
)

// Backoff bounds the delay between attempts to reach Marathon's event
// stream. The delay doubles per failed attempt from Min up to Max and is
// jittered; it never gives up (unlike r3labs/sse's default strategy, which
// stops after 15 minutes of failures).
type Backoff struct {
	// Min is the first delay (0 → 100ms).
	Min time.Duration
	// Max caps the delay (0 → 30s).
	Max time.Duration
}

const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 30 * time.Second
)

// withDefaults fills zero fields and keeps Min ≤ Max.
func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = defaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = defaultBackoffMax
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// retryBackoff is a capped exponential backoff with "equal jitter": each
// delay is uniformly drawn from [d/2, d] where d doubles per call from Min
// to Max. It implements backoff.BackOff so that it can stand in for the
// strategy r3labs/sse expects, but it never returns backoff.Stop.
// Not safe for concurrent use; the reconnect loop owns it.
type retryBackoff struct {
	cfg  Backoff
	next time.Duration
}

var _ backoff.BackOff = (*retryBackoff)(nil)

func newRetryBackoff(cfg Backoff) *retryBackoff {
	b := &retryBackoff{cfg: cfg.withDefaults()}
	b.Reset()
	return b
}

// NextBackOff returns the delay before the next attempt.
func (b *retryBackoff) NextBackOff() time.Duration {
	d := b.next
	if b.next < b.cfg.Max {
		b.next *= 2
		if b.next > b.cfg.Max || b.next <= 0 {
			b.next = b.cfg.Max
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts over at Min, after a connection that worked.
func (b *retryBackoff) Reset() { b.next = b.cfg.Min }

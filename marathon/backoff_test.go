package marathon

import (
	"testing"
	"time"

	"gopkg.in/cenkalti/backoff.v1"
)

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		name string
		cfg  Backoff
		// want are the un-jittered delays of the first calls; each call
		// must return a value in [want/2, want].
		want []time.Duration
	}{
		{
			name: "defaults",
			cfg:  Backoff{},
			want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond, 25600 * time.Millisecond, 30 * time.Second, 30 * time.Second},
		},
		{
			name: "custom",
			cfg:  Backoff{Min: time.Second, Max: 3 * time.Second},
			want: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second},
		},
		{
			name: "max below min",
			cfg:  Backoff{Min: time.Second, Max: time.Millisecond},
			want: []time.Duration{time.Second, time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRetryBackoff(tt.cfg)
			for round := range 2 {
				for i, want := range tt.want {
					got := b.NextBackOff()
					if got == backoff.Stop || got < want/2 || got > want {
						t.Fatalf("round %d call %d: NextBackOff() = %v, want in [%v, %v]", round, i, got, want/2, want)
					}
				}
				b.Reset()
			}
		})
	}
}

// TestRetryBackoffNeverStops checks the property r3labs' default lacks:
// however long the outage, there is always a next attempt.
func TestRetryBackoffNeverStops(t *testing.T) {
	b := newRetryBackoff(Backoff{Min: time.Millisecond, Max: time.Hour})
	for i := range 10000 {
		if d := b.NextBackOff(); d <= 0 || d > time.Hour {
			t.Fatalf("call %d: NextBackOff() = %v, want in (0, 1h]", i, d)
		}
	}
}

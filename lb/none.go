package lb

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// None is the dataplane that programs nothing: vipbridge serves records and
// DNS only, and the HTTP API still shows the plan. It remembers the last
// table it was given.
type None struct {
	last    atomic.Pointer[discovery.Table]
	applied atomic.Uint64
	at      atomic.Pointer[applied] // the last Apply, with its time
}

type applied struct {
	t  *discovery.Table
	at time.Time
}

// Apply records t as applied. It never fails.
func (n *None) Apply(_ context.Context, t *discovery.Table) error {
	n.last.Store(t)
	n.at.Store(&applied{t: t, at: time.Now()})
	n.applied.Add(1)
	return nil
}

// LastApplied returns the last applied table and when Apply got it (nil
// and zero before the first), for benchmarks of event → dataplane-applied.
func (n *None) LastApplied() (*discovery.Table, time.Time) {
	if a := n.at.Load(); a != nil {
		return a.t, a.at
	}
	return nil, time.Time{}
}

// Last returns the last applied table, or nil before the first Apply.
func (n *None) Last() *discovery.Table { return n.last.Load() }

// Applied returns how many tables were applied.
func (n *None) Applied() uint64 { return n.applied.Load() }

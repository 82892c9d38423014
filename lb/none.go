package lb

import (
	"context"
	"sync/atomic"

	"github.com/vipbridge/vipbridge/discovery"
)

// None is the dataplane that programs nothing: vipbridge serves records and
// DNS only, and the HTTP API still shows the plan. It remembers the last
// table it was given.
type None struct {
	last    atomic.Pointer[discovery.Table]
	applied atomic.Uint64
}

// Apply records t as applied. It never fails.
func (n *None) Apply(_ context.Context, t *discovery.Table) error {
	n.last.Store(t)
	n.applied.Add(1)
	return nil
}

// Last returns the last applied table, or nil before the first Apply.
func (n *None) Last() *discovery.Table { return n.last.Load() }

// Applied returns how many tables were applied.
func (n *None) Applied() uint64 { return n.applied.Load() }

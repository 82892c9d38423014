//go:build !linux

package lb

import (
	"context"
	"errors"

	"github.com/vipbridge/vipbridge/discovery"
)

// IPVS is the Linux IPVS dataplane; on other systems NewIPVS fails.
type IPVS struct{}

// NewIPVS fails: IPVS exists only on Linux.
func NewIPVS(IPVSConfig) (*IPVS, error) {
	return nil, errors.New("ipvs dataplane: IPVS exists only on Linux; use --lb none")
}

// CheckIPVS fails: IPVS exists only on Linux.
func CheckIPVS() error { return errors.New("IPVS exists only on Linux") }

// Apply implements discovery.Dataplane; it is never reached.
func (*IPVS) Apply(context.Context, *discovery.Table) error {
	return errors.New("ipvs dataplane: not supported on this system")
}

// Run returns at once.
func (*IPVS) Run(context.Context) error { return nil }

// State returns nothing.
func (*IPVS) State() map[discovery.VIPKey][]ServiceState { return nil }

// Close does nothing.
func (*IPVS) Close() {}

//go:build !linux

package lb

import (
	"context"
	"errors"

	"github.com/vipbridge/vipbridge/discovery"
)

// NFTables is the Linux nftables dataplane; on other systems NewNFTables
// fails.
type NFTables struct{}

// NewNFTables fails: nftables exists only on Linux.
func NewNFTables(NFTConfig) (*NFTables, error) {
	return nil, errors.New("nftables dataplane: nftables exists only on Linux; use --lb none")
}

// ProbeNFTables fails: nftables exists only on Linux.
func ProbeNFTables() error { return errors.New("nftables exists only on Linux") }

// Apply implements discovery.Dataplane; it is never reached.
func (*NFTables) Apply(context.Context, *discovery.Table) error {
	return errors.New("nftables dataplane: not supported on this system")
}

// Run returns at once.
func (*NFTables) Run(context.Context) error { return nil }

// State returns nothing.
func (*NFTables) State() map[discovery.VIPKey][]ServiceState { return nil }

// Close does nothing.
func (*NFTables) Close() {}

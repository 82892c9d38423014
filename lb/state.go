package lb

import (
	"net/netip"

	"github.com/vipbridge/vipbridge/discovery"
)

// Status is where a VIP's service stands in the kernel.
type Status string

// The statuses of a service.
const (
	// StatusProgrammed means the service exists with every backend of
	// the table at its weight.
	StatusProgrammed Status = "programmed"
	// StatusPending means the kernel does not match the table yet: a
	// sync is under way, was cancelled, or could not read the kernel
	// (Reason says why).
	StatusPending Status = "pending"
	// StatusError means a write for this service failed (Reason holds
	// the error); the next sync retries it.
	StatusError Status = "error"
)

// ServiceState is the dataplane state of one VIP address: a VIP with both
// an IPv4 and an IPv6 address has two.
type ServiceState struct {
	Protocol discovery.Protocol `json:"protocol"`
	// Addr is the VIP address and port the service listens on.
	Addr netip.AddrPort `json:"addr"`
	// Scheduler is the service's IPVS scheduler as the kernel has it;
	// "" while the service is not in the kernel.
	Scheduler string `json:"scheduler,omitempty"`
	Status    Status `json:"status"`
	Reason    string `json:"reason,omitempty"`
	// Backends are the service's destinations in the kernel, sorted by
	// address then port, draining ones included.
	Backends []BackendState `json:"backends"`
}

// BackendState is one destination of a service as the kernel has it.
type BackendState struct {
	Addr netip.AddrPort `json:"addr"`
	// Weight is the kernel's weight: 1, or 0 while unhealthy or draining.
	Weight int `json:"weight"`
	// ActiveConns and InactiveConns are IPVS's connection counts as of
	// the last read of the kernel.
	ActiveConns   int `json:"active_conns"`
	InactiveConns int `json:"inactive_conns"`
	// Draining is true for a backend that left the table: it is deleted
	// once it has no active connection or its drain time is over.
	Draining bool `json:"draining,omitempty"`
}

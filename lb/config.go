package lb

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of IPVSConfig's zero values.
const (
	DefaultInterface      = "vipbridge0"
	DefaultScheduler      = "wlc"
	DefaultDrain          = 30 * time.Second
	DefaultRepairInterval = 30 * time.Second
)

// IPVSConfig configures the IPVS dataplane.
type IPVSConfig struct {
	// Interface is the dummy interface through which the VIP addresses
	// are made local (by local routes); "" means "vipbridge0". It is
	// created if missing.
	Interface string
	// Scheduler is the IPVS scheduler of every service; "" means "wlc",
	// as dcos-net (UPSTREAM.md §1.7).
	Scheduler string
	// Drain is how long a TCP backend that left the table keeps its
	// connections at weight 0 before it is deleted; 0 means 30 s.
	Drain time.Duration
	// RepairInterval is the period at which the kernel is read again and
	// any drift repaired; 0 means 30 s.
	RepairInterval time.Duration
	// Ranges are the VIP ranges (e.g. 11.0.0.0/8, fd01:c::/64): every
	// IPVS service on an address inside them belongs to vipbridge, so
	// leftovers of an earlier run are deleted. Services on other
	// addresses are vipbridge's only while a table asks for their
	// address (an IP VIP, see IPVS).
	Ranges []netip.Prefix
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs state changes; nil discards.
	Logger *slog.Logger
}

func (c IPVSConfig) withDefaults() IPVSConfig {
	if c.Interface == "" {
		c.Interface = DefaultInterface
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.RepairInterval <= 0 {
		c.RepairInterval = DefaultRepairInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// NFTConfig configures the nftables dataplane.
type NFTConfig struct {
	// Drain is how long a TCP backend that left the table keeps its
	// established connections before their conntrack entries are deleted;
	// 0 means 30 s. New connections avoid it at once.
	Drain time.Duration
	// RepairInterval is the period at which the kernel is checked (by the
	// ruleset generation, then a full read if anything committed) and
	// any drift repaired; 0 means 30 s.
	RepairInterval time.Duration
	// NetNS is the network namespace to program, an open fd; 0 means the
	// caller's (tests and benchmarks use their own).
	NetNS int
	// Registerer registers the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger logs state changes; nil discards.
	Logger *slog.Logger
}

func (c NFTConfig) withDefaults() NFTConfig {
	if c.Drain <= 0 {
		c.Drain = DefaultDrain
	}
	if c.RepairInterval <= 0 {
		c.RepairInterval = DefaultRepairInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

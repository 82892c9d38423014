package main

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/lb"
)

// lbKind resolves --lb to "ipvs", "nftables" or "none": "auto" is ipvs
// when the kernel has IPVS, else nftables when the kernel takes the
// nftables dataplane's probe, else none (said in the log).
func lbKind(cfg config, log *slog.Logger) string {
	kind := cfg.LB
	if kind == "auto" {
		kind = "ipvs"
		if err := lb.CheckIPVS(); err != nil {
			kind = "nftables"
			if nerr := lb.ProbeNFTables(); nerr != nil {
				kind = "none"
				log.Info("no IPVS and no usable nftables in this kernel, serving records and DNS only (--lb none)", "reason", err, "nftables", nerr)
			} else {
				log.Info("no IPVS in this kernel, load-balancing with nftables (--lb nftables)", "reason", err)
			}
		}
	}
	log.Info("dataplane", "lb", kind)
	return kind
}

// newIPVS builds the IPVS dataplane from the --lb-* flags and the VIP
// ranges, whose services it owns.
func newIPVS(cfg config, reg prometheus.Registerer, log *slog.Logger) (*lb.IPVS, error) {
	x, err := lb.NewIPVS(lb.IPVSConfig{
		Interface:  cfg.LBInterface,
		Scheduler:  cfg.LBScheduler,
		Drain:      cfg.LBDrain,
		Ranges:     []netip.Prefix{cfg.VIPRange, cfg.VIP6Range},
		Registerer: reg,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane ipvs: %w", err)
	}
	return x, nil
}

// newNFTables builds the nftables dataplane from the --lb-drain flag.
func newNFTables(cfg config, reg prometheus.Registerer, log *slog.Logger) (*lb.NFTables, error) {
	x, err := lb.NewNFTables(lb.NFTConfig{Drain: cfg.LBDrain, RepairInterval: cfg.LBRepairInterval, Registerer: reg, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("dataplane nftables: %w", err)
	}
	return x, nil
}

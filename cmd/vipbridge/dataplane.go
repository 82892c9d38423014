package main

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/lb"
)

// lbKind resolves --lb to "ipvs" or "none": "auto" is ipvs when the kernel
// has IPVS, else none (said in the log).
func lbKind(cfg config, log *slog.Logger) string {
	kind := cfg.LB
	if kind == "auto" {
		kind = "ipvs"
		if err := lb.CheckIPVS(); err != nil {
			kind = "none"
			log.Info("no IPVS in this kernel, serving records and DNS only (--lb none)", "reason", err)
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

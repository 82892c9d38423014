package main

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// newDataplane builds the dataplane --lb names. "auto" is ipvs when the
// kernel has IPVS, else none (said in the log).
func newDataplane(cfg config, reg prometheus.Registerer, log *slog.Logger) (discovery.Dataplane, error) {
	kind := cfg.LB
	if kind == "auto" {
		kind = "ipvs"
		if err := lb.CheckIPVS(); err != nil {
			kind = "none"
			log.Info("no IPVS in this kernel, serving records and DNS only (--lb none)", "reason", err)
		}
	}
	log.Info("dataplane", "lb", kind)
	if kind != "ipvs" {
		return lb.New(kind)
	}
	dp, err := lb.New("ipvs", lb.IPVSConfig{
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
	return dp, nil
}

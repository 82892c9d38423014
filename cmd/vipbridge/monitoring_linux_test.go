//go:build linux

package main

import (
	"testing"
	"time"

	"github.com/moby/ipvs"

	"github.com/vipbridge/vipbridge/lb"
)

// TestMonitoringMetricsIPVS is TestMonitoringMetricsExist with --lb ipvs,
// for the IPVS dataplane's metrics. It needs a kernel with IPVS and root:
// it skips here and runs in the kvm-run VM (scripts/test-kernel.sh), like
// TestDaemonIPVS (kernel_test.go).
func TestMonitoringMetricsIPVS(t *testing.T) {
	requireIPVS(t, "IPVS", lb.CheckIPVS())
	h, err := ipvs.New("")
	if err != nil {
		t.Fatalf("ipvs.New() = %v", err)
	}
	t.Cleanup(func() { cleanKernel(t, h); h.Close() }) // after the daemon stops
	sim := startSim(t, "small")
	d := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) {
		c.LB, c.LBInterface, c.LBDrain = "ipvs", kernelIface, 5*time.Second
	})
	exerciseDaemon(t, d)
	kernelWaitFor(t, d, "a dataplane sync", func() bool {
		return metricAtLeast(d, `vipbridge_lb_sync_duration_seconds_count{trigger="apply"}`, 1)
	})
	checkNamedMetricsExposed(t, d, true)
}

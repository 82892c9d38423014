package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/lb"
)

// TestAutoWithoutIPVS: --lb auto falls back to nftables (as root) or none,
// and says so, on a kernel without IPVS (this machine's; the VM test covers
// the other side).
func TestAutoWithoutIPVS(t *testing.T) {
	if lb.CheckIPVS() == nil {
		t.Skip("this kernel has IPVS: auto would program it; covered by the kvm-run daemon test")
	}
	cfg, err := parseConfig("run", []string{"--marathon", "http://127.0.0.1:1"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := "none" // nftables when this process may program it (root)
	if lb.ProbeNFTables() == nil {
		want = "nftables"
	}
	var logs bytes.Buffer
	if kind := lbKind(cfg, slog.New(slog.NewTextHandler(&logs, nil))); kind != want {
		t.Errorf("lbKind(auto) = %q, want %s", kind, want)
	}
	if !strings.Contains(logs.String(), "no IPVS in this kernel") {
		t.Errorf("log = %q, want the fallback said", logs.String())
	}
	if _, err := newIPVS(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ip_vs") {
		t.Errorf("newIPVS() error = %v, want one naming the ip_vs module", err)
	}
}

// TestVersionShowsDataplane: /v1/version says which dataplane the daemon
// runs (what --lb auto chose is the same field).
func TestVersionShowsDataplane(t *testing.T) {
	sim := startSim(t, "small")
	d := startDaemon(t, t.TempDir(), []string{sim.URL()}, nil)
	var v struct{ Service, Version, Dataplane string }
	if err := d.getJSON("/v1/version", &v); err != nil || v.Service != "vipbridge" || v.Dataplane != "none" {
		t.Errorf("/v1/version = %+v, %v; want vipbridge with dataplane none", v, err)
	}
}

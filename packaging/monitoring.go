// Package packaging holds what vipbridge ships beside its binary. Its Go
// side is the monitoring files, embedded so that tests read them wherever
// they run (the IPVS tests run in a VM without the source tree):
// cmd/vipbridge/monitoring_test.go checks them against a real daemon.
package packaging

import "embed"

// Monitoring holds the Grafana dashboard (grafana/vipbridge.json) and the
// Prometheus alerting rules (prometheus/alerts.yml) with their promtool
// unit tests (prometheus/alerts_test.yml).
//
//go:embed grafana/vipbridge.json prometheus/alerts.yml prometheus/alerts_test.yml
var Monitoring embed.FS

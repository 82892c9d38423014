# prometheus.sh (sourced by scripts/test-deps.sh): promtool, from Debian's
# prometheus package, for `promtool check rules` on
# packaging/prometheus/alerts.yml (cmd/vipbridge/monitoring_test.go).
need_packages promtool=prometheus

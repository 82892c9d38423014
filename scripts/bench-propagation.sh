#!/bin/sh
# bench-propagation: event → dataplane-applied and event → DNS-visible with
# 100 and 10,000 named VIPs in place, steady and burst status updates over
# real SSE on loopback into the in-process daemon (--lb none). Bounded by
# the go test timeout; prints one summary table. Figures, not assertions.
set -eu
cd "$(dirname "$0")/.."
VIPBRIDGE_BENCH_PROPAGATION=1 ${GO:-go} test -count=1 -timeout 10m -run '^TestBenchPropagation$' ./cmd/vipbridge \
  | grep -v -e '^ok ' -e '^PASS$'

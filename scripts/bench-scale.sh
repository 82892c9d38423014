#!/bin/sh
# bench-scale: 10,000 apps / 100,000 tasks: initial full sync over HTTP,
# peak RSS of the daemon process, restart → first DNS answer from bbolt with
# the upstreams down, and bbolt file size after 1,000,000 task create/delete
# cycles (VIPBRIDGE_BENCH_CYCLES to change). Loopback only, bounded by the
# go test timeouts; prints one summary. Figures, not assertions.
set -eu
cd "$(dirname "$0")/.."
export VIPBRIDGE_BENCH_SCALE=1
${GO:-go} test -count=1 -timeout 10m -v -run "^TestBenchScale$" ./cmd/vipbridge | grep -v -e "^ok " -e "^PASS$" -e "^=== " -e "^--- " || true
${GO:-go} test -count=1 -timeout 20m -v -run "^TestBenchStoreGrowth$" ./discovery | grep -v -e "^ok " -e "^PASS$" -e "^=== " -e "^--- " || true

#!/bin/sh
# bench-scale: 10,000 apps / 100,000 tasks: initial full sync over HTTP,
# peak RSS of the daemon process, restart → first DNS answer from bbolt with
# the upstreams down, and bbolt file size after 1,000,000 task create/delete
# cycles (VIPBRIDGE_BENCH_CYCLES to change); then the Mesos operator stream:
# 100,000 non-Marathon tasks from SUBSCRIBED to every name served, peak RSS
# with Mesos alone and with Marathon followed too, and the stream's bytes
# against the 30 s /master/state poll (TestBenchScaleMesos). Loopback only, bounded by the
# go test timeouts; prints one summary. Figures, not assertions.
set -eu
cd "$(dirname "$0")/.."
export VIPBRIDGE_BENCH_SCALE=1
${GO:-go} test -count=1 -timeout 20m -v -run "^TestBenchScale(Mesos)?$" ./cmd/vipbridge | grep -v -e "^ok " -e "^PASS$" -e "^=== " -e "^--- " || true
growth=$(mktemp)
trap 'rm -f "$growth"' EXIT
${GO:-go} test -count=1 -timeout 20m -v -run "^TestBenchStoreGrowth$" ./discovery/store >"$growth" || { cat "$growth"; exit 1; }
grep -v -e "^ok " -e "^PASS$" -e "^=== " -e "^--- " "$growth" || true
# The summary row of `make bench` (scripts/bench-summary.sh).
if [ -n "${VIPBRIDGE_BENCH_SUMMARY:-}" ]; then
	awk '/ratio/ { for (i = 1; i <= NF; i++) if ($i == "ratio") r = $(i + 1) }
	END { printf "scale\tbbolt file / live data after 1,000,000 task create+delete cycles\t%s\t-\t<= 3x\t%s\n", r "x", (r + 0 <= 3 && r != "" ? "met" : "not met") }' "$growth" >>"$VIPBRIDGE_BENCH_SUMMARY"
fi

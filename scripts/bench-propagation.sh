#!/bin/sh
# bench-propagation: event → dataplane-applied and event → DNS-visible in
# l4lb, .mesos and autoip (the probe app's VIP, mesos-dns and dcos-dns task
# names) with 100 and 10,000 apps, one named VIP and one task each, in
# place, steady and burst status updates over
# real SSE on loopback into the in-process daemon (--lb none). The simulated
# Marathon runs in its own process (scripts/benchzone serve -control, built
# and ended by the test), as real Marathon does. Then the same from the
# Mesos operator stream: a framework task started and killed (TASK_UPDATED)
# with 10,000 and 100,000 tasks in place, and the stream's bytes per change
# (TestBenchPropagationMesos). Bounded by the go test timeout; prints one
# summary table each. Figures, not assertions.
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! VIPBRIDGE_BENCH_PROPAGATION=1 ${GO:-go} test -count=1 -timeout 20m -v -run '^TestBenchPropagation(Mesos)?$' ./cmd/vipbridge >"$out" 2>&1; then
	cat "$out"
	exit 1
fi
grep -v -e '^ok ' -e '^PASS$' -e '^=== ' -e '^--- ' "$out" | sed 's/^ *benchprop_test.go:[0-9]*: //'

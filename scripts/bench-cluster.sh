#!/bin/sh
# bench-cluster: cluster mode on a real three-member etcd (the etcd binary,
# scripts/deps.d/etcd.sh) with two publisher daemons on the Marathon
# simulator and 100, then 500 node daemons in one process: event → all
# nodes DNS-visible p50/p99/max, etcd keys and bytes written per change,
# Marathon event streams, and publisher failover (resign and crash).
# VIPBRIDGE_BENCH_CLUSTER_NODES=100,500 picks the sizes. Figures, not
# assertions.
set -eu
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || { echo "bench-cluster: etcd missing; run scripts/test-deps.sh" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() {
	if ! VIPBRIDGE_BENCH_CLUSTER=1 ${GO:-go} test -count=1 -timeout 20m -v -run "$1" "$2" >"$out" 2>&1; then
		cat "$out"
		exit 1
	fi
	grep -v -e '^ok ' -e '^PASS$' -e '^=== ' -e '^ *--- ' "$out" | sed 's/^ *[a-z]*_test.go:[0-9]*: //'
}
run '^TestBenchCluster$' ./cmd/vipbridge
run '^TestBenchFailover$' ./discovery/cluster

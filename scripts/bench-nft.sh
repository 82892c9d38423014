#!/bin/sh
# bench-nft: the nftables dataplane at 10,000 VIPs x 5 backends, natively,
# each benchmark in a fresh network namespace (needs root and nf_tables):
# full build from empty (and the heap kept for it), one backend moved on
# one VIP (p50/p99 over 30 applies), a no-op apply and a full read-back
# repair (writes/op must be 0), and a repair with nothing committed since
# the last sync (one generation read). Figures, not assertions.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
$GO test -c -o "$bin/lb.test" ./lb
run() { (cd lb && "$bin/lb.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" -test.timeout 30m) | grep -e '^Benchmark' -e 'skip' || true; }
run 'NFTBuild10k$' 1x
run 'NFTOneChange10k$' 30x
run 'NFT(Noop|RepairFull|RepairUnchanged)10k$' 5x

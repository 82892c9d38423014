#!/usr/bin/env bash
# bench-restart.sh: DNS queries lost, and the longest answer, while the
# daemon restarts under load (issue 15: "a restart or an upgrade loses no
# DNS query"). scripts/socketholder plays systemd: it holds the DNS (UDP,
# TCP) and HTTP sockets as vipbridge.socket does, starts vipbridge with
# them (LISTEN_FDS), waits for READY=1 and restarts it (SIGTERM, wait,
# start) RESTARTS times, EVERY apart, while dnsperf sends QPS queries a
# second. The same run follows with the daemon binding its own sockets
# (no socket unit) for comparison. Prints one table; nothing is asserted.
#
#   scripts/bench-restart.sh          (make bench-restart)
#
# Environment: APPS (default 1000) simulated apps with a named VIP each;
# QPS (default 5000); RESTARTS (default 5); EVERY (default 4s). Everything
# listens on 127.0.0.1; the script stops only its own processes, by PID.
set -euo pipefail
APPS=${APPS:-1000}
QPS=${QPS:-5000}
RESTARTS=${RESTARTS:-5}
EVERY=${EVERY:-4s}
cd "$(dirname "$0")/.."

. scripts/benchlib.sh
need_packages dnsperf=dnsperf
bench_workdir bench-restart

go build -o "$work/vipbridge" ./cmd/vipbridge
go build -o "$work/benchzone" ./scripts/benchzone
go build -o "$work/socketholder" ./scripts/socketholder

"$work/benchzone" serve -apps "$APPS" -urls "$work/urls" &
pids+=($!)
for _ in $(seq 600); do [[ -s $work/urls ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/urls"

# dnsperf runs from the first READY=1 until the last restart is ready
# again, with a margin.
every_s=${EVERY%s}
duration=$(python3 -c "import math; print(math.ceil(($RESTARTS + 1) * $every_s + 3))")

# measure MODE INHERIT: one run; prints "mode lost sent max_ms".
measure() {
	local mode=$1 inherit=$2 dns_port http_port holder
	dns_port=$(freeport)
	http_port=$(freeport)
	rm -f "$work/ready" "$work/perf.$mode"
	"$work/socketholder" -inherit="$inherit" -dns "127.0.0.1:$dns_port" -http "127.0.0.1:$http_port" \
		-restarts "$RESTARTS" -every "$EVERY" -ready "$work/ready" -- \
		"$work/vipbridge" run --marathon "$MARATHON" --data-dir "$work/data.$mode" --lb none --log-level warn \
		--dns-addr "127.0.0.1:$dns_port" --http-addr "127.0.0.1:$http_port" >"$work/holder.$mode" 2>&1 &
	holder=$!
	pids+=($holder)
	for _ in $(seq 900); do [[ -s $work/ready ]] && break; sleep 0.1; done
	[[ -s $work/ready ]] || { cat "$work/holder.$mode" >&2; echo "bench-restart: $mode never ready" >&2; exit 1; }
	# The query file: every VIP name, A.
	if [[ ! -s $work/queries ]]; then
		for _ in $(seq 300); do
			"$work/vipbridge" zone --http-addr "127.0.0.1:$http_port" -o "$work/l4lb.zone" 2>/dev/null &&
				(($(grep -c $'\tA\t' "$work/l4lb.zone") >= APPS)) && break
			sleep 0.2
		done
		awk -F'\t' '$3 == "A" {print $1 ".l4lb.thisdcos.directory A"}' "$work/l4lb.zone" >"$work/queries"
	fi
	dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/queries" -l "$duration" -Q "$QPS" -c 4 -t 5 >"$work/perf.$mode" 2>&1 ||
		{ cat "$work/perf.$mode" >&2; exit 1; }
	kill "$holder"
	wait "$holder" || true
	local sent lost max
	sent=$(awk '/Queries sent:/ {print $3}' "$work/perf.$mode")
	lost=$(awk '/Queries lost:/ {print $3}' "$work/perf.$mode")
	max=$(sed -n 's/.*Average Latency (s):.*max \([0-9.]*\)).*/\1/p' "$work/perf.$mode")
	echo "bench-restart: $mode: $(grep -c '^restart' "$work/holder.$mode") restarts; $(grep '^restart' "$work/holder.$mode" | tr '\n' ';')" >&2
	printf '%s\t%s\t%s\t%.0f\n' "$mode" "$sent" "$lost" "$(python3 -c "print(float('${max:-0}') * 1000)")"
}

{
	printf 'mode\tqueries sent\tlost\tlongest answer (ms)\n'
	measure "socket-activated" true
	measure "own-sockets" false
} >"$work/table"
echo
echo "vipbridge restarted $RESTARTS times, $EVERY apart, under $QPS queries/s (dnsperf, 5 s timeout), $APPS VIPs:"
column -t -s $'\t' "$work/table"

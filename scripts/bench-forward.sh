#!/usr/bin/env bash
# bench-forward.sh: vipbridge as a forwarder next to dnsdist (packet cache
# off, then on) and unbound, all forwarding to the same local Knot, same
# queries, same machine, one table (issue 11, `make bench-forward`).
#
#   scripts/bench-forward.sh            (make bench-forward)
#
# Knot serves bench.example., 100,000 names, each with an A record of TTL 0
# (no cache may keep it: the query set that defeats the cache asks A of
# random names) and an AAAA record of TTL 3600 (the query set that hits
# the cache asks AAAA of 1,000 names, after one warm-up pass). Throughput
# is dnsperf's; the added latency is the p50 round trip of one query at a
# time (benchlatency) through each forwarder minus Knot's own.
#
# Environment: ROUNDS (default 2) interleaved rounds of DURATION seconds
# (default 10) per server and query set; CLIENTS (default 4) dnsperf
# client sockets; NAMES (default 100000). Everything listens on 127.0.0.1;
# the script starts and stops only its own processes, by PID, and removes
# its work directory. No server sends anything off loopback (dnsdist's
# security polling is off).
set -euo pipefail

ROUNDS=${ROUNDS:-2}
SECONDS_PER_RUN=${DURATION:-10} # not $SECONDS: bash's own clock
CLIENTS=${CLIENTS:-4}
NAMES=${NAMES:-100000}
HOT=1000
cd "$(dirname "$0")/.."

. scripts/benchlib.sh
need_packages dnsperf=dnsperf knotd=knot dnsdist=dnsdist unbound=unbound dig=dnsutils
bench_workdir bench-forward

go build -o "$work/vipbridge" ./cmd/vipbridge
go build -o "$work/benchzone" ./scripts/benchzone
go build -o "$work/benchlatency" ./scripts/benchlatency

# The zone and the query sets (fixed seed).
awk -v n="$NAMES" 'BEGIN {
	print "$ORIGIN bench.example."
	print "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 60"
	print "@ 3600 IN NS ns"
	print "ns 3600 IN A 127.0.0.1"
	for (i = 0; i < n; i++) {
		printf "n%d 0 IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
		printf "n%d 3600 IN AAAA fd00::%x:%x\n", i, int(i / 65536), i % 65536
	}
}' >"$work/bench.zone"
awk -v n="$NAMES" 'BEGIN { srand(11); for (i = 0; i < 200000; i++) printf "n%d.bench.example A\n", int(rand() * n) }' >"$work/uncached"
awk -v n="$NAMES" -v hot="$HOT" 'BEGIN { srand(12); for (i = 0; i < hot; i++) printf "n%d.bench.example AAAA\n", int(rand() * n) }' >"$work/cached"

# Knot, the upstream of every forwarder.
knot_port=$(freeport)
mkdir -p "$work/knot"
knot_conf "$knot_port" "bench.example bench.zone" >"$work/knot/knot.conf"
knotd -c "$work/knot/knot.conf" &
knot_pid=$!
pids+=($knot_pid)

# vipbridge: a tiny simulated cluster (it needs one) and Knot as upstream.
"$work/benchzone" serve -apps 10 -urls "$work/urls" &
pids+=($!)
for _ in $(seq 600); do [[ -s $work/urls ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/urls"
vb_port=$(freeport)
"$work/vipbridge" run --marathon "$MARATHON" --data-dir "$work/data" --lb none --log-level warn \
	--dns-addr "127.0.0.1:$vb_port" --http-addr "127.0.0.1:$(freeport)" --upstream "127.0.0.1:$knot_port" &
vb_pid=$!
pids+=($vb_pid)

# dnsdist, packet cache off and on: two listener threads each, health
# checks asking a name of the zone.
dnsdist_conf() { # port cache
	cat <<EOC
setSecurityPollSuffix("")
setLocal("127.0.0.1:$1", {reusePort=true})
addLocal("127.0.0.1:$1", {reusePort=true})
newServer({address="127.0.0.1:$knot_port", checkName="n0.bench.example.", checkType="A"})
EOC
	if [[ $2 == on ]]; then
		echo 'getPool(""):setCache(newPacketCache(100000, {maxTTL=86400, minTTL=0}))'
	fi
}
dd_port=$(freeport)
dnsdist_conf "$dd_port" off >"$work/dnsdist-nocache.conf"
dnsdist --supervised --disable-syslog -C "$work/dnsdist-nocache.conf" >"$work/dnsdist-nocache.log" 2>&1 &
dd_pid=$!
pids+=($dd_pid)
ddc_port=$(freeport)
dnsdist_conf "$ddc_port" on >"$work/dnsdist-cache.conf"
dnsdist --supervised --disable-syslog -C "$work/dnsdist-cache.conf" >"$work/dnsdist-cache.log" 2>&1 &
ddc_pid=$!
pids+=($ddc_pid)

# unbound: a forwarder of every name to Knot, two threads, no validation.
ub_port=$(freeport)
mkdir -p "$work/unbound"
cat >"$work/unbound/unbound.conf" <<EOC
server:
    interface: 127.0.0.1
    port: $ub_port
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$work/unbound"
    pidfile: ""
    use-syslog: no
    verbosity: 0
    num-threads: 2
    so-reuseport: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$knot_port
EOC
unbound -d -c "$work/unbound/unbound.conf" &
ub_pid=$!
pids+=($ub_pid)

servers=("knot $knot_pid $knot_port" "vipbridge $vb_pid $vb_port" "dnsdist $dd_pid $dd_port" "dnsdist+cache $ddc_pid $ddc_port" "unbound $ub_pid $ub_port")

# Every server must give Knot's answer before anything is measured.
for s in "${servers[@]}"; do
	set -- $s
	got=""
	for _ in $(seq 100); do
		got=$(dig +short +time=1 +tries=1 -p "$3" @127.0.0.1 n7.bench.example A 2>/dev/null || true)
		[[ $got == 10.0.0.7 ]] && break
		sleep 0.2
	done
	[[ $got == 10.0.0.7 ]] || { echo "$1 does not answer n7.bench.example A (got '$got')" >&2; exit 1; }
	echo "$1 on 127.0.0.1:$3: n7.bench.example A $got" >&2
done

cpu_ticks() { sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | awk '{print $12+$13}'; }
hz=$(getconf CLK_TCK)

results="$work/results"
: >"$results"
measure() { # name pid port set round
	local out="$work/dnsperf.$1.$4.$5" before after
	if [[ $4 == cached ]]; then # warm-up: every hot name once
		dnsperf -s 127.0.0.1 -p "$3" -d "$work/cached" -n 1 -c 1 -q 100 -t 2 >/dev/null 2>&1
	fi
	before=$(cpu_ticks "$2")
	dnsperf -s 127.0.0.1 -p "$3" -d "$work/$4" -l "$SECONDS_PER_RUN" -c "$CLIENTS" -T 1 -q 200 -t 2 >"$out" 2>&1
	after=$(cpu_ticks "$2")
	local qps done lost
	qps=$(awk '/Queries per second/ {print $4}' "$out")
	done=$(awk '/Queries completed/ {print $3}' "$out")
	lost=$(awk '/Queries lost/ {print $3}' "$out")
	echo "$1 $4 $5 $qps $((after - before)) $done $lost" >>"$results"
	echo "round $5 $4 $1: $qps q/s" >&2
}
for r in $(seq "$ROUNDS"); do
	for set in uncached cached; do
		for s in "${servers[@]}"; do
			set -- $s
			measure "$1" "$2" "$3" "$set" "$r"
		done
	done
done

# Added latency: one query at a time, uncached names. For scale, the
# round trip of a name vipbridge serves itself (its fast path, no
# upstream): the floor of any answer from that process on this machine.
lat="$work/latency"
: >"$lat"
for s in "${servers[@]}"; do
	set -- $s
	echo "$1 $("$work/benchlatency" -server "127.0.0.1:$3" -queries "$work/uncached" -n 5000)" >>"$lat"
done
echo "app00000.marathon.l4lb.thisdcos.directory A" >"$work/own"
for _ in $(seq 100); do
	[[ -n $(dig +short -p "$vb_port" @127.0.0.1 app00000.marathon.l4lb.thisdcos.directory A) ]] && break
	sleep 0.2
done
own=$("$work/benchlatency" -server "127.0.0.1:$vb_port" -queries "$work/own" -n 5000)

echo
echo "Forwarding: Knot upstream with $NAMES names; uncached = A (TTL 0) of random names, cached = AAAA (TTL 3600) of $HOT names after a warm-up;"
echo "dnsperf -c $CLIENTS -q 200, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN}s each, $(nproc) CPUs shared, all on 127.0.0.1"
awk -v hz="$hz" '
NR == FNR { split($3, a, "="); p50[$1] = substr($2, 8); p90[$1] = substr($3, 8); p99[$1] = substr($4, 8); next }
{ k = $1 " " $2; n[k]++; qps[k] += $4; ticks[k] += $5; q[k] += $6; lost[k] += $7 }
END {
	printf "%-14s %12s %12s %12s %12s %9s %9s %9s %10s\n", "server", "uncached q/s", "CPU µs/q", "cached q/s", "CPU µs/q", "p50 µs", "p99 µs", "+p50 µs", "lost"
	split("knot vipbridge dnsdist dnsdist+cache unbound", order, " ")
	for (i = 1; i <= 5; i++) {
		s = order[i]; u = s " uncached"; c = s " cached"
		printf "%-14s %12.0f %12.1f %12.0f %12.1f %9.1f %9.1f %9.1f %10d\n", s, qps[u]/n[u], ticks[u]/hz*1e6/q[u], qps[c]/n[c], ticks[c]/hz*1e6/q[c],
			p50[s], p99[s], p50[s] - p50["knot"], lost[u] + lost[c]
	}
	ru = (qps["vipbridge uncached"]/n["vipbridge uncached"]) / (qps["dnsdist uncached"]/n["dnsdist uncached"])
	rc = (qps["vipbridge cached"]/n["vipbridge cached"]) / (qps["unbound cached"]/n["unbound cached"])
	add = p50["vipbridge"] - p50["knot"]
	printf "\ngoals: uncached q/s >= 0.7 x dnsdist (no cache): %.2f x, %s; cached q/s >= 1.0 x unbound: %.2f x, %s; added p50 <= 100 µs: %.1f µs, %s\n",
		ru, (ru >= 0.7 ? "met" : "not met"), rc, (rc >= 1.0 ? "met" : "not met"), add, (add <= 100 ? "met" : "not met")
}' "$lat" "$results"
echo
echo "per round (server set round q/s cpu_ticks queries lost):"
cat "$results"
echo "latency (one query at a time):"
cat "$lat"
echo "vipbridge, a name of its own zone (fast path): $own"

# The summary rows of `make bench` (scripts/bench-summary.sh).
if [[ -n ${VIPBRIDGE_BENCH_SUMMARY:-} ]]; then
	awk '
	NR == FNR { p50[$1] = substr($2, 8); next }
	{ k = $1 " " $2; n[k]++; qps[k] += $4 }
	END {
		v = qps["vipbridge uncached"]/n["vipbridge uncached"]; d = qps["dnsdist uncached"]/n["dnsdist uncached"]
		printf "forward\tuncached q/s (Knot upstream)\t%.0f\tdnsdist %.0f (vipbridge %.0f %%), unbound %.0f\t>= 70 %% of dnsdist\t%s\n", v, d, 100*v/d, qps["unbound uncached"]/n["unbound uncached"], (v >= 0.7*d ? "met" : "not met")
		v = qps["vipbridge cached"]/n["vipbridge cached"]; u = qps["unbound cached"]/n["unbound cached"]
		printf "forward\tcached q/s\t%.0f\tunbound %.0f (vipbridge %.0f %%), dnsdist+cache %.0f\t>= 100 %% of unbound\t%s\n", v, u, 100*v/u, qps["dnsdist+cache cached"]/n["dnsdist+cache cached"], (v >= u ? "met" : "not met")
		a = p50["vipbridge"] - p50["knot"]
		printf "forward\tadded p50 latency\t%.1f us\tdnsdist %.1f us, unbound %.1f us\t<= 100 us\t%s\n", a, p50["dnsdist"] - p50["knot"], p50["unbound"] - p50["knot"], (a <= 100 ? "met" : "not met")
	}' "$work/latency" "$results" >>"$VIPBRIDGE_BENCH_SUMMARY"
fi

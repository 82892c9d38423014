#!/usr/bin/env bash
# bench-dns.sh: DNS throughput of vipbridge next to Knot and NSD, same zone,
# same queries, same machine, one table (issue 5, "DNS throughput").
#
#   scripts/bench-dns.sh            (make bench-dns)
#
# Environment: ROUNDS (default 2) interleaved rounds of DURATION seconds (default 15)
# per server; CLIENTS (default 4) dnsperf client sockets; APPS (default
# 10000) named VIPs. Everything listens on 127.0.0.1; the script starts and
# stops only its own processes, by PID, and removes its work directory.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
SECONDS_PER_RUN=${DURATION:-15} # not $SECONDS: bash's own clock
CLIENTS=${CLIENTS:-4}
APPS=${APPS:-10000}
cd "$(dirname "$0")/.."

# Debian packages; apt-get update only when an install fails without it.
need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v nsd >/dev/null || need+=(nsd)
command -v dig >/dev/null || need+=(dnsutils)
if ((${#need[@]})); then
	echo "installing ${need[*]}" >&2
	apt-get install -y -q "${need[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/bench-dns.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/vipbridge" ./cmd/vipbridge
go build -o "$work/benchzone" ./scripts/benchzone

# The simulated cluster and vipbridge against it.
"$work/benchzone" serve -apps "$APPS" -urls "$work/urls" &
pids+=($!)
for _ in $(seq 600); do [[ -s $work/urls ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/urls"
vb_port=$(freeport)
http_port=$(freeport)
"$work/vipbridge" run --marathon "$MARATHON" --mesos "$MESOS" --data-dir "$work/data" \
	--dns-addr "127.0.0.1:$vb_port" --http-addr "127.0.0.1:$http_port" --log-level warn &
vb_pid=$!
pids+=($vb_pid)
for _ in $(seq 600); do
	n=$("$work/vipbridge" zone --http-addr "127.0.0.1:$http_port" 2>/dev/null | grep -c $'\tA\t' || true)
	[[ $n -ge $APPS ]] && break
	sleep 0.2
done
"$work/vipbridge" zone --http-addr "127.0.0.1:$http_port" -o "$work/l4lb.zone"
records=$(grep -c $'\tA\t' "$work/l4lb.zone" || true)
[[ $records -ge $APPS ]] || { echo "vipbridge serves $records names, want $APPS" >&2; exit 1; }
"$work/benchzone" queries -zone "$work/l4lb.zone" -n 200000 -o "$work/queries"

# Knot and NSD from the zone file vipbridge wrote.
knot_port=$(freeport)
mkdir -p "$work/knot"
cat >"$work/knot/knot.conf" <<EOF
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$knot_port
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot"
log:
  - target: stderr
    any: error
template:
  - id: default
    storage: "$work"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: l4lb.thisdcos.directory
    file: l4lb.zone
EOF
knotd -c "$work/knot/knot.conf" &
knot_pid=$!
pids+=($knot_pid)

nsd_port=$(freeport)
mkdir -p "$work/nsd"
cat >"$work/nsd/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$nsd_port
    server-count: 2
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "$work"
    database: ""
    pidfile: "$work/nsd/nsd.pid"
    xfrdfile: "$work/nsd/xfrd.state"
    zonelistfile: "$work/nsd/zone.list"
    logfile: "$work/nsd/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0   # response rate limiting off: one client at full speed is the point
remote-control:
    control-enable: no
zone:
    name: l4lb.thisdcos.directory
    zonefile: l4lb.zone
EOF
nsd -d -c "$work/nsd/nsd.conf" &
nsd_pid=$!
pids+=($nsd_pid)

# Every server must answer the same before anything is measured.
probe="$(sed -n 1p "$work/queries" | cut -d' ' -f1)"
for s in "vipbridge $vb_port" "knot $knot_port" "nsd $nsd_port"; do
	set -- $s
	for _ in $(seq 100); do
		dig +short +time=1 +tries=1 -p "$2" @127.0.0.1 "$probe" A 2>/dev/null | grep -q . && break
		sleep 0.2
	done
	got=$(dig +short -p "$2" @127.0.0.1 "$probe" A)
	[[ -n $got ]] || { echo "$1 does not answer $probe" >&2; exit 1; }
	echo "$1 on 127.0.0.1:$2: $probe A $got" >&2
done

# tree lists pid and its descendants (NSD forks its servers).
tree() {
	local p=$1
	echo "$p"
	for c in $(pgrep -P "$p"); do tree "$c"; done
}
# cpu_ticks sums utime+stime (clock ticks) over a process tree.
# The command name in stat may hold spaces ("nsd: main"): fields are
# counted after its closing parenthesis.
cpu_ticks() { for p in $(tree "$1"); do sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12+$13}'; done | awk '{s+=$1} END {print s+0}'; }
rss_kb() { for p in $(tree "$1"); do awk '/^VmRSS/ {print $2}' /proc/"$p"/status 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
hz=$(getconf CLK_TCK)

results="$work/results"
: >"$results"
measure() { # name pid port round
	local out="$work/dnsperf.$1.$4" before after
	before=$(cpu_ticks "$2")
	dnsperf -s 127.0.0.1 -p "$3" -d "$work/queries" -l "$SECONDS_PER_RUN" -c "$CLIENTS" -T 1 -q 200 -t 2 >"$out" 2>&1
	after=$(cpu_ticks "$2")
	local qps avg max done noerror nxdomain
	qps=$(awk '/Queries per second/ {print $4}' "$out")
	done=$(awk '/Queries completed/ {print $3}' "$out")
	avg=$(awk '/Average Latency/ {print $4}' "$out")
	max=$(awk '/Average Latency/ {gsub(/\)/,"",$8); print $8}' "$out")
	noerror=$(grep -o 'NOERROR [0-9]*' "$out" | awk '{print $2}')
	nxdomain=$(grep -o 'NXDOMAIN [0-9]*' "$out" | awk '{print $2}')
	echo "$1 $4 $qps $avg $max $(((after - before))) $done $(rss_kb "$2") ${noerror:-0} ${nxdomain:-0}" >>"$results"
	echo "round $4 $1: $qps q/s" >&2
}
for r in $(seq "$ROUNDS"); do
	measure vipbridge "$vb_pid" "$vb_port" "$r"
	measure knot "$knot_pid" "$knot_port" "$r"
	measure nsd "$nsd_pid" "$nsd_port" "$r"
done

echo
echo "DNS throughput: $APPS named VIPs, $(wc -l <"$work/queries") queries (90 % existing: A/AAAA/SRV, 10 % NXDOMAIN),"
echo "dnsperf -c $CLIENTS -q 200, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN}s each, $(nproc) CPUs shared, all on 127.0.0.1"
awk -v hz="$hz" '
{ n[$1]++; qps[$1]+=$3; avg[$1]+=$4; if ($5>max[$1]) max[$1]=$5; ticks[$1]+=$6; q[$1]+=$7; rss[$1]=$8; ne[$1]+=$9; nx[$1]+=$10 }
END {
	printf "%-10s %10s %9s %9s %10s %9s %14s %10s %10s\n", "server", "q/s", "avg ms", "max ms", "CPU µs/q", "RSS MB", "NOERROR/NXDOM", "q/s÷knot", "CPU÷knot"
	split("vipbridge knot nsd", order, " ")
	for (i = 1; i <= 3; i++) {
		s = order[i]
		cpu[s] = ticks[s] / hz * 1e6 / q[s]
	}
	for (i = 1; i <= 3; i++) {
		s = order[i]
		printf "%-10s %10.0f %9.3f %9.3f %10.2f %9.1f %6.1f%%/%5.1f%% %9.0f%% %9.0f%%\n", s, qps[s]/n[s], avg[s]/n[s]*1000, max[s]*1000,
			cpu[s], rss[s]/1024, 100*ne[s]/q[s], 100*nx[s]/q[s], 100*qps[s]/qps["knot"], 100*cpu[s]/cpu["knot"]
	}
}' "$results"
echo
echo "per round (server round q/s avg_s max_s cpu_ticks queries rss_kB noerror nxdomain):"
cat "$results"

# The summary rows of `make bench` (scripts/bench-summary.sh).
if [[ -n ${VIPBRIDGE_BENCH_SUMMARY:-} ]]; then
	awk -v hz="$hz" -v apps="$APPS" '
	{ qps[$1]+=$3; n[$1]++; ticks[$1]+=$6; q[$1]+=$7; ne[$1]+=$9; nx[$1]+=$10 }
	END {
		for (s in n) { rate[s] = qps[s]/n[s]; cpu[s] = ticks[s] / hz * 1e6 / q[s]; split_[s] = sprintf("%.1f/%.1f %%", 100*ne[s]/q[s], 100*nx[s]/q[s]) }
		r = rate["vipbridge"] / rate["knot"]
		printf "dns\tq/s, %d names, same queries (dnsperf)\t%.0f\tKnot %.0f (vipbridge %.0f %%), NSD %.0f\t>= 70 %% of Knot\t%s\n", apps, rate["vipbridge"], rate["knot"], 100*r, rate["nsd"], (r >= 0.7 ? "met" : "not met")
		printf "dns\tserver CPU per query\t%.1f us\tKnot %.1f us (vipbridge %.0f %%), NSD %.1f us\t<= 4.5 us\t%s\n", cpu["vipbridge"], cpu["knot"], 100*cpu["vipbridge"]/cpu["knot"], cpu["nsd"], (cpu["vipbridge"] <= 4.5 ? "met" : "not met")
		printf "dns\tNOERROR/NXDOMAIN split (query mix: 90/10)\t%s\tKnot %s\tsame as the mix\t%s\n", split_["vipbridge"], split_["knot"], (split_["vipbridge"] == split_["knot"] ? "met" : "not met")
	}' "$results" >>"$VIPBRIDGE_BENCH_SUMMARY"
fi

#!/usr/bin/env bash
# bench-dns.sh: DNS throughput of vipbridge next to Knot and NSD, same zones,
# same queries, same machine, one table per query mix (issue 5, "DNS
# throughput"; issue 10, item 6):
#
#   vip    10,000 named VIPs in l4lb.thisdcos.directory: 90 % existing
#          names (A/AAAA/SRV), 10 % NXDOMAIN (benchzone queries);
#   tasks  the task zones of 10,000 apps x 10 tasks (100,000 tasks): A and
#          SRV of task names in the mesos zone, autoip names, canonical and
#          .slave names, the mesos.thisdcos.directory mirror, 10 % NXDOMAIN
#          (benchzone taskqueries, scripts/benchzone/taskmix.go).
#
#   scripts/bench-dns.sh            (make bench-dns)
#
# One simulated cluster (marathontest.SizedScenario(APPS, TASKS): every app
# has a named VIP and TASKS running tasks with their agents' slaveId) feeds
# one daemon; Knot and NSD serve the zone files that daemon writes (GET
# /v1/zone?zone=NAME). The rounds interleave mixes and servers.
#
# Environment: ROUNDS (default 2) interleaved rounds of DURATION seconds (default 15)
# per server and mix; CLIENTS (default 4) dnsperf client sockets; APPS
# (default 10000) apps with a named VIP each; TASKS (default 10) tasks per
# app. Everything listens on 127.0.0.1; the script starts and stops only
# its own processes, by PID, and removes its work directory.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
SECONDS_PER_RUN=${DURATION:-15} # not $SECONDS: bash's own clock
CLIENTS=${CLIENTS:-4}
APPS=${APPS:-10000}
TASKS=${TASKS:-10}
cd "$(dirname "$0")/.."

. scripts/benchlib.sh
need_packages dnsperf=dnsperf knotd=knot nsd=nsd dig=dnsutils curl=curl
bench_workdir bench-dns

go build -o "$work/vipbridge" ./cmd/vipbridge
go build -o "$work/benchzone" ./scripts/benchzone

# The simulated cluster and vipbridge against it.
"$work/benchzone" serve -apps "$APPS" -tasks "$TASKS" -urls "$work/urls" &
pids+=($!)
for _ in $(seq 600); do [[ -s $work/urls ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/urls"
vb_port=$(freeport)
http_port=$(freeport)
api="http://127.0.0.1:$http_port"
"$work/vipbridge" run --marathon "$MARATHON" --mesos "$MESOS" --data-dir "$work/data" \
	--dns-addr "127.0.0.1:$vb_port" --http-addr "127.0.0.1:$http_port" --log-level warn &
vb_pid=$!
pids+=($vb_pid)
# Synced: every VIP named and every task a backend (the table that holds
# them holds the task zones' records of the same tasks).
backends() { curl -fsS "$api/metrics" 2>/dev/null | awk '/^vipbridge_records\{kind="backends"\}/ {n=$2} END {print n+0}'; }
for _ in $(seq 900); do
	n=$("$work/vipbridge" zone --http-addr "127.0.0.1:$http_port" 2>/dev/null | grep -c $'\tA\t' || true)
	[[ $n -ge $APPS && $(backends) -ge $((APPS * TASKS)) ]] && break
	sleep 0.2
done
[[ $(backends) -ge $((APPS * TASKS)) ]] || { echo "vipbridge has $(backends) backends, want $((APPS * TASKS))" >&2; exit 1; }
# The task zones of a first sync follow its VIPs by one build.
task_names() { curl -fsS "$api/metrics" 2>/dev/null | awk '/^vipbridge_records\{kind="task_names"\}/ {n=$2} END {print n+0}'; }
for _ in $(seq 900); do
	[[ $(task_names) -ge $((APPS * TASKS)) ]] && break
	sleep 0.2
done
[[ $(task_names) -ge $((APPS * TASKS)) ]] || { echo "vipbridge has $(task_names) task-zone names, want $((APPS * TASKS)) or more" >&2; exit 1; }
sleep 5 # a GC cycle or two after the initial sync
rss_synced_kb=$(awk '/^VmRSS/ {print $2}' /proc/$vb_pid/status)

# The zone files, as the daemon serves them.
"$work/vipbridge" zone --http-addr "127.0.0.1:$http_port" -o "$work/l4lb.zone"
records=$(grep -c $'\tA\t' "$work/l4lb.zone" || true)
[[ $records -ge $APPS ]] || { echo "vipbridge serves $records names, want $APPS" >&2; exit 1; }
curl -fsS "$api/v1/zone?zone=mesos" -o "$work/mesos.zone"
curl -fsS "$api/v1/zone?zone=mesos.thisdcos.directory" -o "$work/mesos-mirror.zone"
curl -fsS "$api/v1/zone?zone=dcos.thisdcos.directory" -o "$work/dcos.zone"
for z in l4lb mesos mesos-mirror dcos; do
	echo "$z.zone: $(grep -vc '^\$' "$work/$z.zone") records, $(du -h "$work/$z.zone" | cut -f1)" >&2
done
"$work/benchzone" queries -zone "$work/l4lb.zone" -n 200000 -o "$work/queries.vip"
"$work/benchzone" taskqueries -mesos "$work/mesos.zone" -dcos "$work/dcos.zone" -mirror "$work/mesos-mirror.zone" \
	-n 200000 -o "$work/queries.tasks"

# Knot and NSD from the zone files vipbridge wrote.
zones=("l4lb.thisdcos.directory l4lb.zone" "mesos mesos.zone"
	"mesos.thisdcos.directory mesos-mirror.zone" "dcos.thisdcos.directory dcos.zone")
knot_port=$(freeport)
mkdir -p "$work/knot"
knot_conf "$knot_port" "${zones[@]}" >"$work/knot/knot.conf"
knotd -c "$work/knot/knot.conf" &
knot_pid=$!
pids+=($knot_pid)

nsd_port=$(freeport)
mkdir -p "$work/nsd"
{
	cat <<EOF
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
EOF
	for z in "${zones[@]}"; do
		set -- $z
		printf 'zone:\n    name: %s\n    zonefile: %s\n' "$1" "$2"
	done
} >"$work/nsd/nsd.conf"
nsd -d -c "$work/nsd/nsd.conf" &
nsd_pid=$!
pids+=($nsd_pid)

# Every server must answer the same before anything is measured: the first
# name of each mix (Knot and NSD load 1.7 million records first).
for mix in vip tasks; do
	probe="$(sed -n 1p "$work/queries.$mix" | cut -d' ' -f1)"
	want=""
	for s in "vipbridge $vb_port" "knot $knot_port" "nsd $nsd_port"; do
		set -- $s
		for _ in $(seq 600); do
			dig +short +time=1 +tries=1 -p "$2" @127.0.0.1 "$probe" A 2>/dev/null | grep -q . && break
			sleep 0.2
		done
		got=$(dig +short -p "$2" @127.0.0.1 "$probe" A | sort | tr '\n' ' ')
		[[ -n $got ]] || { echo "$1 does not answer $probe" >&2; exit 1; }
		[[ -z $want || $got == "$want" ]] || { echo "$1 answers $probe A $got, vipbridge $want" >&2; exit 1; }
		want=$got
		echo "$1 on 127.0.0.1:$2: $probe A $got" >&2
	done
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
measure() { # mix server pid port round
	local out="$work/dnsperf.$1.$2.$5" before after
	before=$(cpu_ticks "$3")
	dnsperf -s 127.0.0.1 -p "$4" -d "$work/queries.$1" -l "$SECONDS_PER_RUN" -c "$CLIENTS" -T 1 -q 200 -t 2 >"$out" 2>&1
	after=$(cpu_ticks "$3")
	local qps avg max done noerror nxdomain
	qps=$(awk '/Queries per second/ {print $4}' "$out")
	done=$(awk '/Queries completed/ {print $3}' "$out")
	avg=$(awk '/Average Latency/ {print $4}' "$out")
	max=$(awk '/Average Latency/ {gsub(/\)/,"",$8); print $8}' "$out")
	noerror=$(grep -o 'NOERROR [0-9]*' "$out" | awk '{print $2}')
	nxdomain=$(grep -o 'NXDOMAIN [0-9]*' "$out" | awk '{print $2}')
	echo "$1 $2 $5 $qps $avg $max $(((after - before))) $done $(rss_kb "$3") ${noerror:-0} ${nxdomain:-0}" >>"$results"
	echo "round $5 $1 $2: $qps q/s" >&2
}
for r in $(seq "$ROUNDS"); do
	for mix in vip tasks; do
		measure "$mix" vipbridge "$vb_pid" "$vb_port" "$r"
		measure "$mix" knot "$knot_pid" "$knot_port" "$r"
		measure "$mix" nsd "$nsd_pid" "$nsd_port" "$r"
	done
done
hwm_kb=$(awk '/^VmHWM/ {print $2}' /proc/$vb_pid/status)

# table MIX prints one mix's table.
table() {
	awk -v hz="$hz" -v mix="$1" '
	$1 == mix { s=$2; n[s]++; qps[s]+=$4; avg[s]+=$5; if ($6>max[s]) max[s]=$6; ticks[s]+=$7; q[s]+=$8; rss[s]=$9; ne[s]+=$10; nx[s]+=$11 }
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
}
echo
echo "DNS throughput: one daemon, $APPS apps x $TASKS tasks, each app a named VIP; Knot and NSD serve its zone files."
echo "dnsperf -c $CLIENTS -q 200, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN}s per server and mix, $(nproc) CPUs shared, all on 127.0.0.1"
echo
echo "vip mix: $APPS named VIPs, $(wc -l <"$work/queries.vip") queries (90 % existing: A/AAAA/SRV, 10 % NXDOMAIN)"
table vip
echo
echo "tasks mix: $((APPS * TASKS)) tasks, $(wc -l <"$work/queries.tasks") queries (.mesos A 35 %, SRV 15 %; autoip A 20 %;"
echo "canonical A 10 %; .slave A 5 %; mesos.thisdcos.directory A 5 %; NXDOMAIN 10 %)"
table tasks
echo
echo "vipbridge RSS at $((APPS * TASKS)) tasks: $((rss_synced_kb / 1024)) MB synced, before any zone file was asked for;"
echo "peak (VmHWM) $((hwm_kb / 1024)) MB after the zone files and the runs. Knot's and NSD's RSS above hold all four zones."
echo
echo "per round (mix server round q/s avg_s max_s cpu_ticks queries rss_kB noerror nxdomain):"
cat "$results"

# The summary rows of `make bench` (scripts/bench-summary.sh).
if [[ -n ${VIPBRIDGE_BENCH_SUMMARY:-} ]]; then
	awk -v hz="$hz" -v apps="$APPS" -v tasks="$((APPS * TASKS))" -v rss="$rss_synced_kb" -v hwm="$hwm_kb" '
	{ k=$1 SUBSEP $2; qps[k]+=$4; n[k]++; ticks[k]+=$7; q[k]+=$8; rssk[k]=$9; ne[k]+=$10; nx[k]+=$11 }
	END {
		for (k in n) { rate[k] = qps[k]/n[k]; cpu[k] = ticks[k] / hz * 1e6 / q[k]; split_[k] = sprintf("%.1f/%.1f %%", 100*ne[k]/q[k], 100*nx[k]/q[k]) }
		split("vip tasks", mixes, " ")
		what["vip"] = sprintf("%d VIP names", apps); what["tasks"] = sprintf("task zones, %d tasks", tasks)
		for (i = 1; i <= 2; i++) {
			m = mixes[i]; v = m SUBSEP "vipbridge"; kn = m SUBSEP "knot"; ns = m SUBSEP "nsd"
			r = rate[v] / rate[kn]; c = cpu[v] / cpu[kn]
			printf "dns\tq/s, %s, same queries (dnsperf)\t%.0f\tKnot %.0f (vipbridge %.0f %%), NSD %.0f\t>= 1.0x Knot\t%s\n", what[m], rate[v], rate[kn], 100*r, rate[ns], (r >= 1.0 ? "met" : "not met")
			goal = "<= 1.0x Knot"; ok = c <= 1.0
			if (m == "vip") { goal = goal ", <= 4.5 us"; ok = ok && cpu[v] <= 4.5 }
			printf "dns\tserver CPU per query, %s\t%.1f us\tKnot %.1f us (vipbridge %.0f %%), NSD %.1f us\t%s\t%s\n", what[m], cpu[v], cpu[kn], 100*c, cpu[ns], goal, (ok ? "met" : "not met")
			printf "dns\tNOERROR/NXDOMAIN split, %s (query mix: 90/10)\t%s\tKnot %s\tsame as Knot\t%s\n", what[m], split_[v], split_[kn], (split_[v] == split_[kn] ? "met" : "not met")
		}
		printf "dns\tRSS at %d tasks: synced / peak after zone files and runs\t%.0f / %.0f MB\tKnot %.0f MB, NSD %.0f MB (all zones loaded)\tstated\t-\n", tasks, rss/1024, hwm/1024, rssk["tasks" SUBSEP "knot"]/1024, rssk["tasks" SUBSEP "nsd"]/1024
	}' "$results" >>"$VIPBRIDGE_BENCH_SUMMARY"
fi

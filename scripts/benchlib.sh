# benchlib.sh: what the DNS benchmark scripts share, sourced by them:
# installing Debian packages, a work directory whose processes are stopped
# (by PID) and which is removed on exit, and a free loopback port.

# need_packages installs the Debian packages of the given command=package
# pairs whose command is missing; apt-get update only when an install
# fails without it.
need_packages() {
	local need=() pair
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null || need+=("${pair#*=}")
	done
	if ((${#need[@]})); then
		echo "installing ${need[*]}" >&2
		apt-get install -y -q "${need[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
	fi
}

# bench_workdir makes $work (mktemp -d /tmp/<name>.XXXXXX) and the $pids
# list; on exit every PID in it is stopped and $work removed.
bench_workdir() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# knot_conf prints the configuration of a Knot listening on 127.0.0.1:$1,
# its state in $work/knot, serving the zones given as "domain file" pairs
# (files in $work).
knot_conf() {
	local port=$1 z
	shift
	cat <<EOC
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$port
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
EOC
	for z in "$@"; do
		set -- $z
		printf '  - domain: %s\n    file: %s\n' "$1" "$2"
	done
}

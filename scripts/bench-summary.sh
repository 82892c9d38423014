#!/bin/sh
# bench-summary FILE: the one table `make bench` ends with. Each bench
# target appends tab-separated rows to FILE (VIPBRIDGE_BENCH_SUMMARY):
# area, measure, vipbridge, peer in the same run, goal, verdict.
set -eu
file=${1:?usage: bench-summary.sh FILE}
[ -s "$file" ] || { echo "bench-summary: no rows in $file" >&2; exit 1; }
echo
echo "== make bench: summary ($(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ); figures, not assertions)"
awk -F '\t' '
BEGIN { split("area measure vipbridge peer/reference goal verdict", h, " ") }
{ for (i = 1; i <= 6; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
END {
	for (i = 1; i <= 6; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
	for (i = 1; i <= 6; i++) printf "%-" w[i] "s%s", h[i], (i < 6 ? "  " : "\n")
	for (r = 1; r <= NR; r++)
		for (i = 1; i <= 6; i++) printf "%-" w[i] "s%s", cell[r, i], (i < 6 ? "  " : "\n")
}' "$file"

#!/usr/bin/env bash
# test-standalone.sh: the suite as a lone clone runs it. Clones HEAD into a
# fresh temporary directory with nothing beside it (so no ../shared), and
# runs `go test -count=1 ./...` there with CI and VIPBRIDGE_UPSTREAM_FIXTURES
# unset: every test that needs the upstream fixtures must skip with one line,
# and everything else must pass. Prints each skipped test with its reason
# and fails when a test fails or when no test skipped for want of the
# fixtures (then the run did not prove anything). The IPVS kernel tests
# (scripts/test-kernel.sh) are not run. Extra arguments go to go test
# (e.g. -race).
#
#   scripts/test-standalone.sh [go test flags]   (make test-standalone; .ci/run runs it)
#
# Only committed work is tested: the clone is of HEAD (outside a git
# checkout, a copy of the directory is tested instead).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vipbridge-standalone.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if rev=$(git rev-parse --verify -q HEAD 2>/dev/null); then
	if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
		echo "test-standalone: uncommitted changes are not tested; testing HEAD $rev"
	fi
	# A local clone copies the object store, so a detached HEAD is there too.
	git clone --quiet --no-checkout . "$tmp/vipbridge"
	git -C "$tmp/vipbridge" checkout --quiet --detach "$rev"
else
	echo "test-standalone: not a git checkout; testing a copy of $(pwd)"
	mkdir "$tmp/vipbridge"
	tar -C . --exclude=./bin -cf - . | tar -C "$tmp/vipbridge" -xf -
fi

cd "$tmp/vipbridge"
start=$SECONDS
rc=0
env -u CI -u VIPBRIDGE_UPSTREAM_FIXTURES "${GO:-go}" test -count=1 -v -timeout 20m "$@" ./... >"$tmp/test.log" 2>&1 || rc=$?
took=$((SECONDS - start))

# With -v a test's log lines follow its "=== RUN/CONT/NAME" line and
# precede its "--- SKIP" line (a subtest's comes after its parent's end); the
# last one is the reason. Packages are named on their closing ok/FAIL line.
awk '
	/^=== (RUN|CONT|NAME) / { current = $3; next }
	/^ +[^ ].*_test\.go:[0-9]+: / { reason[current] = $0; next }
	/^ *--- SKIP: / {
		r = reason[$3]; sub(/^ */, "", r)
		skips[++n] = $3 ": " r
		next
	}
	/^(ok|FAIL)[ \t]/ && $2 ~ /\// {
		for (i = 1; i <= n; i++) print "skip " $2 " " skips[i]
		n = 0
		delete reason
	}
' "$tmp/test.log" >"$tmp/skips"
cat "$tmp/skips"
fixture_skips=$(grep -c 'upstream fixtures not found' "$tmp/skips" || true)
all_skips=$(wc -l <"$tmp/skips")

if ((rc != 0)); then
	grep -E -- '^(--- FAIL|FAIL|panic:)' "$tmp/test.log" || true
	echo "test-standalone: go test failed (exit $rc) after ${took}s; the end of its output:" >&2
	tail -n 60 "$tmp/test.log" >&2
	exit 1
fi
if ((fixture_skips == 0)); then
	echo "test-standalone: no test skipped for missing upstream fixtures: did the clone find some?" >&2
	exit 1
fi
echo "test-standalone: passed in ${took}s without upstream fixtures: $fixture_skips tests skipped for them, $all_skips skipped in all"

#!/usr/bin/env bash
# test-deps.sh: installs the Debian packages (and other tools) the tests
# need and this machine lacks, by running every scripts/deps.d/*.sh in
# order. Each of those names what one part of the suite needs, with
# need_packages from benchlib.sh. Needs root for apt-get; as another user
# it only prints what is missing (the tests that need it skip with one line,
# or fail under CI=true).
#
#   scripts/test-deps.sh     (make test and .ci/run call it)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
export DEBIAN_FRONTEND=noninteractive

for f in scripts/deps.d/*.sh; do
	[[ -e $f ]] || continue
	if [[ $(id -u) != 0 ]]; then
		echo "test-deps: not root, not running $f (its tests may skip)" >&2
		continue
	fi
	. "$f"
done

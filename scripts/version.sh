#!/usr/bin/env bash
# version.sh prints vipbridge's version from `git describe`, in Debian's
# version syntax, so that one string is the binary's (-X main.version),
# /v1/version's and the package's (make build, make deb):
#
#   tag v1.2.3                         1.2.3
#   3 commits after v1.2.3             1.2.3+git3.gabc1234
#   tag v1.3.0-rc1 (a pre-release)     1.3.0~rc1         (sorts before 1.3.0)
#   no v* tag: 57 commits in all       0.0.0+git57.gabc1234
#   uncommitted changes                ...+dirty, or .dirty after +git...
#   not a git checkout                 0.0.0+unknown
#
# "+gitN" grows with every commit (a shallow clone counts only the commits
# it holds, and has no tag unless fetched with them), so later builds sort later; "~" sorts
# before the release it precedes. Only [0-9A-Za-z.+~] appear, and never a
# "-": the package has no Debian revision.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo 0.0.0+unknown
	exit 0
fi
dirty=
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	dirty=dirty
fi
hash=$(git rev-parse --short=7 HEAD)
if desc=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	# v<tag>-<commits since>-g<hash>; the tag itself may hold "-".
	[[ $desc =~ ^v(.+)-([0-9]+)-g([0-9a-f]+)$ ]] || { echo "version.sh: cannot read $desc" >&2; exit 1; }
	base=${BASH_REMATCH[1]} since=${BASH_REMATCH[2]} hash=${BASH_REMATCH[3]}
	base=${base//-/\~}
	base=${base//[^0-9A-Za-z.+~]/.}
else
	base=0.0.0 since=$(git rev-list --count HEAD)
fi
v=$base
if [[ $since != 0 ]]; then
	v+=+git$since.g$hash
fi
if [[ -n $dirty ]]; then
	if [[ $v == *+* ]]; then v+=.$dirty; else v+=+$dirty; fi
fi
echo "$v"

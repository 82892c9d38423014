#!/usr/bin/env bash
# build-deb.sh builds bin/vipbridge_<version>_<arch>.deb (make deb): the
# static binary (CGO_ENABLED=0) with the version of scripts/version.sh
# built in, packed by nfpm (packaging/nfpm.yaml) with the units, the
# environment file as a conffile, the system user and /var/lib/vipbridge.
# It prints the package's path.
#
#   scripts/build-deb.sh                 VERSION=... GOARCH=... override
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# nfpm, pinned; `go run` fetches it through the module proxy once and then
# builds it from the module cache.
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

export VERSION=${VERSION:-$(scripts/version.sh)}
export GOARCH=${GOARCH:-$($GO env GOARCH)}
case $GOARCH in
	386) debarch=i386 ;;
	arm) debarch=armhf ;;
	*) debarch=$GOARCH ;;
esac
if [[ ! $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
	echo "build-deb: version $VERSION is not a Debian version without revision (scripts/version.sh)" >&2
	exit 1
fi

work=bin/deb
rm -rf "$work" && mkdir -p "$work"
BINARY=$work/vipbridge # packaging/nfpm.yaml names it and $work/changelog.gz
CGO_ENABLED=0 GOOS=linux $GO build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$BINARY" ./cmd/vipbridge

# The changelog (a native package's, changelog.gz): one entry, this build.
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
cat >"$work/changelog" <<EOC
vipbridge ($VERSION) unstable; urgency=medium

  * Built from commit $commit.

 -- vipbridge maintainers <vipbridge@lists.example.org>  $(date -u -R -d "@$when")
EOC
gzip -9n "$work/changelog"

deb=bin/vipbridge_${VERSION}_${debarch}.deb
rm -f "$deb"
$GO run "$NFPM" package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2
echo "$deb"

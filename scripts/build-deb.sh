#!/usr/bin/env bash
# build-deb.sh builds bin/vipbridge_<version>_<arch>.deb (make deb): the
# static binary (CGO_ENABLED=0) with the version of scripts/version.sh
# built in, packed by nfpm (packaging/nfpm.yaml) with the units, the
# environment file as a conffile, the system user, /var/lib/vipbridge and
# the manual page (scripts/manpage.sh).
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
BINARY=$work/vipbridge # packaging/nfpm.yaml names it, changelog.gz and vipbridge.8.gz
CGO_ENABLED=0 GOOS=linux $GO build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$BINARY" ./cmd/vipbridge

# The manual page, from the binary's usage texts (a host build when
# cross-compiling: the page is the same).
man_bin=$BINARY
if [[ $GOARCH != "$($GO env GOHOSTARCH)" ]]; then
	man_bin=$work/vipbridge-host
	GOARCH=$($GO env GOHOSTARCH) CGO_ENABLED=0 $GO build -o "$man_bin" ./cmd/vipbridge
fi
scripts/manpage.sh "$man_bin" "$VERSION" | gzip -9n >"$work/vipbridge.8.gz"

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

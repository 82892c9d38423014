#!/usr/bin/env bash
# build-etcd.sh VERSION DIR: builds the etcd server VERSION (3.5 or later)
# from the Go module proxy into DIR/etcd-VERSION, unless it is there. The
# cluster-mode tests run a few of their cases against each such version
# (TestEtcdVersions), beside Debian's etcd 3.4 and the embedded current
# server. Only for tests: vipbridge never links the etcd server.
set -euo pipefail
version=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
out="$dir/etcd-$version"
[[ -x $out ]] && exit 0
src=$(mktemp -d /tmp/build-etcd.XXXXXX)
trap 'rm -rf "$src"' EXIT
cat >"$src/main.go" <<'GO'
// Command etcd is the etcd server, for vipbridge's tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
printf 'module etcdserver\n\ngo 1.24\n' >"$src/go.mod"
echo "build-etcd: building etcd $version into $out" >&2
(cd "$src" && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@v$version" >/dev/null 2>&1 && CGO_ENABLED=0 go build -o "$out.tmp" .)
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# test-deb.sh checks the Debian package (make test, make test-deb): it
# builds it (scripts/build-deb.sh) unless given one, installs it into a
# throwaway root with `dpkg --root --unpack`, and checks there:
#   - every file, its mode, the conffile, the static binary;
#   - one version: the package's = `vipbridge version` = GET /v1/version of
#     the installed binary running, a valid Debian version, no "dev";
#   - the installed units pass systemd-analyze verify;
#   - the maintainer scripts' steps, run with every command they call
#     replaced by a stub that logs it (nothing touches this machine);
#   - lintian reports no error.
# Without dpkg-deb or lintian it skips with one line (fails under CI=true).
#
#   scripts/test-deb.sh [bin/vipbridge_<version>_<arch>.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/benchlib.sh

for tool in dpkg-deb dpkg lintian systemd-analyze curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "test-deb: SKIP: $tool not installed (scripts/test-deps.sh installs it)" >&2
		[[ ${CI:-} == true ]] && exit 1
		exit 0
	fi
done

deb=${1:-$(scripts/build-deb.sh)}
bench_workdir vipbridge-test-deb
root=$work/root
fails=0
fail() { echo "test-deb: FAIL: $*" >&2; fails=$((fails + 1)); }

# Install into the throwaway root: dpkg's own database there, unpack only
# (configuring would run postinst chrooted into a root without a shell).
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
force=()
[[ $(id -u) == 0 ]] || force=(--force-not-root)
dpkg --root="$root" "${force[@]}" --unpack "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --root --unpack"; }

# The files, with their modes.
check_mode() { # path mode
	if [[ ! -e $root$1 ]]; then
		fail "$1 missing"
	elif [[ $(stat -c %a "$root$1") != "$2" ]]; then
		fail "$1 has mode $(stat -c %a "$root$1"), want $2"
	fi
}
check_mode /usr/bin/vipbridge 755
check_mode /lib/systemd/system/vipbridge.service 644
check_mode /lib/systemd/system/vipbridge.socket 644
check_mode /usr/lib/sysusers.d/vipbridge.conf 644
check_mode /etc/default/vipbridge.dpkg-new 644 # a conffile, until configure
check_mode /usr/share/doc/vipbridge/copyright 644
check_mode /usr/share/doc/vipbridge/changelog.gz 644
check_mode /usr/share/man/man8/vipbridge.8.gz 644
check_mode /var/lib/vipbridge 755
cmp -s "$root/etc/default/vipbridge.dpkg-new" packaging/vipbridge.env || fail "/etc/default/vipbridge differs from packaging/vipbridge.env"
cmp -s "$root/lib/systemd/system/vipbridge.service" packaging/vipbridge.service || fail "vipbridge.service differs from packaging/"
cmp -s "$root/lib/systemd/system/vipbridge.socket" packaging/vipbridge.socket || fail "vipbridge.socket differs from packaging/"
dpkg-deb --info "$deb" conffiles | grep -qx /etc/default/vipbridge || fail "/etc/default/vipbridge is not a conffile"
grep -q '^u vipbridge ' "$root/usr/lib/sysusers.d/vipbridge.conf" || fail "sysusers.d names no user vipbridge"
${GO:-go} version -m "$root/usr/bin/vipbridge" | grep -q 'CGO_ENABLED=0' || fail "the binary is not built with CGO_ENABLED=0 (static)"

# One version everywhere.
pkgver=$(dpkg-deb -f "$deb" Version)
binver=$("$root/usr/bin/vipbridge" version)
port=$(freeport)
"$root/usr/bin/vipbridge" run --marathon http://127.0.0.1:1 --lb none --data-dir "$work/data" \
	--dns-addr 127.0.0.1:0 --http-addr "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
pids+=($!)
apiver=
for _ in $(seq 300); do # up to 30 s: bounds a failure only
	apiver=$(curl -fsS "http://127.0.0.1:$port/v1/version" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])' 2>/dev/null) && break
	sleep 0.1
done
kill "${pids[-1]}"
[[ $binver == "vipbridge $pkgver" ]] || fail "vipbridge version says '$binver', the package is $pkgver"
[[ $apiver == "$pkgver" ]] || fail "/v1/version says '$apiver', the package is $pkgver"
[[ $pkgver != *dev* ]] || fail "package version $pkgver says dev"
dpkg --validate-version "$pkgver" || fail "$pkgver is not a valid Debian version"
[[ $deb == */vipbridge_${pkgver}_$(dpkg-deb -f "$deb" Architecture).deb ]] || fail "$deb is not named vipbridge_<version>_<arch>.deb"

# The installed units, ExecStart pointing into the root.
mkdir -p "$work/units"
sed "s#^ExecStart=/usr/bin/vipbridge#ExecStart=$root/usr/bin/vipbridge#" "$root/lib/systemd/system/vipbridge.service" >"$work/units/vipbridge.service"
cp "$root/lib/systemd/system/vipbridge.socket" "$work/units/"
out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$work/units/vipbridge.service" "$work/units/vipbridge.socket" 2>&1) || fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify: $out"

# The maintainer scripts, with stubs for every command they run.
mkdir -p "$work/stubs"
for c in adduser getent chown chmod grep deb-systemd-helper deb-systemd-invoke systemctl rm; do
	printf '#!/bin/sh\necho "%s $*" >>"%s"\n[ "%s" != getent ] && [ "%s" != grep ]\n' "$c" "$work/calls" "$c" "$c" >"$work/stubs/$c"
	chmod +x "$work/stubs/$c"
done
dpkg-deb -e "$deb" "$work/control"
run_script() { # script args...
	: >"$work/calls"
	PATH=$work/stubs /bin/sh "$work/control/$1" "${@:2}" || fail "$1 $* exited $?"
}
expect_call() { grep -Fq -- "$1" "$work/calls" || { fail "$2: no call '$1' in: $(tr '\n' ';' <"$work/calls")"; }; }
run_script postinst configure
expect_call "adduser --system --group" "postinst configure (first install)"
expect_call "chown vipbridge:vipbridge /var/lib/vipbridge" "postinst configure"
expect_call "chmod 0750 /var/lib/vipbridge" "postinst configure"
expect_call "deb-systemd-helper enable vipbridge.socket" "postinst configure" # was-enabled says yes on a first install
expect_call "deb-systemd-helper enable vipbridge.service" "postinst configure"
run_script prerm upgrade 0.0.1
grep -q stop "$work/calls" && fail "prerm upgrade stops the daemon: $(cat "$work/calls")"
run_script postrm purge
expect_call "deb-systemd-helper purge vipbridge.socket vipbridge.service" "postrm purge"
expect_call "rm -rf /var/lib/vipbridge" "postrm purge"

# Lintian: errors fail, warnings are listed.
lintian --fail-on error --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' >"$work/lintian" || true
if grep -q '^E:' "$work/lintian"; then
	fail "lintian errors: $(grep '^E:' "$work/lintian")"
fi
sed 's/^/test-deb: lintian: /' "$work/lintian" >&2

if ((fails)); then
	echo "test-deb: $fails failures ($deb)" >&2
	exit 1
fi
echo "test-deb: ok: $deb (version $pkgver)"

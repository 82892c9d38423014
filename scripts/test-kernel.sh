#!/usr/bin/env bash
# test-kernel.sh: the tests that need a real IPVS kernel (package lb, and the
# whole daemon with --lb ipvs), run as root in a throwaway QEMU VM by
# kvm-run (../shared/tools/kvm-run, or $KVM_RUN). Without kvm-run the step
# is skipped with one line, except under CI=true, where it fails.
#
#   scripts/test-kernel.sh          (make test-kernel; make test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

kvm=${KVM_RUN:-../shared/tools/kvm-run}
if [[ ! -x $kvm ]]; then
	if [[ ${CI:-} == true ]]; then
		echo "test-kernel: kvm-run not found at $kvm (set KVM_RUN): the IPVS kernel tests cannot run" >&2
		exit 1
	fi
	echo "test-kernel: kvm-run not found at $kvm (set KVM_RUN): skipping the IPVS kernel tests"
	exit 0
fi

out=$(mktemp -d /tmp/vipbridge-kernel.XXXXXX)
trap 'rm -rf "$out"' EXIT
export CGO_ENABLED=0
go test -c -o "$out/lb.test" ./lb
go test -c -o "$out/vipbridge.test" ./cmd/vipbridge

# run NAME BINARY ARGS: the binary in the VM; prints its test lines, and
# everything when it fails.
run() {
	local name=$1 bin=$2
	shift 2
	echo "== $name (kvm-run)"
	if "$kvm" --mem 1G --timeout 600 -e VIPBRIDGE_KERNEL_TESTS=1 "$bin" -test.count=1 -test.v "$@" >"$out/$name.log" 2>&1; then
		grep -E '^(--- |ok|PASS)' "$out/$name.log" || true
	else
		cat "$out/$name.log"
		echo "test-kernel: $name failed in the VM" >&2
		return 1
	fi
}
run lb "$out/lb.test"
run daemon "$out/vipbridge.test" -test.run '^(TestDaemonIPVS|TestDaemonDataplaneIPVS|TestMonitoringMetricsIPVS|TestVIPsIPVS)$'

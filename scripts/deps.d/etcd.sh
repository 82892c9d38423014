# etcd.sh (sourced by scripts/test-deps.sh): the etcd server for the
# cluster-mode tests and bench-cluster (Debian's etcd-server, 3.4, the
# version DC/OS ships), and the 3.5 and 3.6 servers built from the Go
# module proxy into bin/etcd (TestEtcdVersions). The etcd server is never
# linked into vipbridge.
need_packages etcd=etcd-server
for v in 3.5.36 3.6.16; do
	scripts/build-etcd.sh "$v" bin/etcd
done

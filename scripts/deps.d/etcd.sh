# etcd.sh (sourced by scripts/test-deps.sh): the etcd server for the
# cluster-mode tests and bench-cluster (Debian's etcd-server, 3.4, the
# version DC/OS ships). The etcd binary is never linked into vipbridge.
need_packages etcd=etcd-server

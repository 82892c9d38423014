// Package lb makes the kernel's load balancer match the desired VIP table
// published by discovery. It has three dataplanes, each satisfying
// discovery.Dataplane: None (records and DNS only), IPVS (Linux IPVS,
// built by NewIPVS) and NFTables (nftables, for kernels without IPVS,
// built by NewNFTables; ProbeNFTables says whether the kernel can run
// it). The caller builds the one it wants (cmd/vipbridge picks by --lb)
// and runs its Run beside it.
//
// discovery calls Apply with each new table and enforces the order of
// effects (dataplane before DNS on add, DNS before dataplane on remove), so a
// dataplane only has to converge the kernel to the table it is given.
//
// The IPVS dataplane owns, in the kernel: the IPVS services on its VIP
// addresses, the dummy interface (default vipbridge0) and the local routes
// through it that make the VIP addresses local (protocol 250), the
// nftables table "inet vipbridge" (masquerade), and the sysctls
// net.ipv4.vs.conntrack and net.ipv4.vs.expire_nodest_conn, which it sets
// to 1. It programs the kernel by netlink and /proc/sys only.
//
// The nftables dataplane owns the tables "vipbridge_lb" and
// "vipbridge_lb_01" to "vipbridge_lb_15" of the ip and ip6 families, the
// table "inet vipbridge" (masquerade, as IPVS), and the conntrack entries
// of the backends it removes. It programs the kernel by netlink only and
// never changes another table.
package lb

// Package dnsserver answers DNS for the VIP names of a discovery.Table. It
// owns the zones l4lb.thisdcos.directory. and its alias
// dclb.thisdcos.directory. and serves them authoritatively over UDP and TCP
// on one port, on one address or several. It never recurses: other names
// go to a Forwarder (package forward) for clients in the allow list, and
// are REFUSED to others or without a Forwarder (forwarding.go).
//
// Records (DESIGN.md "Names", UPSTREAM.md §1.3 and §2.2):
//
//	<name>.<framework>.<zone>            A, AAAA   the VIP addresses
//	_<name>._tcp.<framework>.<zone>      SRV       0 1 <port> <name>.<framework>.<zone>.
//	_<name>._udp.<framework>.<zone>      SRV       same, for UDP ports
//	<zone>                               SOA, NS   ns.<zone>, hostmaster.<zone>
//
// Choices where the brief left room, with the reason:
//
//   - Names are answered in the zone of the question: a query under dclb gets
//     dclb owner names, SRV targets and SOA, so a client never sees a name it
//     did not ask about.
//   - SRV records have priority 0 and weight 1. Every port of a VIP name is
//     one equal record; equal non-zero weights give uniform selection in all
//     RFC 2782 clients, while weight 0 mixed with others means "last resort"
//     to some of them.
//   - <name> may contain dots. The lookup key is "<name>.<framework>", the
//     labels of the question joined back together, so _a.b._tcp.c.<zone> and
//     _a._tcp.b.c.<zone> both answer for the key "a.b.c".
//   - A query of class other than IN is REFUSED (the zones exist in IN only).
//     AXFR and IXFR are REFUSED too: zone transfers are not offered.
//   - ANY is answered with every record of the name (A and AAAA, SRV, or SOA
//     and NS at the apex) rather than the RFC 8482 minimal answer: the sets
//     are tiny and clients such as `dig ANY` expect them.
//   - SOA: serial is the table generation (truncated to 32 bits), refresh 60,
//     retry 180, expire 86400 and minimum equal to the TTL; rname
//     hostmaster.<zone> (RFC 2142). ns.<zone> has no address record: clients
//     reach this server through forwarding, never through delegation.
//   - Empty non-terminals (<framework>.<zone>, _tcp.<framework>.<zone>) answer
//     NOERROR without data, so RFC 8020 resolvers do not prune real names.
//   - UDP answers are limited to the client's EDNS0 size (512 without EDNS0,
//     never less than 512) and at most 1232 octets, the DNS flag day 2020
//     size that avoids IP fragmentation; larger answers are truncated with
//     TC set so the client retries over TCP.
//   - Load: the full path answers at most MaxConcurrent queries (default
//     1,024) at once and keeps at most as many TCP connections; more are
//     dropped and counted, UDP datagrams at the socket, before miekg/dns
//     gives each a goroutine (fastConn.admit), so a flood costs neither
//     unbounded goroutines nor unbounded memory. The common
//     query is answered from replies packed in advance (fastpath.go), read
//     and written in batches on Linux (batch_linux.go).
package dnsserver

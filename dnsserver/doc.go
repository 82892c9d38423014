// Package dnsserver answers DNS for the VIP names of a discovery.Table. It
// owns the zones l4lb.thisdcos.directory. and its alias
// dclb.thisdcos.directory. and serves them authoritatively over UDP and TCP
// on one port, on one address or several, with the task zones
// (taskzone.go). It never recurses: other names go to a Forwarder
// (package forward) for clients in the allow list, and are REFUSED to
// others or without a Forwarder (forwarding.go).
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
//   - The task zones' A, AAAA and SRV queries take the fast path too
//     (taskfast.go), with NXDOMAIN, NODATA, the mesos domain's NOERROR for
//     an unknown SRV name and each zone's TTL as taskzone.go has them.
//     Memory decides their shape: packing whole replies per name, for
//     five zone spellings and three types, would hold about 300,000 × 15
//     replies at 100,000 tasks. Instead the fast path indexes the table's
//     own *discovery.Records by name relative to the record zone (one map
//     per record zone, one entry per name, shared by every spelling of its
//     zone), keyed by the table's own name strings, so that the index
//     copies no name (a query's wire name is turned into that spelling in
//     place), and writes the reply at serving time: fixed-size A and AAAA
//     records owned by a pointer to the question, SRV records whose target
//     is the relative name with the asked zone's wire name spliced in, and
//     the targets' first A and AAAA, kept per SRV name (5 octets a record,
//     21 if a target has an AAAA) and refreshed, via an index from each
//     target to the SRV names pointing at it (one inline, the others in a
//     shared list), when the target's records change (a task's address
//     learnt late changes its names, not its SRV names). An entry is two
//     pointers: the common name, without SRV records, needs no more. A
//     new table costs the names that changed and the SRV names pointing
//     at them (discovery.ChangedRecords), never a pass over the names.
//     Measured at 10,000 apps × 10 tasks (270,000 names, 200,000 SRV
//     targets; BenchmarkFastTaskRepack): the index takes about 40 MB of
//     heap (75 MB when it was keyed by copied wire names, with a list per
//     target); one changed task costs 0.06 to 0.11 ms to repack, mostly
//     copying the shard directories of the index maps; packing from
//     nothing (a restart) took 2 to 2.5 s on a loaded 2-core machine, in
//     the background while the full path answers (runPacker).
//   - Rotation: answers with several records start at the next record in
//     each reply, the fast path and the full path sharing the server's
//     count (taskzone.go's rotated), so clients taking the first record
//     spread over all; the tests give both paths the same count and
//     require equal replies. In an SRV answer the additional section
//     follows the turned order (one A and one AAAA per target, at its
//     first record), as the full path writes it.
package dnsserver

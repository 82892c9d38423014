// Package forward forwards DNS queries for names vipbridge does not serve
// to upstream resolvers, as dcos-dns does on a DC/OS node (UPSTREAM.md
// §2.3), so that vipbridge can be a node's resolver.
//
// A Forwarder owns the upstream sets (the default one and one per forward
// zone, the longest zone match winning), dcos-dns's dispatch (with three or
// more upstreams ask the two with the fewest recent failures, random among
// equals, in parallel; the first good answer wins), the exchange over UDP
// or TCP, an answer cache, the bound on queries in flight, loop detection
// and the metrics of all that.
//
// Contract of Forward: whatever the upstreams do, the reply is well formed,
// carries the client's id and question, has RA set, honours the client's
// EDNS0 (an OPT record only if the query had one, the DO bit copied) and
// fits the client's size (UDP: its EDNS0 size clamped to [512, 1232], 512
// without EDNS0; TCP: 64 KiB), with TC set when records had to go. When no
// upstream gave a good answer within the timeout it is SERVFAIL.
//
// Choices where the brief left room, with the reason:
//
//   - Identical questions in flight (same name, type, class, DO and CD bits
//     and transport) share one upstream exchange: a thousand clients asking
//     the same name cost the upstreams one query, not a thousand.
//   - Loops: a query that arrives while the same question is in flight and
//     carries the id this forwarder sent upstream is its own query come
//     back (a forwarder that keeps ids forwarded it to us): SERVFAIL at
//     once, counted. A loop through forwarders that change ids ends by the
//     sharing above: the query that came back waits on the exchange it is
//     part of, which ends at the timeout; one query per hop, never a storm.
//     An upstream that is one of our own listen addresses is dropped when
//     the Forwarder is built, with a log line.
//   - An upstream answer is good when it parses, answers our id and our
//     question, and has rcode NOERROR or NXDOMAIN. SERVFAIL, REFUSED and the
//     like count as the upstream's failure; the other upstream asked may
//     still answer.
//   - Recent failures halve every 30 s, so an upstream that failed once is
//     asked again soon, and one that keeps failing is avoided.
//   - ANY is answered without asking anyone, by the RFC 8482 §4.2 HINFO.
//   - The cache keeps an answer for the smallest TTL of its records
//     (answers with records), the SOA's minimum and TTL, whichever is
//     smaller, for negative answers (RFC 2308 §5; without an SOA they are
//     not cached), SERVFAIL 2 s; at most a day. It never keeps a truncated
//     answer nor one holding a record of a zone vipbridge serves. Served
//     TTLs count down with the entry's age. When full, an expired entry
//     or else an arbitrary one makes room.
//   - Answers are not authoritative (AA clear); AD is passed on only to a
//     client that set AD or DO (RFC 6840 §5.8).
//   - UDP queries go out through four connected sockets per upstream, kept
//     open and shared by every query in flight (mux.go), as dnsdist does:
//     a socket per query costs four system calls more. The ids of the
//     queries in flight on one socket differ; an answer is taken only
//     for an id that waits, and then only if it answers the question. The
//     source ports do not change, so the upstreams are meant to be on the
//     node's own network (dcos-dns's are), not across the Internet.
//   - A cached answer is kept packed as well, and a hit is served by
//     patching id, flags, the question's spelling, the TTLs and the OPT
//     record into a copy of those bytes (ForwardPacked, wire.go).
package forward

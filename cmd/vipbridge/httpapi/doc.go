// Package httpapi serves vipbridge's read-only HTTP API over every zone
// vipbridge serves: the VIP zone l4lb.thisdcos.directory and the task
// zones (the mesos domain, its dcos-dns mirror mesos.thisdcos.directory,
// and dcos.thisdcos.directory), plus liveness and readiness probes and
// Prometheus metrics.
//
// Endpoints and the upstream shape each follows:
//
//	/records                  vipbridge's own: every record of every zone, VIPs, label errors
//	/records/{name}           vipbridge's own: the records and VIPs of one VIP name
//	/v1/vips                  dcos-net (dcos_rest_vips_handler.erl), UPSTREAM.md §1.8
//	/v1/records               dcos-dns (dcos_rest_dns_handler.erl), §2.4: {name, host, rtype}, every zone
//	/v1/hosts/{host}          mesos-dns (resolver.go RestHost), §3.3, §3.5
//	/v1/hosts/{host}/ports    mesos-dns: 501
//	/v1/services/{service}    mesos-dns (resolver.go RestService), §3.3, §3.5
//	/v1/enumerate             mesos-dns (records/generator.go EnumerationData), the mesos zone
//	/v1/axfr                  mesos-dns (models/models.go AXFR), the mesos zone, as dcos-dns polls it
//	/v1/config                mesos-dns's idea (its Config as JSON): vipbridge's settings, secrets removed
//	/v1/version               dcos-dns: {Service, Version}
//	/v1/zone?zone=NAME        an RFC 1035 master file of one zone (default the VIP zone), for Knot and NSD
//	/healthz, /readyz, /metrics
//	/v1/watch                 vipbridge's own: server-sent events, a snapshot then deltas (feed.go, watch.go)
//	/ui/                      vipbridge's own: the live status page, embedded, following /v1/watch (ui.go)
//
// /v1/hosts and /v1/services take mesos-dns's shapes, not dcos-dns's. The
// two differ only in details: mesos-dns shows "port" as a string, the
// host with its trailing dot, and answers a name without records with one
// all-empty entry, where dcos-dns shows an int port and an empty list.
// mesos-dns's is the shape clients of .mesos names (the bulk of these
// endpoints' users) were written against, and dcos-dns's own /v1/hosts
// is a thin view of its resolver, which forwarded .mesos to mesos-dns
// anyway. So: [{"host": "<name>.", "ip": "<ip>"}] per A and AAAA record,
// [{"service": "<as asked>", "host": "<target>.", "ip": "<ip>", "port":
// "<port>"}] per SRV record (ip: the target's first IPv4 address, else its
// first IPv6 one; mesos-dns shows IPv4 only). Both answer by asking the
// DNS server (Resolver), so every zone and naming rule is answered exactly
// as DNS answers it, and names outside vipbridge's zones as DNS answers
// them (REFUSED today: the empty entry; forwarded once DNS forwards). The
// name is a DNS name; mesos-dns's clean-up applies (".*" removed, lower
// case, trailing dot added); the bare "<name>.<framework>" VIP keys the
// dcos-dns shaped version accepted are not names, and now give the empty
// entry.
//
// /v1/enumerate and /v1/axfr cover the mesos zone alone, as mesos-dns's
// do, and answer 404 when it is not served (empty MesosDomain). /v1/axfr
// is mesos-dns's AXFR field for field: names fully qualified with the
// trailing dot, SRV values "<target>.:<port>", every record map present
// ({} when empty: dcos-dns folds over each); Mname, Rname and Serial come
// from the SOA DNS serves for the zone, or mesos-dns's defaults (ns1.<domain>.,
// root.ns1.<domain>., the table's build time) while DNS serves none;
// RefreshSeconds is MesosRefresh. /v1/records and /records list the VIP
// zone, then the task zones; JSON views show names as the table holds
// them, the zone files leave out names DNS cannot carry (a label over 63
// octets, which mesos-dns's canonical names of long task names have).
//
// Every endpoint answers GET and HEAD only; other methods get 405 with an
// Allow header, unknown paths a JSON 404. Query strings are ignored except
// /v1/zone's zone. The handlers read nothing from request bodies and never
// show credentials: a Table holds none, /v1/config removes every setting
// whose name says it holds a secret and the user information of every
// URL, and upstream error texts shown by /readyz have any URL user
// information removed.
package httpapi

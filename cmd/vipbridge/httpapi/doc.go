// Package httpapi serves vipbridge's read-only HTTP API: the records and VIPs
// of the latest discovery.Table in vipbridge's own shape (/records), the
// dcos-net and dcos-dns compatible views (/v1/vips, /v1/records,
// /v1/hosts/{host}, /v1/services/{service}, /v1/version), liveness and
// readiness probes (/healthz, /readyz) and Prometheus metrics (/metrics).
//
// Every endpoint answers GET and HEAD only; other methods get 405 with an
// Allow header, unknown paths a JSON 404. Query strings are ignored. The
// handlers read nothing from request bodies and never show credentials:
// a Table holds none, and upstream error texts shown by /readyz have any
// URL user information removed.
//
// Upstream shapes: dcos/dcos-net apps/dcos_rest/src/dcos_rest_vips_handler.erl
// (/v1/vips) and apps/dcos_rest/src/dcos_rest_dns_handler.erl (/v1/records,
// /v1/hosts, /v1/services, /v1/version); see UPSTREAM.md §1.8 and §2.4.
package httpapi

// Package discovery is the core of vipbridge: it owns the model of apps and
// tasks, the VIP label grammar, name normalisation, VIP address allocation,
// the bbolt store and the level-triggered reconciler that publishes immutable
// Tables to the DNS server, the HTTP API and the dataplane.
//
// It imports none of vipbridge's other packages. Producers (package marathon)
// convert upstream JSON into the types of model.go; consumers (dnsserver, lb,
// the HTTP API) read *Table values.
package discovery

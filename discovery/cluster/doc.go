// Package cluster is vipbridge's cluster mode on etcd. A few publishers
// (beside the masters) follow Marathon and Mesos through their own
// reconcilers; the one elected through etcd writes the VIP table to etcd,
// fenced by its election revision, and allocates every named VIP's
// address there, once, for the whole cluster. Every node daemon watches
// etcd instead of Marathon and Mesos and serves DNS and programs its
// dataplane from what it reads, starting from its bbolt cache.
//
// The files, by job:
//
//	keys.go       the key layout under the prefix
//	value.go      a VIP group's value and its backend slices (encode, decode)
//	client.go     the etcd client: TLS, credentials, reconnect tuning
//	publisher.go  the publisher role: election, terms, the write loop
//	writer.go     the leader's diff against etcd and its fenced transactions
//	alloc.go      cluster VIP addresses: allocation, grace, freeing
//	node.go       the node role: cache, list, watch, relist
//	view.go       a node's decoded view of etcd and the Table it makes
//	effects.go    how a node's Table takes effect (withdraw, apply, publish)
//	cache.go      the node's bbolt cache
//	metrics.go    both roles' metrics
//	backoff.go    jittered backoff of the retry loops
//
// etcdtest/ runs a real etcd cluster for tests.
package cluster

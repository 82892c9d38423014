// Package discovery is the core of vipbridge: it owns the model of apps and
// tasks, the VIP label grammar, name normalisation, VIP address allocation,
// the names of the task zones (mesos-dns's and dcos-dns's) and the
// level-triggered reconciler that publishes immutable Tables to the
// DNS server, the HTTP API and the dataplane. Persistence sits behind the
// Store interface; package discovery/store keeps it in bbolt.
//
// It imports none of vipbridge's other packages. Producers (package marathon)
// convert upstream JSON into the types of model.go; consumers (dnsserver, lb,
// the HTTP API) read *Table values.
//
// The files, by job:
//
// The model and its grammar (pure):
//
//	model.go              the types producers hand in: State, App, Port, Task, Update
//	vip.go                the VIP label grammar: IsVIPKey, ParseVIP
//	protocol.go           Protocol and its parsing
//	name.go               DNS name normalisation (NormaliseName)
//	srv.go                SRV owner names of VIPs
//	alloc.go              VIP address allocation (Allocator)
//	names.go              the task zones' names: NamesConfig, AppRecords, ClusterRecords
//	names_mesos.go        mesos-dns's naming rules (the mesos zone)
//	names_dcos.go         dcos-dns's task names (dcos.thisdcos.directory)
//	label_mesos.go        mesos-dns's label normalisation and canonical task hash
//
// Tables and how they are built (pure; the reconciler enters through
// build_next.go only):
//
//	table.go              Table, the published snapshot, and its lookups
//	table_index.go        a Table's DNS names index (NewTable, WithAnnounced)
//	viplist.go            VIPList, the copy-on-write list of a Table's VIPs
//	build.go              Build, the whole build: the reference
//	build_incremental.go  the incremental build, equal to Build
//	build_names.go        which names are announced, and withdrawn
//	build_next.go         tableBuilder.next: changes + published Table → what to publish
//	records.go            the task zones' records as a Table holds them, and their whole build
//	build_records.go      the task zones' incremental index, equal to the whole build
//
// The reconciler (runs):
//
//	reconciler.go         Reconciler, Config, NewReconciler, the public API, Run
//	loop.go               the loop that owns the model
//	sourcesync.go         one goroutine per source fetching snapshots
//	sourcemodel.go        one source's model, changed by snapshots and updates
//	publish.go            the order of effects: withdraw → dataplane → publish
//	persist.go            the Store interface; load at start, writes, the one writer
//	status.go             Status: how fresh the published state is
//	metrics.go            the reconciler's metrics
//	retry.go              capped, jittered backoff and the retry timer the loops wait on
//
// Beside them, cowmap/ is the copy-on-write map of the names index, and
// store/ the bbolt Store.
package discovery

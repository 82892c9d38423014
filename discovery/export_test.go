package discovery

// BenchApps exports benchApps to the external tests (package
// discovery_test), which may import discovery/store.
var BenchApps = benchApps

// SetFullBuild makes r build with Build and index every name.
func SetFullBuild(r *Reconciler, full bool) { r.fullBuild = full }

package discovery

// BenchApps exports benchApps to the external tests (package
// discovery_test), which may import discovery/store.
var BenchApps = benchApps

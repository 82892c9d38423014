// Package marathontest runs a simulated Marathon and Mesos master over real
// HTTP on loopback, in the spirit of net/http/httptest, for tests, the demo
// and benchmarks.
//
// A Server is built from a Scenario (agents, Marathon apps, other
// frameworks' tasks) and serves what the real systems serve, in their JSON
// shapes: Marathon's /v2/apps, /v2/apps/{id}, /v2/tasks, /v2/info,
// /v2/leader and the /v2/events server-sent event stream framed as Jetty
// frames it, and the Mesos master's /master/state and operator API
// (POST /api/v1 SUBSCRIBE in RecordIO as Mesos frames it; mesosapi.go).
// Control methods (AddApp, ScaleApp, KillTask, SetHealth, DeleteApp,
// ChangeLeader, DropConnections, Emit; StartFrameworkTask,
// SetFrameworkTaskHealth, KillFrameworkTask, FailoverMesos,
// ReregisterAgents for other frameworks and the master) change the state and
// emit the events real Marathon and Mesos would; Apps
// returns the ground truth to compare a consumer's view against. Faults
// (faults.go) break it on purpose: InjectFault (5xx, slow and hanging REST
// answers), CutStreams, StallStreams, Burst, Replay, ChangeMesosLeader,
// WithFailoverHealthGap, and for the operator stream CutMesosStreams,
// LieMesosStreams, StallMesosStreams, MesosRedirectLoop and
// WithoutSubscribe.
//
// Upstream references: mesosphere/marathon docs/docs/event-bus.md and the
// RAML types under docs/docs/rest-api/public/api/v2/types/; Mesos master
// state as in dcos/dcos-net apps/dcos_l4lb/testdata/*.json.
package marathontest

// Package marathon speaks the upstream APIs of Marathon and Mesos: it
// decodes Marathon apps (GET /v2/apps?embed=apps.tasks, both the ≤1.4 and
// the ≥1.5 API shapes), Marathon pods (GET /v2/pods/::status, one App per
// pod and one Task per instance: pods.go, podsync.go), Marathon SSE events
// (/v2/events) and Mesos state
// (/master/state, agent /state) into the types of package discovery, and
// runs the client that keeps them flowing.
//
// Decoding happens at the edge: the upstream JSON structs are unexported and
// never leave this package. Decoders never log and never panic on garbage
// input; they return errors that say what they were decoding.
package marathon

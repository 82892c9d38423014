package discovery

// The task zones' names: NamesConfig and the two entry points the Table's
// records index is built from, AppRecords and ClusterRecords. The rules
// are mesos-dns's (names_mesos.go) and dcos-dns's (names_dcos.go).

import "fmt"

// NamesConfig configures the names of the task zones.
type NamesConfig struct {
	// IPSources are mesos-dns's IPSources, in order: "host", "netinfo",
	// "docker", "mesos". Empty means host, netinfo (DC/OS's setting).
	IPSources []string
	// EnforceRFC952 normalises labels as RFC 952 (mesos-dns's
	// EnforceRFC952) instead of RFC 1123.
	EnforceRFC952 bool
}

// Validate reports an IP source mesos-dns does not know.
func (c NamesConfig) Validate() error {
	for _, s := range c.IPSources {
		switch s {
		case "host", "netinfo", "docker", "mesos":
		default:
			return fmt.Errorf("unknown IP source %q (want host, netinfo, docker or mesos)", s)
		}
	}
	return nil
}

// AppRecords returns the records the running tasks of app give the task
// zones, one TaskRecords per task that has any. known reports whether an
// agent ID is registered with the master (mesos-dns names only tasks on
// known agents); nil knows every agent.
func (c NamesConfig) AppRecords(app *App, known func(agentID string) bool) []*TaskRecords {
	return nil // TODO(names): mesos-dns and dcos-dns rules
}

// ClusterRecords returns the records of the cluster itself: leader,
// masters, frameworks and agents (ZoneMesos), leader and master (ZoneDCOS).
func (c NamesConfig) ClusterRecords(cl *Cluster) []ZoneRecord {
	return nil // TODO(names)
}

package httpapi

// Cluster mode's part of /readyz and /records: the daemon's role, the
// publisher that leads, the etcd revision the served table is at and its
// age, and whether etcd is reachable.

import "time"

// Cluster reports cluster mode's state; Config.Cluster is nil in
// single-node mode.
type Cluster interface {
	ClusterState() ClusterState
}

// ClusterState is what Cluster reports.
type ClusterState struct {
	Role      string    // "publisher" or "node"
	Leader    string    // the leading publisher's ID; "" while none leads
	Revision  int64     // the etcd revision of the served table
	AppliedAt time.Time // when that revision was applied; zero before
	Connected bool      // etcd answers
}

// clusterDoc is ClusterState in /readyz and /records.
type clusterDoc struct {
	Role     string `json:"role"`
	Leader   string `json:"leader"`
	Revision int64  `json:"revision"`
	// RevisionAgeSeconds is how long ago that revision was applied; -1
	// before the first.
	RevisionAgeSeconds float64 `json:"revision_age_seconds"`
	EtcdConnected      bool    `json:"etcd_connected"`
}

// clusterDoc returns the cluster block, nil in single-node mode.
func (a *api) clusterDoc() *clusterDoc {
	if a.cluster == nil {
		return nil
	}
	st := a.cluster.ClusterState()
	age := -1.0
	if !st.AppliedAt.IsZero() {
		age = time.Since(st.AppliedAt).Seconds()
	}
	return &clusterDoc{Role: st.Role, Leader: st.Leader, Revision: st.Revision, RevisionAgeSeconds: age, EtcdConnected: st.Connected}
}

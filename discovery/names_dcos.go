package discovery

// dcos-dns's task names (ZoneDCOS), as dcos-net makes them
// (apps/dcos_dns/src/dcos_dns_mesos.erl; UPSTREAM.md §2.2):
// "<task>.<framework>.agentip|containerip|autoip" for running tasks, and
// "leader" and "master".

import "net/netip"

// dcosRecords adds t's ZoneDCOS records. The task part is the DiscoveryInfo
// name, else the task name, and the framework part the framework name, each
// made one label by NormaliseLabel (mesos_state:label, dots become '-'):
//
//	t.fw.agentip      the agent IP
//	t.fw.containerip  the task's IPs (network_infos)
//	t.fw.autoip       the agent IP when the task has a host port or no IP
//	                  of its own (dcos-net: a port with a host_port, or no
//	                  task_ip), else the task's IPs
func (n *appNamer) dcosRecords(t *Task, p *taskParts) {
	b := &n.b
	task := p.dcosLabel
	name := func(kind string) span {
		off := len(b.buf)
		b.str(task)
		b.str(".")
		b.str(n.dcosFW)
		b.str(".")
		b.str(kind)
		return b.from(off)
	}
	b.addAddr(ZoneDCOS, name("agentip"), t.AgentIP)
	if len(t.IPs) > 0 {
		container := name("containerip")
		for _, a := range t.IPs {
			b.addAddr(ZoneDCOS, container, a)
		}
	}
	auto := name("autoip")
	if len(t.HostPorts) > 0 || len(t.IPs) == 0 {
		b.addAddr(ZoneDCOS, auto, t.AgentIP)
		return
	}
	for _, a := range t.IPs {
		b.addAddr(ZoneDCOS, auto, a)
	}
}

// dcosClusterRecords appends the cluster's ZoneDCOS records: "leader" (the
// leading master) and "master" (the configured masters, dcos-net's
// mesos_resolvers; the leader when none is configured).
func dcosClusterRecords(recs []ZoneRecord, cl *Cluster) []ZoneRecord {
	if cl.Leader.IsValid() {
		recs = append(recs, addrRecord(ZoneDCOS, "leader", cl.Leader.Addr()))
	}
	masters := cl.Masters
	if len(masters) == 0 && cl.Leader.IsValid() {
		masters = []netip.Addr{cl.Leader.Addr()}
	}
	for _, m := range masters {
		if m.IsValid() {
			recs = append(recs, addrRecord(ZoneDCOS, "master", m))
		}
	}
	return recs
}

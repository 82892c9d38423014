package discovery

// mesos-dns's names (ZoneMesos), as mesosphere/mesos-dns v0.7.0-rc2 makes
// them (records/generator.go, records/chains.go; UPSTREAM.md §3.5): a
// task's A/AAAA and SRV records, the cluster's leader, masters, frameworks
// and agents, and how a Marathon task's Mesos name and DiscoveryInfo are
// derived from its app (MarathonTaskName, MarathonDiscovery).

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// taskParts are what a task's names are made of.
type taskParts struct {
	// diName is the DiscoveryInfo name, "" when the task has none
	// (mesos-dns: HasDiscoveryInfo is a non-empty name); diPorts its ports.
	diName  string
	diPorts []DiscoveryPort
	// label is the mesos-dns label of the DiscoveryInfo name, else of the
	// task name.
	label string
	// name is the DiscoveryInfo name, else the task name: what dcos-dns
	// labels and mesos-dns enumerates; dcosLabel its dcos-dns label.
	name, dcosLabel string
	// resourcePorts are the task's port resources.
	resourcePorts []uint16
}

// parts returns the parts of t's names: a Mesos task's as Mesos reports
// them, a Marathon task's as Marathon gives them to Mesos.
func (n *appNamer) parts(t *Task) taskParts {
	if !n.app.FromMesos {
		n.di = appendMarathonPorts(n.di[:0], n.app, t)
		return taskParts{diName: n.marathonName, diPorts: n.di, label: n.marathonLabel,
			name: n.marathonName, dcosLabel: n.marathonDCOS, resourcePorts: t.HostPorts}
	}
	p := taskParts{name: t.Name, resourcePorts: t.HostPorts[:min(max(t.ResourcePorts, 0), len(t.HostPorts))]}
	if d := t.Discovery; d != nil && d.Name != "" {
		p.diName, p.diPorts, p.name = d.Name, d.Ports, d.Name
		p.label = mesosLabel(d.Name, n.rfc952)
	} else {
		p.label = mesosLabel(t.Name, n.rfc952)
	}
	p.dcosLabel = NormaliseLabel(p.name)
	return p
}

// mesosRecords adds t's ZoneMesos records. With a DiscoveryInfo name they
// are made twice (mesos-dns's "LEGACY" generation): under the raw name, not
// sanitised (dots give several labels), and under its label.
func (n *appNamer) mesosRecords(t *Task, p *taskParts) {
	v4, v6 := n.taskIPs(t)
	n.hashTail = append(n.hashTail[:0], '-')
	n.hashTail = appendTaskHash(n.hashTail, t.ID)
	n.hashTail = append(n.hashTail, '-')
	n.hashTail = appendAgentTail(n.hashTail, t.AgentID)
	if p.diName == "" {
		n.mesosNames(t, p, p.label, v4, v6)
		return
	}
	n.mesosNames(t, p, p.diName, v4, v6)
	if p.label != p.diName {
		n.mesosNames(t, p, p.label, v4, v6)
	}
}

// mesosNames adds the records of one generation of t's names (mesos-dns's
// taskContextRecord) under the task label l:
//
//	l.fw, l-hash-tail.fw                A/AAAA  the task IPs (IPSources)
//	l.fw.slave, l-hash-tail.fw.slave    A/AAAA  the agent IP
//	_l._tcp|_udp.fw.slave               SRV     resource ports → l-hash-tail.fw.slave
//	_l._tcp|_udp.fw                     SRV     the same, only without DiscoveryInfo
//	[_port.]_l._proto.fw                SRV     DiscoveryInfo ports → l-hash-tail.fw
func (n *appNamer) mesosNames(t *Task, p *taskParts, l string, v4, v6 netip.Addr) {
	b := &n.b
	off := len(b.buf)
	b.str(l)
	b.str(".")
	b.str(n.fw)
	plain := b.from(off)
	b.str(".slave")
	slave := b.from(off)
	off = len(b.buf)
	b.str(l)
	b.buf = append(b.buf, n.hashTail...)
	b.str(".")
	b.str(n.fw)
	canon := b.from(off)
	b.str(".slave")
	canonSlave := b.from(off)

	b.addAddr(ZoneMesos, plain, v4)
	b.addAddr(ZoneMesos, plain, v6)
	b.addAddr(ZoneMesos, canon, v4)
	b.addAddr(ZoneMesos, canon, v6)
	b.addAddr(ZoneMesos, slave, t.AgentIP)
	b.addAddr(ZoneMesos, canonSlave, t.AgentIP)

	if len(p.resourcePorts) > 0 {
		tcp, tcpSlave := n.srvNames(l, "tcp")
		udp, udpSlave := n.srvNames(l, "udp")
		for _, port := range p.resourcePorts {
			b.addSRV(ZoneMesos, tcpSlave, canonSlave, port)
			b.addSRV(ZoneMesos, udpSlave, canonSlave, port)
			if p.diName == "" {
				b.addSRV(ZoneMesos, tcp, canonSlave, port)
				b.addSRV(ZoneMesos, udp, canonSlave, port)
			}
		}
	}
	for _, dp := range p.diPorts {
		// The protocol is label-normalised and used as is ("TCP" → "tcp",
		// any other word stays); none gives tcp and udp (chains.go).
		switch proto := mesosLabel(dp.Protocol, n.rfc952); proto {
		case "":
			n.discoverySRV(l, "tcp", dp, canon)
			n.discoverySRV(l, "udp", dp, canon)
		default:
			n.discoverySRV(l, proto, dp, canon)
		}
	}
}

// srvNames writes "_l._proto.fw.slave" and returns it and its prefix
// "_l._proto.fw".
func (n *appNamer) srvNames(l, proto string) (plain, slave span) {
	b := &n.b
	off := len(b.buf)
	b.str("_")
	b.str(l)
	b.str("._")
	b.str(proto)
	b.str(".")
	b.str(n.fw)
	plain = b.from(off)
	b.str(".slave")
	return plain, b.from(off)
}

// discoverySRV adds a DiscoveryInfo port's SRV records: "_l._proto.fw" and,
// when the port has a name, "_name._l._proto.fw", both → canon:number.
// A port numbered 0 is kept: mesos-dns serves it (a real /v1/axfr has
// "_none-on-dcos._tcp.marathon.mesos." → "…:0").
func (n *appNamer) discoverySRV(l, proto string, dp DiscoveryPort, canon span) {
	b := &n.b
	portName := mesosLabel(dp.Name, n.rfc952)
	off := len(b.buf)
	if portName != "" {
		b.str("_")
		b.str(portName)
		b.str(".")
	}
	base := len(b.buf)
	b.str("_")
	b.str(l)
	b.str("._")
	b.str(proto)
	b.str(".")
	b.str(n.fw)
	b.addSRV(ZoneMesos, b.from(base), canon, dp.Number)
	if portName != "" {
		b.addSRV(ZoneMesos, b.from(off), canon, dp.Number)
	}
}

// taskIPs returns the task's addresses by IPSources: the addresses of every
// source in order, of which the first IPv4 and the first IPv6 are kept
// (v0.7.0-rc2: at most one A and one AAAA per name).
func (n *appNamer) taskIPs(t *Task) (v4, v6 netip.Addr) {
	take := func(a netip.Addr) {
		if !a.IsValid() {
			return
		}
		if a = a.Unmap(); a.Is4() {
			if !v4.IsValid() {
				v4 = a
			}
		} else if !v6.IsValid() {
			v6 = a
		}
	}
	for _, src := range n.sources {
		switch src {
		case sourceHost:
			take(t.AgentIP)
		case sourceNetinfo:
			for _, a := range t.IPs {
				take(a)
			}
		case sourceDocker:
			take(t.DockerIP)
		case sourceMesos:
			take(t.MesosIP)
		}
	}
	return v4, v6
}

// MarathonTaskName is the Mesos task name Marathon gives an app's tasks
// (PathId.toHostname): the app ID's path segments reversed and joined with
// '.', so "/group/web" is "web.group".
func MarathonTaskName(appID string) string {
	var b strings.Builder
	b.Grow(len(appID))
	for rest := appID; rest != ""; {
		i := strings.LastIndexByte(rest, '/')
		seg := rest[i+1:]
		rest = rest[:max(i, 0)]
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// MarathonDiscovery is the DiscoveryInfo Marathon gives a task of app
// (PortDiscovery.scala; UPSTREAM.md §5.3): named as the task, with one port
// per port declaration and protocol, numbered with the task's host port
// (host networking, or a mapping with a host port) or the container port.
// A port whose host port the task lacks is left out.
func MarathonDiscovery(app *App, t *Task) *DiscoveryInfo {
	return &DiscoveryInfo{Name: MarathonTaskName(app.ID), Ports: appendMarathonPorts(nil, app, t)}
}

// appendMarathonPorts appends the DiscoveryInfo ports of MarathonDiscovery.
func appendMarathonPorts(dst []DiscoveryPort, app *App, t *Task) []DiscoveryPort {
	for i := range app.Ports {
		p := &app.Ports[i]
		var number uint16
		switch p.Kind {
		case PortContainer:
			number = p.ContainerPort
		default:
			if p.HostPortIndex < 0 || p.HostPortIndex >= len(t.HostPorts) {
				continue
			}
			number = t.HostPorts[p.HostPortIndex]
		}
		protos := p.Protocols
		if len(protos) == 0 {
			protos = []Protocol{TCP}
		}
		for _, proto := range protos {
			dst = append(dst, DiscoveryPort{Number: number, Name: p.Name, Protocol: proto.String()})
		}
	}
	return dst
}

// mesosClusterRecords appends the cluster's ZoneMesos records.
func (c NamesConfig) mesosClusterRecords(recs []ZoneRecord, cl *Cluster) []ZoneRecord {
	recs = mastersRecords(recs, cl)
	maxName := c.maxName()
	// Frameworks of the same name merge: their records share the name.
	for _, f := range cl.Frameworks {
		name := mesosDomainFrag(f.Name, c.EnforceRFC952)
		if !f.Addr.IsValid() || !validName(name, maxName) {
			continue
		}
		recs = append(recs, addrRecord(ZoneMesos, name, f.Addr.Addr()))
		if srv := "_framework._tcp." + name; f.Addr.Port() != 0 && validName(srv, maxName) {
			recs = append(recs, ZoneRecord{Zone: ZoneMesos, Type: TypeSRV, Name: srv, Target: name, Port: f.Addr.Port()})
		}
	}
	var ports []uint16
	for _, a := range cl.Agents {
		if !a.Addr.IsValid() {
			continue
		}
		recs = append(recs, addrRecord(ZoneMesos, "slave", a.Addr.Addr()))
		if !slices.Contains(ports, a.Addr.Port()) {
			ports = append(ports, a.Addr.Port())
			recs = append(recs, ZoneRecord{Zone: ZoneMesos, Type: TypeSRV, Name: "_slave._tcp", Target: "slave", Port: a.Addr.Port()})
		}
	}
	return recs
}

// mastersRecords appends mesos-dns's masterRecord: "leader" and
// "_leader._tcp|_udp" → leader:port; "master" for the leader and every
// configured master (by IP, once each); "masterN" for the configured
// masters in order, the leader taking the next index when it is not among
// them. Without a leader there are none (mesos-dns rejects such a state).
func mastersRecords(recs []ZoneRecord, cl *Cluster) []ZoneRecord {
	if !cl.Leader.IsValid() {
		return recs
	}
	leader := cl.Leader.Addr().Unmap()
	recs = append(recs,
		addrRecord(ZoneMesos, "leader", leader),
		addrRecord(ZoneMesos, "master", leader),
		ZoneRecord{Zone: ZoneMesos, Type: TypeSRV, Name: "_leader._tcp", Target: "leader", Port: cl.Leader.Port()},
		ZoneRecord{Zone: ZoneMesos, Type: TypeSRV, Name: "_leader._udp", Target: "leader", Port: cl.Leader.Port()})
	seen := []netip.Addr{leader}
	idx, leaderIndexed := 0, false
	for _, m := range cl.Masters {
		m = m.Unmap()
		isLeader := m == leader
		switch {
		case isLeader && leaderIndexed:
			continue
		case !isLeader && slices.Contains(seen, m):
			continue
		case !isLeader:
			seen = append(seen, m)
			recs = append(recs, addrRecord(ZoneMesos, "master", m))
		}
		recs = append(recs, addrRecord(ZoneMesos, "master"+strconv.Itoa(idx), m))
		idx++
		leaderIndexed = leaderIndexed || isLeader
	}
	if !leaderIndexed {
		recs = append(recs, addrRecord(ZoneMesos, "master"+strconv.Itoa(idx), leader))
	}
	return recs
}

// addrRecord is an A or AAAA record for a.
func addrRecord(z RecordZone, name string, a netip.Addr) ZoneRecord {
	a = a.Unmap()
	typ := TypeA
	if a.Is6() {
		typ = TypeAAAA
	}
	return ZoneRecord{Zone: z, Type: typ, Name: name, Addr: a}
}

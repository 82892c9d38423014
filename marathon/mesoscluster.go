package marathon

// The cluster part of Mesos state: the leader, frameworks and agents
// mesos-dns names (leader.mesos, <framework>.mesos, slave.mesos), and the
// pid addresses they are named by.

import (
	"net"
	"net/netip"
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
)

// agentAddr is the IP of an agent's pid "slave(1)@10.0.0.1:5051", else its
// hostname when that is an IP literal.
func agentAddr(a mesosAgentJSON) netip.Addr {
	if _, hostport, ok := strings.Cut(a.PID, "@"); ok {
		if host, _, err := net.SplitHostPort(hostport); err == nil {
			if ip, ok := parseIP(host); ok {
				return ip
			}
		}
	}
	if ip, ok := parseIP(a.Hostname); ok {
		return ip
	}
	return netip.Addr{}
}

func (d *mesosDecoder) addAgent(a mesosAgentJSON) {
	d.byID[a.ID] = a
	if ip := agentAddr(a); ip.IsValid() && a.Hostname != "" {
		d.agents[a.Hostname] = ip
	}
	if a.ID != "" {
		d.cluster.Agents = append(d.cluster.Agents, discovery.Agent{ID: a.ID, Hostname: a.Hostname, Addr: pidAddr(a.PID)})
	}
}

func (d *mesosDecoder) addFramework(id, name, pid, hostname string) {
	if id == "" && name == "" {
		return
	}
	d.cluster.Frameworks = append(d.cluster.Frameworks, discovery.Framework{ID: id, Name: name, Addr: frameworkAddr(pid, hostname)})
}

// pidAddr is the address of a libprocess pid "master@10.0.0.1:5050" or
// "slave(1)@[::1]:5051"; invalid when the pid has no IP literal and port.
func pidAddr(pid string) netip.AddrPort {
	_, hostport, ok := strings.Cut(pid, "@")
	if !ok {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.AddrPort{}
	}
	ip, ok := parseIP(ap.Addr().String())
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, ap.Port())
}

// frameworkAddr is the address of a framework's pid; without one (v1
// state, HTTP-API schedulers), its hostname's address with port 0 when
// the hostname is an IP literal, as mesos-dns resolves it without an SRV
// record.
func frameworkAddr(pid, hostname string) netip.AddrPort {
	if ap := pidAddr(pid); ap.IsValid() {
		return ap
	}
	if ip, ok := parseIP(hostname); ok {
		return netip.AddrPortFrom(ip, 0)
	}
	return netip.AddrPort{}
}

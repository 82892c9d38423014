package discovery

// Build, the pure build of a whole Table from every app: the reference the
// incremental build (build_incremental.go) is tested against, and the rules
// both follow (a port's backends and weights, address assignment, name
// collisions).

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Build turns apps into a Table (DESIGN.md "Backends"): every VIP label of
// every port declares a VIP per protocol, and each declaring port adds its
// app's tasks as backends:
//
//   - PortHost, PortMapped: task AgentIP : the task's host port at
//     HostPortIndex (skipped while the agent IP or the port is unknown);
//   - PortContainer: each task IP : ContainerPort, or the host port at
//     HostPortIndex when ContainerPort is 0 (Marathon's "containerPort 0
//     means the same as the host port").
//
// A running task weighs 1 when healthy, or when it has no health result and
// its app has no health checks; any other running task and a killing task
// weigh 0; starting and terminal tasks are no backends. IP VIPs take only
// backends of their own family. The same backend declared twice is kept
// once, with its highest weight.
//
// VIPs without backends are left out; their address assignments stay in
// alloc until it expires them. Named VIPs get an IPv4 address from alloc
// when they have an IPv4 backend and an IPv6 one when they have an IPv6
// backend; the addresses of IP VIPs are reserved in alloc first. A nil
// alloc assigns no addresses.
//
// VIP.Labels holds each declaring label value in ParseVIP's canonical form
// (VIPSpec.String without the legacy protocol prefix), so more than one
// means different spellings of a name collided. Bad label values, such
// collisions (the VIPs merge) and exhausted ranges are reported in
// Table.Errors.
// Build is deterministic and, apart from alloc, pure.
func Build(apps []App, alloc *Allocator, now time.Time) *Table {
	b := &builder{
		vips:       make(map[VIPKey]*vipAcc, len(apps)),
		names:      make(map[string]string, len(apps)),
		frameworks: map[string]string{},
	}
	for i := range apps {
		b.addApp(&apps[i])
	}
	if len(b.collided) > 0 {
		b.reportCollisions(apps)
	}
	vips := b.finish(alloc, now)
	slices.SortFunc(b.errs, compareLabelError)
	t := NewTable(vips, slices.Compact(b.errs), nil)
	t.Built = now
	return t
}

// builder accumulates VIPs while Build walks the apps.
type builder struct {
	vips map[VIPKey]*vipAcc
	// names maps a normalised name to the first spelling seen;
	// collided holds every spelling of names spelt more than one way.
	names      map[string]string
	collided   map[string][]string
	frameworks map[string]string
	errs       []LabelError
	scratch    []Backend
	// named, when trackNames is set, records every named label with its
	// normalised name and spelling (the incremental build derives name
	// collisions from them).
	trackNames bool
	named      []namedLabel
}

// vipAcc is one VIP under construction.
type vipAcc struct {
	labels   []string
	apps     []string
	backends []Backend
	// first is the first label declaring the VIP, to attribute errors.
	first LabelError
}

// Protocol lists for labels that name one protocol, shared read-only.
var (
	tcpOnly = []Protocol{TCP}
	udpOnly = []Protocol{UDP}
)

func (b *builder) addApp(app *App) {
	fw, ok := b.frameworks[app.Framework]
	if !ok {
		fw = NormaliseName(app.Framework)
		b.frameworks[app.Framework] = fw
	}
	for pi := range app.Ports {
		port := &app.Ports[pi]
		if !slices.ContainsFunc(port.Labels, func(l Label) bool { return IsVIPKey(l.Key) }) {
			continue
		}
		b.scratch = portBackends(app, port, b.scratch[:0])
		for _, l := range port.Labels {
			if IsVIPKey(l.Key) {
				b.addLabel(app, port, l, fw)
			}
		}
	}
}

// addLabel declares the VIP of label l of port, with b.scratch as backends.
func (b *builder) addLabel(app *App, port *Port, l Label, fw string) {
	spec, err := ParseVIP(l.Value)
	if err != nil {
		b.errs = append(b.errs, LabelError{AppID: app.ID, Key: l.Key, Value: l.Value, Reason: err.Error()})
		return
	}
	var name string
	if !spec.IP.IsValid() {
		if fw == "" {
			b.errs = append(b.errs, LabelError{AppID: app.ID, Key: l.Key, Value: l.Value,
				Reason: "framework " + quote(app.Framework) + " has no DNS name"})
			return
		}
		name = NormaliseName(spec.Name) + "." + fw
		b.noteSpelling(name, spec.Name)
		if b.trackNames {
			b.named = append(b.named, namedLabel{name: name, label: LabelError{AppID: app.ID, Key: l.Key, Value: l.Value}, written: spec.Name})
		}
	}
	protos := port.Protocols
	switch {
	case spec.Protocol == TCP || spec.Protocol == 0 && len(protos) == 0:
		protos = tcpOnly
	case spec.Protocol == UDP:
		protos = udpOnly
	}
	label := VIPSpec{Name: spec.Name, IP: spec.IP, Port: spec.Port}.String()
	for _, p := range protos {
		k := VIPKey{Protocol: p, Name: name, IP: spec.IP, Port: spec.Port}
		acc := b.vips[k]
		if acc == nil {
			acc = &vipAcc{
				first:    LabelError{AppID: app.ID, Key: l.Key, Value: l.Value},
				backends: make([]Backend, 0, len(b.scratch)),
			}
			b.vips[k] = acc
		}
		acc.labels = append(acc.labels, label)
		acc.apps = append(acc.apps, app.ID)
		if !spec.IP.IsValid() {
			acc.backends = append(acc.backends, b.scratch...)
			continue
		}
		for _, be := range b.scratch {
			if be.Addr.Addr().Is4() == spec.IP.Is4() {
				acc.backends = append(acc.backends, be)
			}
		}
	}
}

// noteSpelling records that written normalises to name.
func (b *builder) noteSpelling(name, written string) {
	first, ok := b.names[name]
	if !ok {
		b.names[name] = written
		return
	}
	if first == written {
		return
	}
	if b.collided == nil {
		b.collided = map[string][]string{}
	}
	s := b.collided[name]
	if len(s) == 0 {
		s = append(s, first)
	}
	if !slices.Contains(s, written) {
		s = append(s, written)
	}
	b.collided[name] = s
}

// reportCollisions reports every label whose name is spelt differently from
// the smallest spelling of the same normalised name.
func (b *builder) reportCollisions(apps []App) {
	for i := range apps {
		app := &apps[i]
		fw := b.frameworks[app.Framework]
		for _, port := range app.Ports {
			for _, l := range port.Labels {
				if !IsVIPKey(l.Key) {
					continue
				}
				spec, err := ParseVIP(l.Value)
				if err != nil || spec.IP.IsValid() || fw == "" {
					continue
				}
				name := NormaliseName(spec.Name) + "." + fw
				spellings, ok := b.collided[name]
				if !ok {
					continue
				}
				if least := slices.Min(spellings); least != spec.Name {
					b.errs = append(b.errs, LabelError{AppID: app.ID, Key: l.Key, Value: l.Value,
						Reason: collisionReason(least, spec.Name, name)})
				}
			}
		}
	}
}

// collisionReason is the reason of a label spelling name differently from
// least, the smallest spelling.
func collisionReason(least, written, name string) string {
	return "name collision: " + least + " and " + written + " both map to " + name
}

// portBackends appends the backends of port's tasks to buf.
func portBackends(app *App, port *Port, buf []Backend) []Backend {
	for ti := range app.Tasks {
		task := &app.Tasks[ti]
		w, st, ok := taskWeight(app, task)
		if !ok {
			continue
		}
		hostPort := uint16(0)
		if port.HostPortIndex >= 0 && port.HostPortIndex < len(task.HostPorts) {
			hostPort = task.HostPorts[port.HostPortIndex]
		}
		switch port.Kind {
		case PortHost, PortMapped:
			if !task.AgentIP.IsValid() || hostPort == 0 {
				continue
			}
			buf = append(buf, Backend{Addr: netip.AddrPortFrom(task.AgentIP.Unmap(), hostPort), Weight: w, TaskID: task.ID, AppID: app.ID, Status: st})
		case PortContainer:
			p := cmp.Or(port.ContainerPort, hostPort)
			if p == 0 {
				continue
			}
			for _, ip := range task.IPs {
				if ip.IsValid() {
					buf = append(buf, Backend{Addr: netip.AddrPortFrom(ip.Unmap(), p), Weight: w, TaskID: task.ID, AppID: app.ID, Status: st})
				}
			}
		}
	}
	return buf
}

// taskWeight returns a task's backend weight and why, and false if the task is no
// backend (DESIGN.md "Backends"; dcos-l4lb get_weight/1).
func taskWeight(app *App, t *Task) (uint8, BackendStatus, bool) {
	switch t.State {
	case TaskRunning:
		switch {
		case t.Health == HealthHealthy:
			return 1, BackendHealthy, true
		case t.Health == HealthNone && !app.HealthChecks:
			return 1, BackendUnchecked, true
		}
		return 0, BackendUnhealthy, true
	case TaskKilling:
		return 0, BackendKilling, true
	}
	return 0, BackendUnknown, false
}

// finish turns the accumulated VIPs into sorted VIPs with addresses.
func (b *builder) finish(alloc *Allocator, now time.Time) []VIP {
	keys := make([]VIPKey, 0, len(b.vips))
	for k := range b.vips {
		keys = append(keys, k)
		if k.IP.IsValid() && alloc != nil {
			alloc.Reserve(k.IP)
		}
	}
	slices.SortFunc(keys, compareKey)
	vips := make([]VIP, 0, len(keys))
	failed := map[allocKey]bool{}
	for _, k := range keys {
		acc := b.vips[k]
		backends := mergeBackends(acc.backends)
		if len(backends) == 0 {
			continue
		}
		v := VIP{Key: k, Backends: backends, Labels: sortedSet(acc.labels), Apps: sortedSet(acc.apps)}
		if k.IP.IsValid() {
			if k.IP.Is4() {
				v.Addr4 = k.IP
			} else {
				v.Addr6 = k.IP
			}
		} else if alloc != nil {
			has4 := slices.ContainsFunc(backends, func(be Backend) bool { return be.Addr.Addr().Is4() })
			has6 := slices.ContainsFunc(backends, func(be Backend) bool { return !be.Addr.Addr().Is4() })
			if has4 {
				v.Addr4 = b.assign(alloc, k.Name, false, now, acc, failed)
			}
			if has6 {
				v.Addr6 = b.assign(alloc, k.Name, true, now, acc, failed)
			}
		}
		vips = append(vips, v)
	}
	return vips
}

// assign gets name's address from alloc, reporting a failure once per name
// and family.
func (b *builder) assign(alloc *Allocator, name string, v6 bool, now time.Time, acc *vipAcc, failed map[allocKey]bool) netip.Addr {
	ip, err := alloc.Assign(name, v6, now)
	if err != nil && !failed[allocKey{name, v6}] {
		failed[allocKey{name, v6}] = true
		e := acc.first
		e.Reason = err.Error()
		b.errs = append(b.errs, e)
	}
	return ip
}

// mergeBackends sorts backends by address and port and keeps one backend per
// address: the highest weight, then the smallest task and app IDs.
func mergeBackends(bes []Backend) []Backend {
	if len(bes) == 0 {
		return nil
	}
	slices.SortFunc(bes, func(x, y Backend) int {
		return cmp.Or(x.Addr.Compare(y.Addr), cmp.Compare(y.Weight, x.Weight),
			strings.Compare(x.TaskID, y.TaskID), strings.Compare(x.AppID, y.AppID))
	})
	out := slices.CompactFunc(bes, func(x, y Backend) bool { return x.Addr == y.Addr })
	return slices.Clip(out)
}

// sortedSet sorts s and removes duplicates.
func sortedSet(s []string) []string {
	slices.Sort(s)
	return slices.Clip(slices.Compact(s))
}

// compareKey orders VIPKeys by protocol, name, IP, then port.
func compareKey(x, y VIPKey) int {
	return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), strings.Compare(x.Name, y.Name),
		x.IP.Compare(y.IP), cmp.Compare(x.Port, y.Port))
}

// compareLabelError orders label errors by app, key, value, then reason.
func compareLabelError(x, y LabelError) int {
	return cmp.Or(strings.Compare(x.AppID, y.AppID), strings.Compare(x.Key, y.Key),
		strings.Compare(x.Value, y.Value), strings.Compare(x.Reason, y.Reason))
}

package discovery

// Which names DNS announces, and when they are withdrawn (DESIGN.md "Order
// of effects"): a name is announced once its VIP is Ready and stays while it
// has backends; a name that goes away is withdrawn before the dataplane
// removes its service.

import "slices"

// sameTable reports whether a and b have the same VIPs and errors.
func sameTable(a, b *Table) bool {
	return a.VIPs.equal(b.VIPs) && slices.Equal(a.Errors, b.Errors)
}

func sameVIP(a, b VIP) bool {
	return a.Key == b.Key && a.Addr4 == b.Addr4 && a.Addr6 == b.Addr6 &&
		slices.Equal(a.Labels, b.Labels) && slices.Equal(a.Backends, b.Backends) && slices.Equal(a.Apps, b.Apps)
}

// announced reports whether t's names index serves v's name with v's port.
func announced(t *Table, v *VIP) bool {
	e, err := t.Lookup(v.Key.Name)
	return err == nil && slices.Contains(e.Ports, PortProto{Protocol: v.Key.Protocol, Port: v.Key.Port})
}

// announcer is the rule for names: a VIP's name is announced once the VIP
// is Ready, and stays announced while it has backends (draining included).
func announcer(prev *Table) func(*VIP) bool {
	return func(v *VIP) bool {
		if len(v.Backends) == 0 {
			return false
		}
		return v.Ready() || (prev != nil && announced(prev, v))
	}
}

// withdrawn returns prev without the names next no longer announces or
// announces with other addresses, and whether there were any. A non-nil
// changed lists the only names whose VIPs may differ between prev and next;
// only they are looked at.
func withdrawn(prev, next *Table, changed map[string]struct{}) (*Table, bool) {
	keep := func(v *VIP) bool {
		if !announced(prev, v) || !announced(next, v) {
			return false
		}
		pe, _ := prev.Lookup(v.Key.Name)
		ne, _ := next.Lookup(v.Key.Name)
		return pe.Addr4 == ne.Addr4 && pe.Addr6 == ne.Addr6
	}
	if changed != nil {
		gone := false
		for name := range changed {
			if pe, err := prev.Lookup(name); err == nil && !keepsName(prev, name, pe, keep) {
				gone = true
				break
			}
		}
		if !gone {
			return nil, false
		}
		return prev.reindexed(prev, changed, keep), true
	}
	gone := false
	for v := range prev.VIPs.All() {
		if announced(prev, v) && !keep(v) {
			gone = true
			break
		}
	}
	if !gone {
		return nil, false
	}
	return prev.WithAnnounced(keep), true
}

// keepsName reports whether keep holds for every VIP prev announces under
// name (entry pe).
func keepsName(prev *Table, name string, pe *NameEntry, keep func(*VIP) bool) bool {
	for _, pp := range pe.Ports {
		v, ok := prev.VIPs.Get(VIPKey{Protocol: pp.Protocol, Name: name, Port: pp.Port})
		if !ok || !keep(v) {
			return false
		}
	}
	return true
}

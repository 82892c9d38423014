package cluster

// The value of a VIP group key (vips/n/<name>, vips/ip/<addr>) and of its
// backend slices: what the publisher encodes from its Table and nodes
// decode into theirs. One key holds every VIP of a name (all its ports and
// protocols, its addresses, backends and weights), so a name's DNS answer
// and its dataplane entries change in one watch event; past SliceBackends
// backends they move to slice keys written in the same transaction (the
// EndpointSlice lesson, kubernetes/enhancements KEP-0752). Values carry no
// timestamps: the same VIPs always encode to the same bytes, which is how
// no-op writes are found.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vipbridge/vipbridge/discovery"
)

const (
	// SliceBackends is the most backends one key holds; a group with more
	// keeps its VIPs in the head and its backends in slices of this size.
	SliceBackends = 100
	// maxSlices bounds a group's slices (a million backends).
	maxSlices = 10000
)

// groupValue is a group's head key value.
type groupValue struct {
	VIPs []vipValue `json:"vips"`
	// Slices is how many slice keys hold the backends (0: the VIPs do).
	Slices int `json:"slices,omitempty"`
}

type vipValue struct {
	Protocol discovery.Protocol `json:"proto"`
	Port     uint16             `json:"port"`
	Addr4    netip.Addr         `json:"addr4,omitzero"`
	Addr6    netip.Addr         `json:"addr6,omitzero"`
	Labels   []string           `json:"labels,omitempty"`
	Apps     []string           `json:"apps,omitempty"`
	Backends []backendValue     `json:"backends,omitempty"`
}

type backendValue struct {
	// VIP indexes the head's VIPs; only in slices.
	VIP    int            `json:"v,omitempty"`
	Addr   netip.AddrPort `json:"addr"`
	Weight uint8          `json:"w"`
	TaskID string         `json:"task,omitempty"`
	AppID  string         `json:"app,omitempty"`
	// Status says why the backend has its weight (discovery.BackendStatus;
	// absent: unknown).
	Status discovery.BackendStatus `json:"s,omitempty"`
}

type sliceValue struct {
	Backends []backendValue `json:"backends"`
}

// groupID is the group a VIP belongs to: "n/<name>" or "ip/<addr>".
func groupID(k discovery.VIPKey) string {
	if k.Name != "" {
		return "n/" + k.Name
	}
	return "ip/" + k.IP.String()
}

// encodeGroup encodes vips, all of one group and sorted by Key, into the
// head value and the slice values (none when the head holds every backend).
func encodeGroup(vips []discovery.VIP) (head []byte, sliced [][]byte, err error) {
	total := 0
	for i := range vips {
		total += len(vips[i].Backends)
	}
	g := groupValue{VIPs: make([]vipValue, len(vips))}
	var all []backendValue
	for i, v := range vips {
		g.VIPs[i] = vipValue{Protocol: v.Key.Protocol, Port: v.Key.Port, Addr4: v.Addr4, Addr6: v.Addr6, Labels: v.Labels, Apps: v.Apps}
		bs := make([]backendValue, len(v.Backends))
		for j, b := range v.Backends {
			bs[j] = backendValue{VIP: i, Addr: b.Addr, Weight: b.Weight, TaskID: b.TaskID, AppID: b.AppID, Status: b.Status}
		}
		if total <= SliceBackends {
			for j := range bs {
				bs[j].VIP = 0
			}
			g.VIPs[i].Backends = bs
			continue
		}
		all = append(all, bs...)
	}
	for chunk := range slices.Chunk(all, SliceBackends) {
		b, err := json.Marshal(sliceValue{Backends: chunk})
		if err != nil {
			return nil, nil, fmt.Errorf("encode slice: %w", err)
		}
		sliced = append(sliced, b)
	}
	g.Slices = len(sliced)
	if head, err = json.Marshal(g); err != nil {
		return nil, nil, fmt.Errorf("encode group: %w", err)
	}
	return head, sliced, nil
}

// errIncomplete means a head names slices that are not (yet) there.
var errIncomplete = errors.New("slice missing")

// decodeGroup decodes group id's head and its slices (slice returns the
// value of slice i) into VIPs sorted by Key, checking that every VIP
// belongs to the group and that a name has one address per family.
func decodeGroup(id string, head []byte, slice func(i int) ([]byte, bool)) ([]discovery.VIP, error) {
	var g groupValue
	if err := json.Unmarshal(head, &g); err != nil {
		return nil, fmt.Errorf("decode group %s: %w", id, err)
	}
	if g.Slices < 0 || g.Slices > maxSlices {
		return nil, fmt.Errorf("decode group %s: %d slices", id, g.Slices)
	}
	base, err := groupBase(id)
	if err != nil {
		return nil, err
	}
	vips := make([]discovery.VIP, len(g.VIPs))
	for i, v := range g.VIPs {
		k := base
		k.Protocol, k.Port = v.Protocol, v.Port
		vips[i] = discovery.VIP{Key: k, Addr4: v.Addr4, Addr6: v.Addr6, Labels: v.Labels, Apps: v.Apps}
		if err := checkVIP(id, &vips[i], &vips[0]); err != nil {
			return nil, err
		}
		if g.Slices == 0 {
			if err := addBackends(vips, v.Backends, i); err != nil {
				return nil, fmt.Errorf("decode group %s: %w", id, err)
			}
		}
	}
	for s := range g.Slices {
		b, ok := slice(s)
		if !ok {
			return nil, fmt.Errorf("decode group %s: %w: %d of %d", id, errIncomplete, s, g.Slices)
		}
		var sv sliceValue
		if err := json.Unmarshal(b, &sv); err != nil {
			return nil, fmt.Errorf("decode group %s slice %d: %w", id, s, err)
		}
		if err := addBackends(vips, sv.Backends, -1); err != nil {
			return nil, fmt.Errorf("decode group %s slice %d: %w", id, s, err)
		}
	}
	for i := range vips {
		slices.SortFunc(vips[i].Backends, compareBackend)
	}
	slices.SortFunc(vips, func(x, y discovery.VIP) int { return compareKey(x.Key, y.Key) })
	for i := 1; i < len(vips); i++ {
		if vips[i].Key == vips[i-1].Key {
			return nil, fmt.Errorf("decode group %s: duplicate vip %s:%d", id, vips[i].Key.Protocol, vips[i].Key.Port)
		}
	}
	return vips, nil
}

// groupBase is the VIPKey every VIP of group id shares (protocol and port
// aside).
func groupBase(id string) (discovery.VIPKey, error) {
	kind, rest, _ := strings.Cut(id, "/")
	switch kind {
	case "n":
		if rest == "" || strings.ContainsAny(rest, "/ ") {
			break
		}
		return discovery.VIPKey{Name: rest}, nil
	case "ip":
		if ip, err := netip.ParseAddr(rest); err == nil && ip.Zone() == "" && ip.String() == rest {
			return discovery.VIPKey{IP: ip}, nil
		}
	}
	return discovery.VIPKey{}, fmt.Errorf("decode group %q: not a group", id)
}

// checkVIP checks what the group's key implies of v: an IP VIP's address
// is its IP; all VIPs of a name share the name's addresses (first's).
func checkVIP(id string, v, first *discovery.VIP) error {
	if v.Key.Protocol != discovery.TCP && v.Key.Protocol != discovery.UDP || v.Key.Port == 0 {
		return fmt.Errorf("decode group %s: vip without protocol or port", id)
	}
	if a := v.Addr4; a.IsValid() && (!a.Is4() || a.Zone() != "") {
		return fmt.Errorf("decode group %s: addr4 %s", id, a)
	}
	if a := v.Addr6; a.IsValid() && (!a.Is6() || a.Is4In6() || a.Zone() != "") {
		return fmt.Errorf("decode group %s: addr6 %s", id, a)
	}
	if ip := v.Key.IP; ip.IsValid() {
		if ip.Is4() && v.Addr4 != ip || ip.Is6() && v.Addr6 != ip {
			return fmt.Errorf("decode group %s: address is not the vip's ip", id)
		}
		return nil
	}
	if v.Addr4 != first.Addr4 && v.Addr4.IsValid() && first.Addr4.IsValid() ||
		v.Addr6 != first.Addr6 && v.Addr6.IsValid() && first.Addr6.IsValid() {
		return fmt.Errorf("decode group %s: two addresses for one name", id)
	}
	return nil
}

// addBackends appends bs to vips[at], or to vips[b.VIP] when at < 0.
func addBackends(vips []discovery.VIP, bs []backendValue, at int) error {
	for _, b := range bs {
		i := at
		if i < 0 {
			i = b.VIP
		}
		if i < 0 || i >= len(vips) {
			return fmt.Errorf("backend of vip %d of %d", i, len(vips))
		}
		if !b.Addr.IsValid() || b.Addr.Port() == 0 {
			return fmt.Errorf("backend address %s", b.Addr)
		}
		if b.Weight > 1 {
			return fmt.Errorf("backend weight %d", b.Weight)
		}
		vips[i].Backends = append(vips[i].Backends, discovery.Backend{Addr: b.Addr, Weight: b.Weight, TaskID: b.TaskID, AppID: b.AppID, Status: b.Status})
	}
	return nil
}

func compareBackend(x, y discovery.Backend) int {
	return cmp.Or(x.Addr.Addr().Compare(y.Addr.Addr()), cmp.Compare(x.Addr.Port(), y.Addr.Port()),
		cmp.Compare(x.TaskID, y.TaskID), cmp.Compare(x.AppID, y.AppID))
}

// compareKey orders VIPKeys as a Table does: protocol, name, IP, port.
func compareKey(x, y discovery.VIPKey) int {
	return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), cmp.Compare(x.Name, y.Name), x.IP.Compare(y.IP), cmp.Compare(x.Port, y.Port))
}

// This file reads the nftables dataplane's tables back from the kernel
// into a view that the sync diffs against.

package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// lbService is one service as the kernel has it.
type lbService struct {
	// Slots and Mod are the contents of its map (nil, 0: no map, or one
	// whose contents are not a layout slots makes).
	Slots  []slot
	Mod    uint32
	Elems  int // elements in the map
	HasMap bool
	// RuleMod is the numgen modulus of the chain's one rule; 0 when the
	// chain is missing or does not hold exactly our rule on our map.
	RuleMod  uint32
	Rules    int // rules in the chain
	HasChain bool
	// Live: the vips map sends the service to its chain; Refused: the
	// nobackend set holds it.
	Live, Refused bool
	// Stray: the vips map holds the service's key with another verdict.
	Stray bool
}

// lbView is the kernel's state of the dataplane's tables.
type lbView struct {
	// Intact is false for a table (by index in NFTables.fams) whose sets
	// or base chains are missing or altered: it is rebuilt, whole.
	Intact []bool
	Exists []bool
	Svcs   map[serviceKey]*lbService
	// Strays are a service's objects found in a table other than its
	// shard's (a different lbShards): deleted.
	Strays []stray
}

// stray is a chain, map or dispatch element of a service in the wrong
// table.
type stray struct {
	Table int // index in NFTables.fams
	Chain string
	Map   string
	Key   []byte
}

// equal reports whether s and o are the same kernel state.
func (s *lbService) equal(o *lbService) bool {
	return s.Mod == o.Mod && s.Elems == o.Elems && s.HasMap == o.HasMap && s.RuleMod == o.RuleMod && s.Rules == o.Rules &&
		s.HasChain == o.HasChain && s.Live == o.Live && s.Refused == o.Refused && s.Stray == o.Stray && slices.Equal(s.Slots, o.Slots)
}

func (v *lbView) svc(k serviceKey) *lbService {
	s := v.Svcs[k]
	if s == nil {
		s = &lbService{}
		v.Svcs[k] = s
	}
	return s
}

// ruleInfo is what the read checks of one rule.
type ruleInfo struct {
	exprs []string
	mod   uint32 // numgen modulus
	set   string // the last lookup's set
}

// readView reads both families' tables.
func (x *NFTables) readView() (*lbView, error) {
	v := &lbView{Svcs: map[serviceKey]*lbService{}, Intact: make([]bool, len(x.fams)), Exists: make([]bool, len(x.fams))}
	for i, f := range x.fams {
		if err := x.readFamily(f, v, i); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (x *NFTables) readFamily(f *lbFamily, v *lbView, i int) error {
	if _, err := x.conn.ListTableOfFamily(f.table.Name, f.table.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("read nftables table %s: %w", f.table.Name, err)
	}
	v.Exists[i] = true
	rules, err := dumpRules(x.cfg.NetNS, f.table)
	if err != nil {
		return err
	}
	chains, err := x.chainsOf(f)
	if err != nil {
		return err
	}
	sets, err := x.conn.GetSets(f.table)
	if err != nil {
		return fmt.Errorf("read nftables sets of %s: %w", f.table.Name, err)
	}
	v.Intact[i] = baseIntact(f, chains, sets, rules)
	if !v.Intact[i] {
		return nil // rebuilt whole; the services go with it
	}
	for _, ch := range chains {
		if k, err := parseServiceName(chainPrefix, ch.Name); err == nil {
			if _, j := x.family(k); j != i {
				v.Strays = append(v.Strays, stray{Table: i, Chain: ch.Name})
				continue
			}
			s := v.svc(k)
			s.HasChain, s.Rules = true, len(rules[ch.Name])
			if rs := rules[ch.Name]; len(rs) == 1 && slices.Equal(rs[0].exprs, []string{"numgen", "byteorder", "lookup", "nat"}) && rs[0].set == serviceName(mapPrefix, k) {
				s.RuleMod = rs[0].mod
			}
		}
	}
	for _, st := range sets {
		k, err := parseServiceName(mapPrefix, st.Name)
		if err != nil {
			continue
		}
		if _, j := x.family(k); j != i {
			v.Strays = append(v.Strays, stray{Table: i, Map: st.Name})
			continue
		}
		es, err := x.conn.GetSetElements(st)
		if err != nil {
			return fmt.Errorf("read nftables map %s: %w", st.Name, err)
		}
		s := v.svc(k)
		s.HasMap, s.Elems = true, len(es)
		if st.Interval && st.IsMap && st.KeyType.Bytes == 4 {
			s.Slots, s.Mod, _ = elementSlots(es, int(f.addrLen()))
		}
	}
	return x.readDispatch(f, v, i)
}

// chainsOf lists the chains of f's table.
func (x *NFTables) chainsOf(f *lbFamily) ([]*nftables.Chain, error) {
	all, err := x.conn.ListChainsOfTableFamily(f.table.Family)
	if err != nil {
		return nil, fmt.Errorf("read nftables chains of %s: %w", f.table.Name, err)
	}
	return slices.DeleteFunc(all, func(c *nftables.Chain) bool { return c.Table.Name != f.table.Name }), nil
}

// readDispatch reads the vips map and the nobackend set.
func (x *NFTables) readDispatch(f *lbFamily, v *lbView, i int) error {
	for _, st := range f.sets() {
		es, err := x.conn.GetSetElements(st)
		if err != nil {
			return fmt.Errorf("read nftables set %s: %w", st.Name, err)
		}
		for _, e := range es {
			k, ok := parseDispatchKey(e.Key, f.addrLen())
			if !ok {
				continue
			}
			if _, j := x.family(k); st == f.vips && j != i {
				v.Strays = append(v.Strays, stray{Table: i, Key: e.Key})
				continue
			}
			if st == f.refuse {
				v.svc(k).Refused = true
			} else if verdictChain(e.Val) == serviceName(chainPrefix, k) {
				v.svc(k).Live = true
			} else {
				v.svc(k).Stray = true // to another chain: rewritten
			}
		}
	}
	return nil
}

func parseDispatchKey(b []byte, addrLen uint32) (serviceKey, bool) {
	if len(b) != int(addrLen)+8 {
		return serviceKey{}, false
	}
	a, _ := netip.AddrFromSlice(b[:addrLen])
	return serviceKey{Proto: uint16(b[addrLen]), Addr: a, Port: uint16(b[addrLen+4])<<8 | uint16(b[addrLen+5])}, true
}

// verdictChain returns the chain of a goto or jump verdict as the element
// reader leaves it (the nested NFTA_VERDICT_* attributes), or "".
func verdictChain(b []byte) string {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	ad.ByteOrder = binary.BigEndian
	var code uint32
	var chain string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = ad.Uint32()
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	switch int32(code) {
	case int32(expr.VerdictGoto), int32(expr.VerdictJump):
		return chain
	}
	return ""
}

// baseIntact reports whether the family's sets and base chains are as
// create makes them.
func baseIntact(f *lbFamily, chains []*nftables.Chain, sets []*nftables.Set, rules map[string][]ruleInfo) bool {
	for _, want := range f.sets() {
		i := slices.IndexFunc(sets, func(s *nftables.Set) bool { return s.Name == want.Name })
		if i < 0 || sets[i].IsMap != want.IsMap {
			return false
		}
		// google/nftables v0.3.0 reads a verdict map's key type as
		// "verdict" (google/nftables#319): only a set's is checked.
		if !want.IsMap && sets[i].KeyType.Bytes != want.KeyType.Bytes {
			return false
		}
	}
	for _, bc := range f.chains() {
		i := slices.IndexFunc(chains, func(c *nftables.Chain) bool { return c.Name == bc.name })
		if i < 0 {
			return false
		}
		c := chains[i]
		if c.Type != bc.typ || c.Hooknum == nil || *c.Hooknum != *bc.hook || c.Priority == nil || *c.Priority != *bc.priority {
			return false
		}
		want := bc.rules(f)
		have := rules[bc.name]
		if len(have) != len(want) {
			return false
		}
		for j, r := range want {
			if !slices.Equal(have[j].exprs, exprNamesOf(r)) {
				return false
			}
		}
	}
	return true
}

// exprNamesOf names the expressions the rules of this dataplane use, as
// the kernel reports them.
func exprNamesOf(es []expr.Any) []string {
	out := make([]string, len(es))
	for i, e := range es {
		switch e.(type) {
		case *expr.Payload:
			out[i] = "payload"
		case *expr.Meta:
			out[i] = "meta"
		case *expr.Lookup:
			out[i] = "lookup"
		case *expr.Ct:
			out[i] = "ct"
		case *expr.Bitwise:
			out[i] = "bitwise"
		case *expr.Cmp:
			out[i] = "cmp"
		case *expr.Reject:
			out[i] = "reject"
		default:
			out[i] = fmt.Sprintf("%T", e)
		}
	}
	return out
}

// dumpRules dumps every rule of table t by raw netlink in one request and
// returns, by chain, what the read checks of each. (The library's
// GetRules takes one chain per request, which at 10,000 services is
// 10,000 round trips, and cannot decode every expression.)
func dumpRules(netns int, t *nftables.Table) (map[string][]ruleInfo, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	defer c.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(t.Name + "\x00")}})
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{byte(t.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("read nftables rules of %s: %w", t.Name, err)
	}
	out := map[string][]ruleInfo{}
	for _, msg := range msgs {
		if len(msg.Data) < 4 {
			continue
		}
		chain, r, err := parseRule(msg.Data[4:])
		if err != nil {
			r = ruleInfo{exprs: []string{"?"}} // unreadable: not ours
		}
		out[chain] = append(out[chain], r)
	}
	return out, nil
}

// parseRule reads a rule message's chain and expressions.
func parseRule(b []byte) (string, ruleInfo, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", ruleInfo{}, err
	}
	var chain string
	var r ruleInfo
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			chain = strings.TrimRight(ad.String(), "\x00")
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(e *netlink.AttributeDecoder) error { return r.addExpr(e) })
				}
				return nil
			})
		}
	}
	return chain, r, ad.Err()
}

// addExpr reads one expression's name and the data the read checks.
func (r *ruleInfo) addExpr(e *netlink.AttributeDecoder) error {
	var name string
	var data []byte
	for e.Next() {
		switch e.Type() {
		case unix.NFTA_EXPR_NAME:
			name = e.String()
		case unix.NFTA_EXPR_DATA:
			data = e.Bytes()
		}
	}
	r.exprs = append(r.exprs, name)
	d, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil
	}
	for d.Next() {
		switch {
		case name == "numgen" && d.Type() == unix.NFTA_NG_MODULUS:
			d.ByteOrder = binary.BigEndian
			r.mod = d.Uint32()
		case name == "lookup" && d.Type() == unix.NFTA_LOOKUP_SET:
			r.set = d.String()
		}
	}
	return nil
}

// generation reads the ruleset's generation, which every commit to any
// table increments: unchanged since the dataplane's last write, nothing
// can have changed its tables.
func generation(netns int) (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return 0, fmt.Errorf("open nftables netlink: %w", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("read nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("read nftables generation: no generation in the reply")
}

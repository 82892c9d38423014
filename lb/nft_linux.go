package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Names in the nftables ruleset that nftMasq owns.
const (
	nftTable = "vipbridge"
	nftChain = "postrouting"
	nftSet4  = "vips4"
	nftSet6  = "vips6"
)

// ruleExprs are the expressions of each of our rules, by name.
var ruleExprs = []string{"meta", "cmp", "ct", "lookup", "masq"}

// nftElemChunk bounds the elements per transaction: one transaction is one
// netlink send, and the socket's send buffer (about 200 kB by default)
// limits its size.
const nftElemChunk = 2048

// nftMasq keeps the nftables table that masquerades IPVS-forwarded traffic,
// so that backends without a route back to the client answer this host:
//
//	table inet vipbridge {
//		set vips4 { type ipv4_addr; }
//		set vips6 { type ipv6_addr; }
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			meta nfproto ipv4 ct original ip daddr @vips4 masquerade
//			meta nfproto ipv6 ct original ip6 daddr @vips6 masquerade
//		}
//	}
//
// nftables has no match for IPVS like iptables' "-m ipvs --vmethod MASQ"
// (dcos-net's rule, UPSTREAM.md §1.7). With net.ipv4.vs.conntrack=1 IPVS
// keeps the original tuple client→VIP in conntrack and rewrites only the
// reply tuple, so "the connection was addressed to one of our VIPs" is what
// marks IPVS traffic in postrouting: a packet to a VIP that IPVS did not
// forward is delivered locally and never reaches postrouting. NAT chains
// see only the first packet of a connection. The rules load the 16-byte
// inet conntrack address, hence the nfproto guard before each lookup.
//
// The table is vipbridge's alone: drift (a deleted table, set or rule) is
// repaired by building it again.
type nftMasq struct {
	netns int // network namespace fd; 0 is the caller's
	conn  *nftables.Conn
	table *nftables.Table
	sets  [2]*nftables.Set        // IPv4, IPv6
	cur   map[netip.Addr]struct{} // the sets' contents; nil: unknown
}

// newNFTMasq opens nftables netlink in network namespace netns (an fd; 0
// means the caller's).
func newNFTMasq(netns int) (*nftMasq, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	t := &nftables.Table{Name: nftTable, Family: nftables.TableFamilyINet}
	return &nftMasq{
		netns: netns,
		conn:  c,
		table: t,
		sets: [2]*nftables.Set{
			{Table: t, Name: nftSet4, KeyType: nftables.TypeIPAddr},
			{Table: t, Name: nftSet6, KeyType: nftables.TypeIP6Addr},
		},
	}, nil
}

func (m *nftMasq) close() { _ = m.conn.CloseLasting() }

// sync makes the sets hold exactly vips and returns how many changes that
// took (a rebuilt table counts one). With verify, or when the contents are
// unknown, it reads the ruleset first and rebuilds the table if any part is
// missing.
func (m *nftMasq) sync(vips map[netip.Addr]struct{}, verify bool) (int, error) {
	changes := 0
	if verify || m.cur == nil {
		m.cur = nil
		exists, cur, err := m.read()
		if err != nil {
			return 0, err
		}
		if cur == nil {
			if err := m.create(exists); err != nil {
				return 0, err
			}
			cur = map[netip.Addr]struct{}{}
			changes++
		}
		m.cur = cur
	}
	var add, del [2][]nftables.SetElement
	for a := range vips {
		if _, ok := m.cur[a]; !ok {
			add[setIndex(a)] = append(add[setIndex(a)], nftables.SetElement{Key: a.AsSlice()})
		}
	}
	for a := range m.cur {
		if _, ok := vips[a]; !ok {
			del[setIndex(a)] = append(del[setIndex(a)], nftables.SetElement{Key: a.AsSlice()})
		}
	}
	n, err := m.write(add, del)
	changes += n
	if err != nil {
		m.cur = nil
		return changes, err
	}
	for _, es := range del {
		for _, e := range es {
			a, _ := netip.AddrFromSlice(e.Key)
			delete(m.cur, a)
		}
	}
	for _, es := range add {
		for _, e := range es {
			a, _ := netip.AddrFromSlice(e.Key)
			m.cur[a] = struct{}{}
		}
	}
	return changes, nil
}

func setIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// write adds and deletes set elements in transactions of nftElemChunk.
func (m *nftMasq) write(add, del [2][]nftables.SetElement) (int, error) {
	n := 0
	for i, s := range m.sets {
		for _, op := range []struct {
			elems []nftables.SetElement
			fn    func(*nftables.Set, []nftables.SetElement) error
		}{{del[i], m.conn.SetDeleteElements}, {add[i], m.conn.SetAddElements}} {
			for len(op.elems) > 0 {
				chunk := op.elems[:min(len(op.elems), nftElemChunk)]
				op.elems = op.elems[len(chunk):]
				if err := op.fn(s, chunk); err != nil {
					return n, fmt.Errorf("update nftables set %s: %w", s.Name, err)
				}
				if err := m.conn.Flush(); err != nil {
					return n, fmt.Errorf("update nftables set %s: %w", s.Name, err)
				}
				n += len(chunk)
			}
		}
	}
	return n, nil
}

// read reports whether the table exists and, if it is complete (both sets,
// the chain, two rules), the sets' contents; cur is nil when incomplete.
func (m *nftMasq) read() (exists bool, cur map[netip.Addr]struct{}, err error) {
	if _, err := m.conn.ListTableOfFamily(nftTable, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("read nftables table %s: %w", nftTable, err)
	}
	if ok, err := m.rulesIntact(); err != nil || !ok {
		return true, nil, err
	}
	cur = map[netip.Addr]struct{}{}
	for _, s := range m.sets {
		got, err := m.conn.GetSetByName(m.table, s.Name)
		if err != nil || got.KeyType.Name != s.KeyType.Name {
			return true, nil, nil // no such set: rebuild
		}
		elems, err := m.conn.GetSetElements(s)
		if err != nil {
			return true, nil, fmt.Errorf("read nftables set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				cur[a] = struct{}{}
			}
		}
	}
	return true, cur, nil
}

// create (re)builds the table with empty sets in one transaction.
func (m *nftMasq) create(exists bool) error {
	if exists {
		m.conn.DelTable(m.table)
	}
	m.conn.AddTable(m.table)
	for _, s := range m.sets {
		s.ID = 0 // a new transaction ID for the rules' lookups
		if err := m.conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("create nftables set %s: %w", s.Name, err)
		}
	}
	ch := m.conn.AddChain(&nftables.Chain{
		Name:     nftChain,
		Table:    m.table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	for i, proto := range []byte{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
		m.conn.AddRule(&nftables.Rule{Table: m.table, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Ct{Key: expr.CtKeyDST, Direction: 0 /* original */, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: m.sets[i].Name, SetID: m.sets[i].ID},
			&expr.Masq{},
		}})
	}
	if err := m.conn.Flush(); err != nil {
		return fmt.Errorf("create nftables table %s: %w", nftTable, err)
	}
	return nil
}

// rulesIntact reports whether the chain holds our two rules. It dumps them
// by raw netlink: github.com/google/nftables cannot decode the ct
// expression's direction attribute (a u8 it reads as a u32).
func (m *nftMasq) rulesIntact() (bool, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: m.netns})
	if err != nil {
		return false, fmt.Errorf("open nftables netlink: %w", err)
	}
	defer c.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(nftTable + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(nftChain + "\x00")},
	})
	if err != nil {
		return false, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read nftables rules of %s: %w", nftChain, err)
	}
	n := 0
	for _, msg := range msgs {
		if len(msg.Data) < 4 {
			continue
		}
		names, err := exprNames(msg.Data[4:])
		if err != nil || !slices.Equal(names, ruleExprs) {
			return false, nil // a rule that is not ours: rebuild
		}
		n++
	}
	return n == 2, nil
}

// exprNames returns the expression names of a rule message's attributes.
func exprNames(b []byte) ([]string, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var names []string
	for ad.Next() {
		if ad.Type() != unix.NFTA_RULE_EXPRESSIONS {
			continue
		}
		ad.Nested(func(list *netlink.AttributeDecoder) error {
			for list.Next() {
				list.Nested(func(e *netlink.AttributeDecoder) error {
					for e.Next() {
						if e.Type() == unix.NFTA_EXPR_NAME {
							names = append(names, e.String())
						}
					}
					return nil
				})
			}
			return nil
		})
	}
	return names, ad.Err()
}

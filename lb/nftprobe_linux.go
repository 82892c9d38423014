// This file probes whether the kernel accepts what the nftables dataplane
// needs.

package lb

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
)

// probeTable is the throwaway table of the probe.
const probeTable = "vipbridge_probe"

// ProbeNFTables reports whether the kernel accepts the nftables features
// the nftables dataplane needs, in the caller's network namespace: verdict
// maps with concatenated keys, interval maps with concatenated data,
// numgen, byteorder, nat (DNAT from registers), ct state and reject in a
// prerouting filter chain. It commits a throwaway table built like the
// dataplane's in one transaction, then deletes it; nil means the kernel
// took it. It needs CAP_NET_ADMIN.
func ProbeNFTables() error { return probeNFTables(0) }

func probeNFTables(netns int) error {
	c, err := newNFTConn(netns)
	if err != nil {
		return fmt.Errorf("open nftables netlink: %w", err)
	}
	f := newLBFamily(false, 0)
	f.table.Name = probeTable
	if err := f.create(c, false); err != nil {
		return fmt.Errorf("nftables probe: %w", err)
	}
	k := serviceKey{Proto: protoTCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 9}
	ss, mod := slots([]wantDest{{Key: destKey{Addr: netip.MustParseAddr("192.0.2.2"), Port: 9}, Weight: 1}})
	m := f.serviceMap(k)
	if err := c.AddSet(m, slotElements(ss, mod)); err != nil {
		return fmt.Errorf("nftables probe: %w", err)
	}
	c.AddChain(f.serviceChain(k))
	c.AddRule(f.serviceRule(k, m, mod))
	if err := c.SetAddElements(f.vips, []nftables.SetElement{dispatchElement(f, k)}); err != nil {
		return fmt.Errorf("nftables probe: %w", err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("kernel refused the nftables probe (needs nf_tables with verdict maps, interval maps, numgen, nat, ct, reject): %w", err)
	}
	c.DelTable(f.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables probe table: %w", err)
	}
	return nil
}

// This file watches nftables notifications for commits that touch the
// dataplane's tables, so that drift is repaired at once rather than at
// the next periodic repair.

package lb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// watch sends on touched after every committed transaction that touched
// a table whose name starts with lbTable (the dataplane's own commits
// included: the repair they trigger finds the ruleset generation
// unchanged and reads nothing), and when notifications were lost, until
// ctx ends.
func watch(ctx context.Context, netns int, touched chan<- struct{}) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return fmt.Errorf("open nftables netlink: %w", err)
	}
	defer c.Close()
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		return fmt.Errorf("join nftables notifications: %w", err)
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	ours := false
	for {
		msgs, err := c.Receive()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !errors.Is(err, unix.ENOBUFS) {
				return fmt.Errorf("read nftables notifications: %w", err)
			}
			select { // notifications were lost: look
			case touched <- struct{}{}:
			default:
			}
			continue
		}
		for _, m := range msgs {
			switch {
			case m.Header.Type == netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN):
				if ours {
					select {
					case touched <- struct{}{}:
					default:
					}
				}
				ours = false
			case len(m.Data) > 4 && strings.HasPrefix(tableOf(m.Data[4:]), lbTable):
				ours = true
			}
		}
	}
}

// tableOf returns the table a notification is about: attribute 1 is the
// table's name in table, chain, rule, set and element messages
// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
// NFTA_SET_ELEM_LIST_TABLE).
func tableOf(b []byte) string {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == 1 {
			return ad.String()
		}
	}
	return ""
}

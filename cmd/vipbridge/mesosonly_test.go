package main

// Mesos-only mode end to end: the daemon with --mesos and no --marathon
// reads Marathon's tasks from the Mesos master state, as dcos-net does.

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// backendSet is a VIP's backends as sorted "ip:port w=weight" strings.
func backendSet(v vip) []string {
	var out []string
	for _, b := range v.Backend {
		out = append(out, fmt.Sprintf("%s:%d w=%d", b.IP, b.Port, b.Weight))
	}
	slices.Sort(out)
	return out
}

func TestMesosOnly(t *testing.T) {
	sim := startSim(t, "small")
	fastMesos := func(c *config) { c.MesosInterval = 100 * time.Millisecond }
	mesosOnly := startDaemonWith(t, t.TempDir(), nil, []string{sim.MesosURL()}, fastMesos)
	both := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()}, fastMesos)

	var webAddr netip.Addr
	waitFor(t, "web to resolve from Mesos alone", func() bool {
		r, err := mesosOnly.query(webName, dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		webAddr, _ = aRecord(r)
		return webAddr.IsValid()
	})
	if !netip.MustParsePrefix("11.0.0.0/8").Contains(webAddr) {
		t.Errorf("web A = %v, want an address in 11.0.0.0/8", webAddr)
	}
	digAnswers(t, mesosOnly, webName, webAddr.String())

	// The same backends as with Marathon: Marathon's tasks are counted
	// once either way.
	same := func(n int) func() bool {
		return func() bool {
			a, okA := mesosOnly.vip(webName + ":80")
			b, okB := both.vip(webName + ":80")
			return okA && okB && len(a.Backend) == n && slices.Equal(backendSet(a), backendSet(b))
		}
	}
	waitFor(t, "2 web backends, the same in both modes", same(2))
	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 web backends, the same in both modes", same(3))
	if err := sim.DeleteApp("/web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web NXDOMAIN from Mesos alone", func() bool {
		r, err := mesosOnly.query(webName, dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeNameError
	})
}

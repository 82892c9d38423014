package lb

import (
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// requireKernel skips a test that needs a kernel feature the host lacks,
// or fails it under VIPBRIDGE_KERNEL_TESTS=1 (CI and make test-kernel).
func requireKernel(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("VIPBRIDGE_KERNEL_TESTS") == "1" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v; run `make test-kernel` (kvm-run VM)", what, err)
}

// newNetns creates a network namespace, closed when t ends; the calling
// thread stays in its own.
func newNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("netns.Get() = %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		requireKernel(t, "new network namespace (needs root)", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to the original network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func addrSet(as ...string) map[netip.Addr]struct{} {
	out := make(map[netip.Addr]struct{}, len(as))
	for _, a := range as {
		out[netip.MustParseAddr(a)] = struct{}{}
	}
	return out
}

// TestNFTMasq programs the masquerade table in a fresh network namespace
// of the host's kernel (nf_tables needs no VM).
func TestNFTMasq(t *testing.T) {
	ns := newNetns(t)
	m, err := newNFTMasq(int(ns))
	if err != nil {
		t.Fatalf("newNFTMasq() = %v", err)
	}
	defer m.close()
	vips := addrSet("11.0.0.1", "11.0.0.2", "fd01:c::1")
	n, err := m.sync(vips, false)
	requireKernel(t, "nf_tables with inet nat chains", err)
	if n != 4 { // the table, three elements
		t.Errorf("first sync() = %d changes, want 4", n)
	}
	if n, err := m.sync(vips, true); n != 0 || err != nil {
		t.Errorf("sync() of the same set = %d, %v; want 0, nil", n, err)
	}
	if ok, err := m.rulesIntact(); !ok || err != nil {
		t.Errorf("rulesIntact() = %v, %v; want true", ok, err)
	}

	// Shrink, then lose the table behind its back: verify rebuilds it.
	vips = addrSet("11.0.0.2", "fd01:c::2")
	if n, err := m.sync(vips, false); n != 3 || err != nil {
		t.Errorf("sync() after a change = %d, %v; want 3, nil", n, err)
	}
	m.conn.FlushChain(&nftables.Chain{Name: nftChain, Table: m.table})
	if err := m.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := m.sync(vips, true); n != 3 || err != nil {
		t.Errorf("sync(verify) after the chain was flushed = %d, %v; want 3, nil", n, err)
	}
	m.conn.DelTable(m.table)
	if err := m.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := m.sync(vips, true); n != 3 || err != nil {
		t.Errorf("sync(verify) after the table was deleted = %d, %v; want 3, nil", n, err)
	}
	_, cur, err := m.read()
	if err != nil || len(cur) != 2 {
		t.Errorf("read() = %v, %v; want the two addresses", cur, err)
	}

	// More elements than one transaction holds.
	big := map[netip.Addr]struct{}{}
	for i := range 3 * nftElemChunk {
		big[netip.AddrFrom16([16]byte{0xfd, 1, 0, 0xc, 14: byte(i >> 8), 15: byte(i)})] = struct{}{}
	}
	if _, err := m.sync(big, false); err != nil {
		t.Fatalf("sync() of %d addresses = %v", len(big), err)
	}
	if _, cur, err := m.read(); err != nil || len(cur) != len(big) {
		t.Errorf("read() = %d addresses, %v; want %d", len(cur), err, len(big))
	}
}

package store

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// TestStoreBoundedTransactions: a drain bigger than the per-transaction
// budget is committed in several transactions and stores all of it: every
// put and delete, the replaced source, the assignments and the last sync.
func TestStoreBoundedTransactions(t *testing.T) {
	tests := []struct {
		name    string
		txBytes int
	}{
		{name: "one transaction", txBytes: defaultTxBytes},
		{name: "one app per transaction", txBytes: 1},
		{name: "about four apps per transaction", txBytes: 16 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vipbridge.db")
			s := openTestStore(t, path)
			defer s.Close()
			s.txBytes = tt.txBytes
			s.Write(discovery.Batch{Source: "m", Put: bigApps(20, "v1"), LastSync: storeT0})
			s.Write(discovery.Batch{Source: "old", Put: []discovery.App{storeApp("/gone", "v1")}})
			flush(t, s)

			later := storeT0.Add(time.Minute)
			s.Write(discovery.Batch{Source: "m", Put: bigApps(10, "v2"), Delete: []string{"/big/019"}})
			s.Write(discovery.Batch{Source: "old", Replace: true, Put: []discovery.App{storeApp("/new", "v1")}})
			s.Write(discovery.Batch{Assign: []discovery.Assignment{{Name: "a.marathon", Addr: netip.MustParseAddr("11.0.0.5"), LastSeen: storeT0}}})
			s.Write(discovery.Batch{LastSync: later})
			flush(t, s)

			st := load(t, s)
			if got := len(st.Sources["m"]); got != 19 {
				t.Errorf("apps of m = %d, want 19", got)
			}
			for i, a := range st.Sources["m"] {
				want := "v1"
				if i < 10 {
					want = "v2"
				}
				if a.Version[:2] != want {
					t.Errorf("app %s version %.2s, want %s", a.ID, a.Version, want)
				}
			}
			if got := appIDs(discovery.Stored{Sources: map[string][]discovery.App{"old": st.Sources["old"]}}); len(got) != 1 || got[0] != "old:/new@v1" {
				t.Errorf("replaced source = %v, want [old:/new@v1]", got)
			}
			if len(st.Assignments) != 1 || !st.LastSync.Equal(later) {
				t.Errorf("assignments %v, last sync %v, want one and %v", st.Assignments, st.LastSync, later)
			}
		})
	}
}

// TestStoreBoundedTransactionsCrash: when a drain of several transactions
// fails after the first (here the file system fills up, as a kill -9 would
// stop it), the file holds no last sync marker: the part committed is
// served after a restart but not counted as a complete sync. The marker
// that was there comes back with the retry, together with the rest.
func TestStoreBoundedTransactionsCrash(t *testing.T) {
	dir := tinyTmpfs(t, 4<<20)
	path := filepath.Join(dir, "vipbridge.db")
	s := openTestStore(t, path)
	defer s.Close()
	s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/kept", "v1")}, LastSync: storeT0})
	flush(t, s)

	s.txBytes = 64 << 10
	filler := filepath.Join(dir, "filler")
	// Leave room for the first transactions only (bbolt grows the file in
	// steps, so how many commit is not exact; at least one must).
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Write(discovery.Batch{Source: "m", Put: bigApps(200, "v1")}) // 200 values of two pages: does not fit
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("Flush of 1.6 MB into about 1 MB of free space succeeded")
	}
	st := load(t, s)
	if !st.LastSync.IsZero() {
		t.Errorf("last sync after a drain failed halfway = %v, want none", st.LastSync)
	}
	if n := len(st.Sources["m"]); n < 2 || n > 200 {
		t.Errorf("apps after a drain failed halfway = %d, want the first transactions' (more than /kept)", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after space came back: %v", err)
	}
	st = load(t, s)
	if n := len(st.Sources["m"]); n != 201 || !st.LastSync.Equal(storeT0) {
		t.Errorf("after the retry: %d apps, last sync %v, want 201 and %v", n, st.LastSync, storeT0)
	}
}

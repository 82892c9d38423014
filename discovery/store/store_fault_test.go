package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// tinyTmpfs mounts a tmpfs of size bytes on a fresh directory and returns
// it; it is unmounted at cleanup. Mounting needs root: elsewhere the test
// skips, saying so (under CI=true as root it fails instead).
func tinyTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs as root under CI: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// bigApps returns n apps of about 4 KiB each.
func bigApps(n int, version string) []discovery.App {
	apps := make([]discovery.App, n)
	for i := range apps {
		apps[i] = storeApp(fmt.Sprintf("/big/%03d", i), version+strings.Repeat("x", 4096))
	}
	return apps
}

// TestStoreDiskFull: on a full file system commits fail, are counted and
// logged, the changes stay queued, what was committed stays readable, and
// the queue commits once space is back.
func TestStoreDiskFull(t *testing.T) {
	dir := tinyTmpfs(t, 4<<20)
	path := filepath.Join(dir, "vipbridge.db")
	s := openTestStore(t, path)
	defer s.Close()
	s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/kept", "v1")}})
	flush(t, s)

	filler := fill(t, dir)
	s.Write(discovery.Batch{Source: "m", Put: bigApps(100, "v1")})
	err := s.Flush(context.Background())
	if err == nil {
		t.Fatalf("Flush of 400 KiB on a full file system succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "space") {
		t.Logf("Flush on a full disk = %v (not ENOSPC, still an error)", err)
	}
	if got := counted(t, s.met.writeErrors); got < 1 {
		t.Errorf("vipbridge_store_write_errors_total = %v, want ≥ 1", got)
	}
	if got := appIDs(load(t, s)); len(got) != 1 || got[0] != "m:/kept@v1" {
		t.Errorf("apps readable on the full disk = %v, want [m:/kept@v1]", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.Write(discovery.Batch{Source: "m", Put: bigApps(10, "v2")}) // 10 KiB over the first 10 of the failed batch
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after space came back: %v", err)
	}
	if got := load(t, s).Sources["m"]; len(got) != 101 {
		t.Errorf("apps after space came back = %d, want 101 (the queued changes)", len(got))
	}
}

// TestStoreReadOnlyFileSystem: an existing store on a read-only file
// system is refused at open with an error naming the file and the cause;
// the daemon then exits with it rather than run without persistence.
func TestStoreReadOnlyFileSystem(t *testing.T) {
	dir := tinyTmpfs(t, 1<<20)
	path := filepath.Join(dir, "vipbridge.db")
	s := openTestStore(t, path)
	s.Write(discovery.Batch{Source: "m", Put: []discovery.App{storeApp("/a", "v1")}})
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v\n%s", err, out)
	}
	_, err := Open(path, Config{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Open on a read-only file system = %v, want an error naming %s and read-only", err, path)
	}
}

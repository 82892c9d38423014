package cluster

// Cluster mode against every etcd server version operators run: Debian's
// 3.4 (DC/OS's) runs every test, the current server is embedded in
// embedtest, and 3.5 and 3.6 (built by scripts/build-etcd.sh into bin/etcd,
// or $VIPBRIDGE_ETCD_VERSIONS) run the convergence, fencing and relist
// cases here.

import (
	"cmp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

// etcdVersions are the servers scripts/deps.d/etcd.sh builds.
var etcdVersions = []string{"3.5.36", "3.6.16"}

func TestEtcdVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("three etcd clusters per version")
	}
	dir := cmp.Or(os.Getenv("VIPBRIDGE_ETCD_VERSIONS"), filepath.Join("..", "..", "bin", "etcd"))
	for _, v := range etcdVersions {
		t.Run(v, func(t *testing.T) {
			bin := filepath.Join(dir, "etcd-"+v)
			if _, err := os.Stat(bin); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("etcd %s missing at %s (scripts/test-deps.sh builds it): %v", v, bin, err)
				}
				t.Skipf("etcd %s missing at %s: scripts/test-deps.sh builds it", v, bin)
			}
			out, err := exec.Command(bin, "--version").Output()
			if err != nil || !strings.Contains(string(out), "etcd Version: "+v) {
				t.Fatalf("%s --version = %q, %v; want etcd %s", bin, out, err, v)
			}
			with := etcdtest.WithBinary(bin)
			t.Run("converge", func(t *testing.T) { testPublisherNodesConverge(t, etcdtest.Start(t, 3, with)) })
			t.Run("fenced", func(t *testing.T) { testPausedPublisherIsFenced(t, etcdtest.Start(t, 3, with)) })
			t.Run("relist", func(t *testing.T) { testNodeRelists(t, etcdtest.Start(t, 3, with)) })
		})
	}
}

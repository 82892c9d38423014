package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReleaseLinksNoTestCode checks that the binary links neither package
// testing nor the upstream fixture helpers: test helpers live in _test.go
// files or in packages that only tests import (STYLE.md §12). The demo's
// simulator, marathontest, is linked on purpose and must stay free of both.
func TestReleaseLinksNoTestCode(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || deps[len(deps)-1] != "github.com/vipbridge/vipbridge/cmd/vipbridge" {
		t.Fatalf("go list -deps . printed %d packages ending in %q, want the dependencies of cmd/vipbridge", len(deps), deps[len(deps)-1:])
	}
	for _, p := range deps {
		if p == "testing" || strings.HasPrefix(p, "testing/") || p == "github.com/vipbridge/vipbridge/fixtures/upstreamtest" {
			t.Errorf("cmd/vipbridge links %s; test helpers belong in _test.go files or packages only tests import", p)
		}
	}
}

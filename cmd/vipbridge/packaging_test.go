package main

import (
	"bufio"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The files of packaging/ checked against the binary: the environment file
// names every flag, and systemd accepts the units.

// packagingDir is the repository's packaging directory.
const packagingDir = "../../packaging"

// runFlags are the flags of `vipbridge run`, from its usage text.
func runFlags(t *testing.T) []string {
	t.Helper()
	var usage strings.Builder
	_, err := parseConfig("run", []string{"-h"}, func(string) (string, bool) { return "", false }, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseConfig(run, -h) = %v, want flag.ErrHelp", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(usage.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("found %d flags in the usage of run, want them all:\n%s", len(names), usage.String())
	}
	return names
}

// TestEnvFileNamesEveryFlag keeps packaging/vipbridge.env complete: every
// flag of `vipbridge run` has its VIPBRIDGE_* line (commented or not), and
// every VIPBRIDGE_* line is a flag.
func TestEnvFileNamesEveryFlag(t *testing.T) {
	f, err := os.Open(filepath.Join(packagingDir, "vipbridge.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inFile := map[string]bool{}
	line := regexp.MustCompile(`^#?(VIPBRIDGE_[A-Z0-9_]+)=`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			inFile[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range runFlags(t) {
		v := envName(name)
		want = append(want, v)
		if !inFile[v] {
			t.Errorf("packaging/vipbridge.env lacks %s (flag --%s): add a line \"#%s=<default>\"", v, name, v)
		}
	}
	for v := range inFile {
		if !slices.Contains(want, v) {
			t.Errorf("packaging/vipbridge.env sets %s, which is no flag of vipbridge run", v)
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify on vipbridge.service and
// vipbridge.socket, with ExecStart pointing at a built binary (verify
// checks that it exists). verify exits 0 even on unknown keys and bad
// values, so any output at all fails the test.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not installed (scripts/test-deps.sh installs systemd)")
		}
		t.Skip("systemd-analyze not installed (scripts/test-deps.sh installs systemd)")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, name := range []string{"vipbridge.service", "vipbridge.socket"} {
		b, err := os.ReadFile(filepath.Join(packagingDir, name))
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		if name == "vipbridge.service" {
			if !strings.Contains(unit, "ExecStart=/usr/bin/vipbridge run\n") {
				t.Fatalf("%s: no \"ExecStart=/usr/bin/vipbridge run\" line to point at the test binary", name)
			}
			unit = strings.Replace(unit, "/usr/bin/vipbridge", bin, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", filepath.Join(dir, "vipbridge.service"), filepath.Join(dir, "vipbridge.socket"))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestAddrMatches(t *testing.T) {
	tests := []struct {
		name  string
		bound string
		flag  string
		want  bool
	}{
		{"same address", "127.0.0.1:53", "127.0.0.1:53", true},
		{"flag wildcard", "127.0.0.1:53", ":53", true},
		{"flag 0.0.0.0", "10.0.0.1:53", "0.0.0.0:53", true},
		{"socket wildcard", "[::]:53", ":53", true},
		{"socket wildcard, flag address", "[::]:53", "198.51.100.1:53", true},
		{"other port", "127.0.0.1:54", "127.0.0.1:53", false},
		{"other address", "127.0.0.2:53", "127.0.0.1:53", false},
		{"v4-mapped", "[::ffff:127.0.0.1]:53", "127.0.0.1:53", true},
		{"host name", "127.0.0.1:53", "localhost:53", false},
		{"bad flag", "127.0.0.1:53", "53", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bound, err := net.ResolveTCPAddr("tcp", tt.bound)
			if err != nil {
				t.Fatal(err)
			}
			if got := addrMatches(bound, tt.flag); got != tt.want {
				t.Errorf("addrMatches(%s, %q) = %v, want %v", tt.bound, tt.flag, got, tt.want)
			}
		})
	}
}

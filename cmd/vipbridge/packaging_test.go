package main

import (
	"bufio"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
// values, so any output at all fails the test. systemd-analyze security
// then scores the service's hardening.
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
	// The hardening: systemd's own exposure score of the service, 0 (all
	// locked down) to 10, is 2.0; weakening it past 2.5 fails.
	cmd = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=25", "--no-pager", filepath.Join(dir, "vipbridge.service"))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security --threshold=25 (exposure above 2.5): %v\n%s", err, out)
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

// TestVersionScript runs scripts/version.sh in a scratch repository
// through tags, commits and a dirty tree: each version is the one its
// comment promises, valid for Debian, and later builds sort later.
func TestVersionScript(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	script, err := os.ReadFile("../../scripts/version.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts/version.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	sh := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() string {
		sh("git", "commit", "-q", "--allow-empty", "-m", "c")
		return sh("git", "rev-parse", "--short=7", "HEAD")
	}
	version := func() string { return sh("scripts/version.sh") }

	sh("git", "init", "-q")
	sh("git", "add", "scripts/version.sh")
	var got []string
	check := func(want string) {
		t.Helper()
		v := version()
		if v != want {
			t.Errorf("version.sh = %q, want %q", v, want)
		}
		got = append(got, v)
	}
	h := commit()
	check("0.0.0+git1.g" + h)
	h = commit()
	check("0.0.0+git2.g" + h)
	sh("git", "tag", "v1.3.0-rc1")
	check("1.3.0~rc1")
	h = commit()
	check("1.3.0~rc1+git1.g" + h)
	commit()
	sh("git", "tag", "-a", "-m", "release", "v1.3.0")
	check("1.3.0")
	h = commit()
	check("1.3.0+git1.g" + h)
	if err := os.WriteFile(filepath.Join(dir, "scripts/version.sh"), append(script, '\n'), 0o755); err != nil {
		t.Fatal(err)
	}
	check("1.3.0+git1.g" + h + ".dirty")

	if _, err := exec.LookPath("dpkg"); err != nil {
		return
	}
	for i, v := range got {
		if out, err := exec.Command("dpkg", "--validate-version", v).CombinedOutput(); err != nil {
			t.Errorf("dpkg --validate-version %s: %v %s", v, err, out)
		}
		if i > 0 {
			if err := exec.Command("dpkg", "--compare-versions", got[i-1], "lt", v).Run(); err != nil {
				t.Errorf("dpkg sorts %s before %s, want after", v, got[i-1])
			}
		}
	}
}

// FuzzAddrMatches checks addrMatches on any flag value: it never panics,
// a match always has the socket's port, and the socket's own address
// always matches.
func FuzzAddrMatches(f *testing.F) {
	f.Add("127.0.0.1", uint16(53), "127.0.0.1:53")
	f.Add("::", uint16(53), ":53")
	f.Add("10.0.0.1", uint16(62080), "[::ffff:10.0.0.1]:62080")
	f.Add("127.0.0.1", uint16(53), "localhost:53")
	f.Fuzz(func(t *testing.T, ip string, port uint16, flagValue string) {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return
		}
		bound := net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, port))
		if addrMatches(bound, flagValue) {
			_, p, err := net.SplitHostPort(strings.TrimSpace(flagValue))
			if err != nil || p != strconv.Itoa(int(port)) {
				t.Fatalf("addrMatches(%s, %q) = true with another port", bound, flagValue)
			}
		}
		if !addrMatches(bound, bound.String()) {
			t.Fatalf("addrMatches(%s, its own address) = false", bound)
		}
	})
}

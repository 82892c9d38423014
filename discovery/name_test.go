package discovery

import (
	"strings"
	"testing"
	"time"
)

// labelTests holds the remap_test vectors of dcos/mesos_state
// (src/mesos_state.erl) plus our own edge cases; FuzzNormaliseName is seeded
// with them.
var labelTests = []struct {
	name string
	in   string
	want string
}{
	{"upstream drops % and $", "fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg-123"},
	{"upstream already valid", "4abc123", "4abc123"},
	{"upstream leading digits", "89fdgsf---gs7-fgs--d7fddg-123", "89fdgsf---gs7-fgs--d7fddg-123"},
	{"upstream cut trims trailing dash", "##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-", "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789"},
	{"upstream cut refills after dash", "fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
	{"upstream dash runs kept", "89fdgsf---gs7-fgs--d7fddg---123", "89fdgsf---gs7-fgs--d7fddg---123"},
	{"upstream cut skips dash run", "%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
	{"upstream leading dash", "-4abc123", "4abc123"},
	{"upstream cut after $$", "$$fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
	{"upstream trailing dash", "89fdgsf---gs7-fgs--d7fddg-", "89fdgsf---gs7-fgs--d7fddg"},
	{"upstream single dash", "0-0", "0-0"},
	{"empty", "", ""},
	{"only symbols", "/-_:", ""},
	{"slashes dropped", "/mygroup/myapp", "mygroupmyapp"},
	{"upper case", "MyApp", "myapp"},
	{"underscore and dot become dash", "a_b.c", "a-b-c"},
	{"leading underscore dropped", "__a", "a"},
	{"non-ascii dropped", "caf\u00e9-bar", "caf-bar"},
	{"bracket and colon dropped", "[fd01::1]", "fd011"},
	{"exactly 63", strings.Repeat("a", 63), strings.Repeat("a", 63)},
	{"64 cut", strings.Repeat("a", 64), strings.Repeat("a", 63)},
	{"cut at dash", strings.Repeat("a", 62) + "-b", strings.Repeat("a", 62) + "b"},
	{"cut at dash nothing after", strings.Repeat("a", 62) + "--", strings.Repeat("a", 62)},
}

func TestNormaliseLabel(t *testing.T) {
	for _, tt := range labelTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormaliseLabel(tt.in); got != tt.want {
				t.Errorf("NormaliseLabel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

var nameTests = []struct {
	name string
	in   string
	want string
}{
	{"marathon group", "/mygroup/myapp", "mygroupmyapp"},
	{"dots kept", "/api.hello-world", "api.hello-world"},
	{"leading slash", "/foo", "foo"},
	{"framework", "marathon-user", "marathon-user"},
	{"empty fragments", "a..b.", "a.b"},
	{"fragment normalising to empty", "a./.b", "a.b"},
	{"only dots", "...", ""},
	{"upper case", "Hello.World", "hello.world"},
	{"long fragment", strings.Repeat("x", 70) + ".y", strings.Repeat("x", 63) + ".y"},
	{"colon", "invalid-port:", "invalid-port"},
}

func TestNormaliseName(t *testing.T) {
	for _, tt := range nameTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormaliseName(tt.in); got != tt.want {
				t.Errorf("NormaliseName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestBuildVIPName: Build names a named VIP
// "<NormaliseName(label)>.<NormaliseName(framework)>", as dcos-l4lb does
// (dcos/dcos-net: apps/dcos_l4lb/src/dcos_l4lb_lashup_vip_listener.erl,
// to_name/1), and declares no VIP when either part normalises to nothing.
func TestBuildVIPName(t *testing.T) {
	tests := []struct {
		name      string
		label     string
		framework string
		want      string
	}{
		// dcos/dcos-net: apps/dcos_l4lb/test/dcos_l4lb_lashup_vip_listener_SUITE.erl
		{"upstream foo bar", "/foo", "bar", "foo.bar"},
		{"upstream qux ipv6", "/qux", "ipv6", "qux.ipv6"},
		{"group", "/mygroup/myapp", "marathon", "mygroupmyapp.marathon"},
		{"sdk", "/api.hello-world", "hello-world", "api.hello-world.hello-world"},
		{"framework normalised", "web", "Marathon_User", "web.marathon-user"},
		{"empty label", "/", "marathon", ""},
		{"empty framework", "web", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := App{ID: "/x", Framework: tt.framework, Ports: []Port{vipPort(PortHost, tcp, tt.label+":80")},
				Tasks: []Task{webTask("/x", 31000, TaskRunning, HealthNone)}}
			var got string
			for v := range Build([]App{app}, NewAllocator(testAllocConfig, nil), time.Time{}).VIPs.All() {
				got = v.Key.Name
			}
			if got != tt.want {
				t.Errorf("VIP name of label %q, framework %q = %q, want %q", tt.label, tt.framework, got, tt.want)
			}
		})
	}
}

func FuzzNormaliseName(f *testing.F) {
	for _, tt := range labelTests {
		f.Add(tt.in)
	}
	for _, tt := range nameTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormaliseName(s)
		if again := NormaliseName(got); again != got {
			t.Fatalf("NormaliseName not idempotent: %q → %q → %q", s, got, again)
		}
		if got == "" {
			return
		}
		for l := range strings.SplitSeq(got, ".") {
			if l == "" || len(l) > maxLabel || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("NormaliseName(%q) = %q: bad label %q", s, got, l)
			}
			for i := 0; i < len(l); i++ {
				if c := l[i]; !isAlnum(c) && c != '-' {
					t.Fatalf("NormaliseName(%q) = %q: byte %q outside [a-z0-9-]", s, got, c)
				}
			}
		}
		if l := NormaliseLabel(s); l != "" && !isLabel(l) {
			t.Fatalf("NormaliseLabel(%q) = %q, not a label", s, l)
		}
	})
}

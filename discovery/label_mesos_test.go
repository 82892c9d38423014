package discovery

// Tests of mesos-dns's label rules: the label functions against
// upstream's own cases (records/labels/labels_test.go), DomainFrag, the
// canonical hash against mesos-dns's expected names, and a fuzz test
// against a plain transcription of upstream's trimCut.

import (
	"bytes"
	"strings"
	"testing"
)

func TestMesosLabel(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		rfc952 bool
		want   string
	}{
		{"empty", "", false, ""},
		{"only a dash", "-", false, ""},
		{"trailing dashes trimmed", "a---", false, "a"},
		{"leading and trailing dashes trimmed", "---a---b", false, "a---b"},
		{"dots become dashes: a task name is one label", "a.b.c.d.e", false, "a-b-c-d-e"},
		{"underscores become dashes", "a.c.d_de.", false, "a-c-d-de"},
		{"upper case lowered, spaces dropped", "chronos with a space AND MIXED CASE-2.0.1", false, "chronoswithaspaceandmixedcase-2-0-1"},
		{"other characters dropped", "fd%gsf---gs7-f$gs--d7fddg-123", false, "fdgsf---gs7-fgs--d7fddg-123"},
		{"non-ASCII dropped whole", "wéb—1", false, "wb1"},
		{"leading digits kept in RFC 1123", "-4abc123", false, "4abc123"},
		{"cut at 63", "$$fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-123", false, "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"cut at 63, trailing dash", "##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-", false, "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789"},
		{"trimCut refills after trimming the cut", "hello" + strings.Repeat("-", 58) + "f", false, "hellof"},
		{"63 octets kept whole", "hello" + strings.Repeat("-", 56) + "f", false, "hello" + strings.Repeat("-", 56) + "f"},
		{"refill may end in a dash", strings.Repeat("a", 61) + "---b-c", false, strings.Repeat("a", 61) + "b-"},
		{"RFC 952 trims leading digits", "4abc123", true, "abc123"},
		{"RFC 952 trims leading dashes and digits", "89fdgsf---gs7-fgs--d7fddg-", true, "fdgsf---gs7-fgs--d7fddg"},
		{"RFC 952 cut at 24 and refilled", "89fdgsf---gs7-fgs--d7fddg---123", true, "fdgsf---gs7-fgs--d7fddg1"},
		{"RFC 952 cut at 24", "chronos with a space AND MIXED CASE-2.0.1", true, "chronoswithaspaceandmixe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mesosLabel(tt.in, tt.rfc952); got != tt.want {
				t.Errorf("mesosLabel(%q, %v) = %q, want %q", tt.in, tt.rfc952, got, tt.want)
			}
		})
	}
}

func TestMesosDomainFrag(t *testing.T) {
	tests := []struct {
		in, want1123, want952 string
	}{
		{"", "", ""},
		{"..", "", ""},
		{"a..c.", "a.c", "a.c"},
		{"marathon", "marathon", "marathon"},
		{"foo bar-2.0.1", "foobar-2.0.1", "foobar-2"},
		{"pod_123$abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.dev.mesos"},
		{"(@ host . com", "host.com", "host.com"},
		{"MiXeDcase.CoM", "mixedcase.com", "mixedcase.com"},
		{"chronos with a space AND MIXED CASE-2.0.1", "chronoswithaspaceandmixedcase-2.0.1", "chronoswithaspaceandmixe"},
	}
	for _, tt := range tests {
		if got := mesosDomainFrag(tt.in, false); got != tt.want1123 {
			t.Errorf("mesosDomainFrag(%q, RFC 1123) = %q, want %q", tt.in, got, tt.want1123)
		}
		if got := mesosDomainFrag(tt.in, true); got != tt.want952 {
			t.Errorf("mesosDomainFrag(%q, RFC 952) = %q, want %q", tt.in, got, tt.want952)
		}
	}
}

// TestTaskHash checks the canonical hash against the names mesos-dns's own
// tests expect for the tasks of its factories/fake.json
// (records/generator_test.go: "liquor-store-4dfjd-0", "car-store-zinaz-0").
func TestTaskHash(t *testing.T) {
	tests := []struct{ id, want string }{
		{"liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5", "4dfjd"},
		{"liquor-store.b71166c1-562f-11e4-a088-c20493233aa5", "zasmd"},
		{"car-store.43758382-562f-11e4-a088-c20493233aa5", "zinaz"},
	}
	for _, tt := range tests {
		if got := string(appendTaskHash(nil, tt.id)); got != tt.want {
			t.Errorf("hash(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestAgentTail(t *testing.T) {
	tests := []struct{ id, want string }{
		{"20140827-000744-3041283850-5050-22132-S76044", "s76044"},
		{"20160107-001256-134875658-5050-27524-S0", "s0"},
		{"no dash", "no dash"},
		{"", ""},
		{"ends-with-", ""},
	}
	for _, tt := range tests {
		if got := string(appendAgentTail([]byte("x"), tt.id)); got != "x"+tt.want {
			t.Errorf("agent tail of %q = %q, want %q", tt.id, got[1:], tt.want)
		}
	}
}

// upstreamLabel transcribes mesos-dns's labels.label and trimCut literally.
func upstreamLabel(name string, rfc952 bool) string {
	maxLen, left := 63, "-"
	if rfc952 {
		maxLen, left = 24, "-0123456789"
	}
	mapped := bytes.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r - ('A' - 'a')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == '-' || r == '.' || r == '_':
			return '-'
		}
		return -1
	}, []byte(name))
	trim := bytes.TrimLeft(mapped, left)
	size := min(len(trim), maxLen)
	head := bytes.TrimRight(trim[:size], "-")
	if len(head) == size {
		return string(head)
	}
	tail := bytes.TrimLeft(trim[size:], "-")
	return string(append(head, tail[:min(len(tail), size-len(head))]...))
}

func FuzzMesosLabel(f *testing.F) {
	for _, s := range []string{"", "-", "a.b", "4abc", "hello" + strings.Repeat("-", 58) + "f", "Ünïcode_Name", "\xff\xfe-x", strings.Repeat("ab-", 40)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, rfc952 bool) {
		got := mesosLabel(s, rfc952)
		if want := upstreamLabel(s, rfc952); got != want {
			t.Fatalf("mesosLabel(%q, %v) = %q, upstream gives %q", s, rfc952, got, want)
		}
		maxLen := 63
		if rfc952 {
			maxLen = 24
		}
		if len(got) > maxLen {
			t.Fatalf("mesosLabel(%q) = %q: %d octets", s, got, len(got))
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; !isAlnum(c) && c != '-' {
				t.Fatalf("mesosLabel(%q) = %q holds %q", s, got, c)
			}
		}
		if got != "" && (got[0] == '-' || rfc952 && '0' <= got[0] && got[0] <= '9') {
			t.Fatalf("mesosLabel(%q) = %q starts badly", s, got)
		}
		if got != "" && got[len(got)-1] != '-' {
			if again := mesosLabel(got, rfc952); again != got {
				t.Fatalf("mesosLabel(%q) = %q, but of that %q", s, got, again)
			}
		}
	})
}

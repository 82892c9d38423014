package discovery

// DNS name normalisation of VIP and framework names, as DC/OS does it
// (NormaliseLabel, NormaliseName).

import "strings"

// maxLabel is the longest DNS label in octets (RFC 1035 section 2.3.4).
const maxLabel = 63

// NormaliseLabel turns one fragment of a VIP or framework name into a DNS
// label the way DC/OS does (dcos/mesos_state: src/mesos_state.erl, label/1):
// ASCII letters are lower-cased; characters outside [a-z0-9] are dropped
// until the first letter or digit; after it '-', '_' and '.' become '-' and
// every other character outside [a-z0-9] (including '/', ':' and non-ASCII
// bytes) is dropped; trailing '-' are trimmed.
//
// Labels are cut to 63 octets with upstream's quirk: when the label reaches
// 63 octets and input remains, trailing '-' are trimmed and the label is
// refilled with letters and digits only. The result is empty when s holds
// no letter or digit.
func NormaliseLabel(s string) string {
	if isLabel(s) {
		return s
	}
	var buf [maxLabel]byte
	n := 0
	started, full := false, false
	for i := 0; i < len(s); i++ {
		c := lower(s[i])
		alnum := isAlnum(c)
		if !started {
			if !alnum {
				continue
			}
			started = true
		}
		if !full && n == maxLabel {
			n = trimDashes(buf[:n])
			full = true
		}
		if n == maxLabel {
			break
		}
		switch {
		case alnum:
			buf[n] = c
			n++
		case !full && (c == '-' || c == '_' || c == '.'):
			buf[n] = '-'
			n++
		}
	}
	return string(buf[:trimDashes(buf[:n])])
}

// NormaliseName turns a dotted VIP or framework name into DNS labels: it
// splits s on '.', normalises each fragment with NormaliseLabel and joins the
// non-empty results with '.'. So "/mygroup/myapp" becomes "mygroupmyapp" and
// "/api.hello-world" becomes "api.hello-world".
//
// Unlike upstream (mesos_state:domain_frag/1, which drops empty fragments
// before normalising them), fragments that normalise to nothing are dropped
// too, so the result never holds an empty label: "a./.b" is "a.b".
func NormaliseName(s string) string {
	if isName(s) {
		return s
	}
	var b strings.Builder
	for frag := range strings.SplitSeq(s, ".") {
		l := NormaliseLabel(frag)
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	return b.String()
}

// isLabel reports whether s is already a normalised label: the fast path
// for the common case ("marathon", "web").
func isLabel(s string) bool {
	if s == "" || len(s) > maxLabel || !isAlnum(s[0]) || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// isName reports whether s is already a normalised name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// trimDashes returns the length of b without its trailing '-'.
func trimDashes(b []byte) int {
	n := len(b)
	for n > 0 && b[n-1] == '-' {
		n--
	}
	return n
}

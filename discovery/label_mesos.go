package discovery

// mesos-dns's label rules (records/labels/labels.go at v0.7.0-rc2): the
// RFC 1123 and RFC 952 label functions, DomainFrag for framework names, and
// the parts of a canonical task name: the task ID's hash and the agent tail.

import (
	"crypto/sha1"
	"strings"
)

// mesosLabel is mesos-dns's label function (labels.RFC1123, or labels.RFC952
// when rfc952): ASCII letters are lower-cased, '-', '.' and '_' become '-',
// every other byte is dropped (a non-ASCII character is dropped whole);
// then leading '-' (RFC 952: leading '-' and digits) are trimmed, the label
// is cut at 63 octets (RFC 952: 24) and trailing '-' are trimmed.
//
// Upstream's cut has a quirk kept here (trimCut): when trimming the cut
// label's trailing '-' shortens it, it is refilled from the rest of the
// input, itself without leading '-', up to the cut length; so
// "hello" + 58×'-' + "f" gives "hellof", and a refilled label may end in '-'.
func mesosLabel(s string, rfc952 bool) string {
	maxLen := 63
	if rfc952 {
		maxLen = 24
	}
	if isMesosLabel(s, maxLen, rfc952) {
		return s
	}
	// mapped is s after mapping, leading cutset trimmed.
	var arr [128]byte
	mapped := arr[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_':
			c = '-'
		default:
			continue
		}
		if len(mapped) == 0 && (c == '-' || rfc952 && '0' <= c && c <= '9') {
			continue
		}
		mapped = append(mapped, c)
	}
	size := min(len(mapped), maxLen)
	head := trimDashes(mapped[:size])
	if head == size {
		return string(mapped[:size])
	}
	tail := mapped[size:]
	for len(tail) > 0 && tail[0] == '-' {
		tail = tail[1:]
	}
	out := make([]byte, head, size)
	copy(out, mapped[:head])
	out = append(out, tail[:min(len(tail), size-head)]...)
	return string(out)
}

// isMesosLabel reports whether mesosLabel(s) is s: the fast path for the
// common case.
func isMesosLabel(s string, maxLen int, rfc952 bool) bool {
	if s == "" || len(s) > maxLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	if rfc952 && '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// mesosDomainFrag is mesos-dns's labels.DomainFrag: name split on '.', each
// part made a label, the non-empty ones joined with '.'. A framework name
// "foo bar-2.0.1" is "foobar-2.0.1", three labels.
func mesosDomainFrag(name string, rfc952 bool) string {
	if isMesosDomainFrag(name, rfc952) {
		return name
	}
	var b strings.Builder
	for part := range strings.SplitSeq(name, ".") {
		l := mesosLabel(part, rfc952)
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

func isMesosDomainFrag(name string, rfc952 bool) bool {
	maxLen := 63
	if rfc952 {
		maxLen = 24
	}
	for part := range strings.SplitSeq(name, ".") {
		if !isMesosLabel(part, maxLen, rfc952) {
			return false
		}
	}
	return true
}

// zbase32Alphabet is z-base-32's alphabet
// (http://philzimmermann.com/docs/human-oriented-base-32-encoding.txt), as
// github.com/tv42/zbase32 has it; bits are taken most significant first.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// taskHashLen is how many characters of the hash a canonical name holds.
const taskHashLen = 5

// appendTaskHash appends mesos-dns's hash of a task ID (hashString): the
// first 5 characters of zbase32(sha1(id)), that is its first 25 bits.
// The ID is hashed from dst's spare room, so no []byte is allocated for it.
func appendTaskHash(dst []byte, taskID string) []byte {
	n := len(dst)
	dst = append(dst, taskID...)
	sum := sha1.Sum(dst[n:])
	dst = dst[:n]
	bits := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	for i := range taskHashLen {
		dst = append(dst, zbase32Alphabet[bits>>(27-5*i)&31])
	}
	return dst
}

// appendAgentTail appends mesos-dns's slaveIDTail: the last '-'-separated
// field of the agent ID, ASCII lower-cased ("…-S76044" → "s76044").
func appendAgentTail(dst []byte, agentID string) []byte {
	tail := agentID[strings.LastIndexByte(agentID, '-')+1:]
	for i := 0; i < len(tail); i++ {
		dst = append(dst, lower(tail[i]))
	}
	return dst
}

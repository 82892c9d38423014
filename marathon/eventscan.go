package marathon

import (
	"bytes"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/vipbridge/vipbridge/discovery"
)

// eventScanner is the fast path of the hot event decoders
// (status_update_event, instance_changed_event and the health events): a
// scanner for one flat JSON object whose fields are plain strings, booleans,
// the ports integer array and the ipAddresses array of objects.
//
// It reports false, and the caller falls back to encoding/json, for anything
// it does not decode exactly as encoding/json would: any escape in a kept
// string or in a key, a key that is not ASCII or matches a field only
// case-insensitively, a duplicate field, a value of another type, a number
// in ports that is not a plain integer of at most 18 digits, invalid JSON,
// trailing data, deep nesting in skipped values. So it never decides on an
// error itself: when it succeeds the input is valid JSON and the result is
// what json.Unmarshal gives; when it fails encoding/json decides.
type eventScanner struct {
	b []byte
	i int
}

// maxSkipDepth bounds the nesting of skipped values; deeper ones go to
// encoding/json (which has its own, larger, limit).
const maxSkipDepth = 64

// ws skips JSON whitespace.
func (s *eventScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *eventScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// list reads the members of an object or the elements of an array, whose
// opening bracket was read, through close: each reads one, and commas
// separate them.
func (s *eventScanner) list(close byte, each func() bool) bool {
	if s.peek() == close {
		s.i++
		return true
	}
	for {
		if !each() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case close:
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads an array, each reading one element, or null.
func (s *eventScanner) array(each func() bool) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '[':
		s.i++
		return s.list(']', each)
	}
	return false
}

// end reports whether only whitespace is left.
func (s *eventScanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// plainString reads the string at s.i when it has no escapes and no
// control characters, and returns its contents and whether all its bytes
// are ASCII.
func (s *eventScanner) plainString() (v []byte, ascii, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	ascii = true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], ascii, true
		case c == '\\' || c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

// literal consumes lit at s.i.
func (s *eventScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// str reads a string field as bytes does, into a string.
func (s *eventScanner) str(dst *string) bool {
	var v []byte
	if !s.bytes(&v) {
		return false
	}
	if v != nil {
		*dst = string(v)
	}
	return true
}

// boolPtr reads a *bool field: null sets it to nil, true and false point
// it at *val.
func (s *eventScanner) boolPtr(dst **bool, val *bool) bool {
	switch s.peek() {
	case 'n':
		*dst = nil
		return s.literal("null")
	case 't':
		*val = true
	case 'f':
		*val = false
	default:
		return false
	}
	*dst = val
	if *val {
		return s.literal("true")
	}
	return s.literal("false")
}

// integer reads a JSON number that is a plain integer of at most 18 digits
// (so it fits an int on 64-bit platforms and in int64 everywhere).
func (s *eventScanner) integer() (int64, bool) {
	j := s.i
	neg := false
	if j < len(s.b) && s.b[j] == '-' {
		neg = true
		j++
	}
	start := j
	var n int64
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if j < len(s.b) {
		switch s.b[j] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}

// bytes reads a string field as the bytes of the event (never nil for a
// string, even an empty one): null leaves *dst as it is, like
// encoding/json. Strings that are not valid UTF-8 are left to encoding/json
// (which replaces the bad bytes).
func (s *eventScanner) bytes(dst *[]byte) bool {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '"':
		v, ascii, ok := s.plainString()
		if !ok || !ascii && !utf8.Valid(v) {
			return false
		}
		if v == nil {
			v = []byte{}
		}
		*dst = v
		return true
	}
	return false
}

// hostPorts reads the ports field ([]int for encoding/json) as
// portNumber of each: null or [] give nil.
func (s *eventScanner) hostPorts(dst *[]uint16) bool {
	var out []uint16
	ok := s.array(func() bool {
		s.ws()
		n, ok := s.integer()
		if !ok || int64(int(n)) != n {
			return false
		}
		out = append(out, portNumber(int(n)))
		return true
	})
	*dst = out
	return ok
}

// taskIPFields are the fields of an element of ipAddresses.
var taskIPFields = [...]string{"ipAddress"}

// taskIPs reads the ipAddresses field, keeping the addresses parseIP
// takes: null or [] give nil; null elements go to encoding/json.
func (s *eventScanner) taskIPs(dst *[]netip.Addr) bool {
	var out []netip.Addr
	ok := s.array(func() bool {
		var ip []byte
		if !s.object(taskIPFields[:], func(int) bool { return s.bytes(&ip) }) {
			return false
		}
		if a, ok := parseIP(string(ip)); ok {
			out = append(out, a)
		}
		return true
	})
	*dst = out
	return ok
}

// object reads an object whose known fields are named by fields (at most
// 32): field calls read the value of fields[i], other values are skipped.
func (s *eventScanner) object(fields []string, field func(i int) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	var seen uint32
	return s.list('}', func() bool {
		s.ws()
		key, ascii, ok := s.plainString()
		if !ok || !ascii || s.peek() != ':' {
			return false
		}
		s.i++
		switch i := fieldIndex(key, fields); {
		case i == foldedField:
			return false
		case i >= 0:
			if seen&(1<<i) != 0 {
				return false
			}
			seen |= 1 << i
			return field(i)
		default:
			return s.skip(0)
		}
	})
}

const (
	unknownField = -1
	foldedField  = -2
)

// fieldIndex returns the index of key in fields, unknownField, or
// foldedField when key matches a field only case-insensitively or with
// '-' or '_' ignored (as encoding/json may match it, depending on version).
func fieldIndex(key []byte, fields []string) int {
	for i, f := range fields {
		if string(key) == f {
			return i
		}
	}
	for _, f := range fields {
		if looseEqual(key, f) {
			return foldedField
		}
	}
	return unknownField
}

// looseEqual compares the ASCII key to the ASCII field name ignoring case
// and the key's '-' and '_'.
func looseEqual(key []byte, name string) bool {
	j := 0
	for _, c := range key {
		if c == '-' || c == '_' {
			continue
		}
		if j == len(name) || lowerASCII(c) != lowerASCII(name[j]) {
			return false
		}
		j++
	}
	return j == len(name)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// skip skips one JSON value of any type, checking its syntax.
func (s *eventScanner) skip(depth int) bool {
	switch s.peek() {
	case '"':
		return s.skipString()
	case '{':
		if depth >= maxSkipDepth {
			return false
		}
		s.i++
		return s.list('}', func() bool {
			if s.peek() != '"' || !s.skipString() || s.peek() != ':' {
				return false
			}
			s.i++
			return s.skip(depth + 1)
		})
	case '[':
		if depth >= maxSkipDepth {
			return false
		}
		s.i++
		return s.list(']', func() bool { return s.skip(depth + 1) })
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.skipNumber()
}

// skipString skips the string at s.i, checking its escapes.
func (s *eventScanner) skipString() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j == len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber skips a JSON number at s.i, checking its syntax.
func (s *eventScanner) skipNumber() bool {
	b, j := s.b, s.i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return false
		}
	}
	s.i = j
	return true
}

// frameworkTaskStateBytes is FrameworkTaskState of string(s), without
// copying s for the usual upper-case names.
func frameworkTaskStateBytes(s []byte) discovery.TaskState {
	if st, ok := taskStates[string(s)]; ok {
		return st
	}
	return FrameworkTaskState(string(s))
}

// parseTimeBytes is parseTime(string(b)): Marathon's timestamps
// ("2006-01-02T15:04:05.000Z", also without the fraction) are read
// directly, anything else by time.Parse.
func parseTimeBytes(b []byte) time.Time {
	if len(b) != len("2006-01-02T15:04:05Z") && len(b) != len("2006-01-02T15:04:05.000Z") ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return parseTime(string(b))
	}
	num := func(i, j int) int {
		n := 0
		for _, c := range b[i:j] {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	nsec := 0
	if len(b) > 20 {
		if b[19] != '.' {
			return parseTime(string(b))
		}
		nsec = num(20, 23) * 1e6
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 || nsec < 0 {
		return parseTime(string(b))
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
}

// daysIn returns the number of days of month m of year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

package marathontest

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// The Marathon payloads (apps, tasks, events) are appended to a byte
// slice by hand rather than built as maps for encoding/json: the bytes are
// the same, with a fraction of the CPU and no per-field allocation, which
// matters at 10,000 apps / 100,000 tasks. Each object's keys are written
// in the order encoding/json writes map keys (sorted bytewise), so the
// output is what the map-based rendering gave (render_test.go checks that
// against the old builders, kept there as the reference).

// plainJSON marks the bytes a string may hold to be written between quotes
// unchanged by encoding/json (HTML-escaping, as json.Marshal): printable
// ASCII except '"', '\\', '<', '>' and '&'.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendString appends s as a JSON string exactly as json.Marshal writes
// it: strings with anything to escape go through json.Marshal.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			q, err := json.Marshal(s)
			if err != nil { // a string always marshals
				q = []byte(`""`)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

func appendUint16(b []byte, n uint16) []byte { return strconv.AppendUint(b, uint64(n), 10) }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// appendUint16s appends ports as a JSON array of numbers.
func appendUint16s(b []byte, ports []uint16) []byte {
	b = append(b, '[')
	for i, p := range ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint16(b, p)
	}
	return append(b, ']')
}

// appendTime appends t as the JSON string marathonTime gives.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return appendString(b, marathonTime(t))
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	b = append(b, '"')
	b = append2(b, year/100)
	b = append2(b, year%100)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.', byte('0'+ms/100))
	b = append2(b, ms%100)
	return append(b, 'Z', '"')
}

// appendOptTime appends t, or null for the zero time (optTime).
func appendOptTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	return appendTime(b, t)
}

// append2 appends 0 ≤ n < 100 as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// appendAddr appends ip as the JSON string of ip.String().
func appendAddr(b []byte, ip netip.Addr) []byte {
	if !ip.IsValid() || ip.Zone() != "" {
		return appendString(b, ip.String())
	}
	b = append(b, '"')
	b = ip.AppendTo(b)
	return append(b, '"')
}

// appendIPAddresses appends Marathon's ipAddresses list:
// [{"ipAddress":"127.1.0.1","protocol":"IPv4"}].
func appendIPAddresses(b []byte, ips []netip.Addr) []byte {
	b = append(b, '[')
	for i, ip := range ips {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ipAddress":`...)
		b = appendAddr(b, ip)
		if ip.Is6() {
			b = append(b, `,"protocol":"IPv6"}`...)
		} else {
			b = append(b, `,"protocol":"IPv4"}`...)
		}
	}
	return append(b, ']')
}

// appendLabels appends labels as a JSON object, keys sorted as
// encoding/json sorts map keys.
func appendLabels(b []byte, labels map[string]string) []byte {
	b = append(b, '{')
	switch len(labels) {
	case 0:
	case 1:
		for k, v := range labels {
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
		}
	default:
		for i, k := range slices.Sorted(maps.Keys(labels)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, labels[k])
		}
	}
	return append(b, '}')
}

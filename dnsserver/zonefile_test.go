package dnsserver

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestWriteZone parses the zone file back and checks that every RRset in
// it is exactly what the server answers for that name and type.
func TestWriteZone(t *testing.T) {
	tbl := testTable(t)
	s := newTestServer(t, tbl)
	for _, zone := range []string{"l4lb.thisdcos.directory", dclb} {
		t.Run(zone, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteZone(&buf, tbl, 0, zone); err != nil {
				t.Fatal(err)
			}
			sets := map[dns.Question][]string{}
			zp := dns.NewZoneParser(&buf, "", "")
			for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
				h := rr.Header()
				q := dns.Question{Name: h.Name, Qtype: h.Rrtype, Qclass: dns.ClassINET}
				sets[q] = append(sets[q], rr.String())
			}
			if err := zp.Err(); err != nil {
				t.Fatalf("parse zone: %v\n%s", err, buf.String())
			}
			if len(sets) < 2*tbl.Names() {
				t.Errorf("%d RRsets for %d names", len(sets), tbl.Names())
			}
			for q, want := range sets {
				req := new(dns.Msg)
				req.SetQuestion(q.Name, q.Qtype)
				var got []string
				for _, rr := range s.Answer(req).Answer {
					got = append(got, rr.String())
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s:\nzone: %s\ndns:  %s", q.Name, dns.TypeToString[q.Qtype],
						strings.Join(want, "\n      "), strings.Join(got, "\n      "))
				}
			}
		})
	}
}

package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestV1Zone(t *testing.T) {
	srv, f := newTestServer(t, Config{})
	resp, body := do(t, srv, http.MethodGet, "/v1/zone")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/dns" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.HasPrefix(string(body), "$ORIGIN "+DefaultZone+".\n$TTL 5\n") {
		t.Errorf("zone starts %q", body[:min(len(body), 60)])
	}
	zp := dns.NewZoneParser(bytes.NewReader(body), "", "")
	var a int
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeA {
			a++
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	if want := f.t.Names(); a == 0 || a > want {
		t.Errorf("%d A records for %d names", a, want)
	}
}

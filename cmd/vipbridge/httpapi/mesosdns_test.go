package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

func TestAXFR(t *testing.T) {
	// The golden file shows the SOA taken without DNS (mesos-dns's); with
	// the real DNS server it is the one DNS serves, with these names.
	srv := newTaskServer(t, Config{MesosDomain: "mesos", MesosRefresh: 30e9, Resolver: refusing{}})
	checkGolden(t, "v1_axfr", getJSON(t, srv, "/v1/axfr", &axfrDoc{}))
	srv = newTaskServer(t, Config{MesosDomain: "mesos", MesosRefresh: 30e9})
	var doc axfrDoc
	body := getJSON(t, srv, "/v1/axfr", &doc)
	if doc.TTL != 60 || doc.RefreshSeconds != 30 || doc.Domain != "mesos" || doc.Mname != "ns1.mesos." || doc.Rname != "root.ns1.mesos." {
		t.Errorf("GET /v1/axfr header = %d %d %q %q %q, want 60 30 mesos ns1.mesos. root.ns1.mesos.",
			doc.TTL, doc.RefreshSeconds, doc.Domain, doc.Mname, doc.Rname)
	}
	if got, want := doc.Records.As["web.marathon.mesos."], []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(got, want) {
		t.Errorf("As[web.marathon.mesos.] = %q, want %q", got, want)
	}
	if got, want := doc.Records.AAAAs["hello-0-server.hello-world.mesos."], []string{"fd01:b::2:8000:0:2"}; !slices.Equal(got, want) {
		t.Errorf("AAAAs[hello-0-server.hello-world.mesos.] = %q, want %q", got, want)
	}
	if got, want := doc.Records.SRVs["_leader._tcp.mesos."], []string{"leader.mesos.:5050"}; !slices.Equal(got, want) {
		t.Errorf("SRVs[_leader._tcp.mesos.] = %q, want %q", got, want)
	}
	// mesos-dns lists canonical names over 63 octets too (UPSTREAM.md §3.5).
	if _, ok := doc.Records.As[longCanon+".marathon.mesos."]; !ok {
		t.Errorf("As lacks the long canonical name %s", longCanon)
	}
	for name := range doc.Records.As {
		if strings.Contains(name, "thisdcos") {
			t.Errorf("As holds %s, not a mesos zone name", name)
		}
	}
	checkDCOSDNSDecodes(t, body)

	srv = newTaskServer(t, Config{})
	if resp, body := do(t, srv, http.MethodGet, "/v1/axfr"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/axfr without a mesos domain = %d %s, want 404", resp.StatusCode, body)
	}
}

// TestAXFREmpty: with no records every map is {} (dcos-dns folds over each
// without a null check), and the reply still decodes as dcos-dns does.
func TestAXFREmpty(t *testing.T) {
	for _, tbl := range []*discovery.Table{nil, {}} {
		srv, _ := newTestServer(t, Config{Tables: &fakeTables{t: tbl}, MesosDomain: "mesos"})
		resp, body := do(t, srv, http.MethodGet, "/v1/axfr")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/axfr = %d %s", resp.StatusCode, body)
		}
		if !strings.Contains(string(body), `"As": {}`) || !strings.Contains(string(body), `"AAAAs": {}`) || !strings.Contains(string(body), `"SRVs": {}`) {
			t.Errorf("GET /v1/axfr of an empty table lacks an empty map:\n%s", body)
		}
		checkDCOSDNSDecodes(t, body)
	}
}

// TestAXFRShapeMatchesMesosDNS compares our /v1/axfr with a real mesos-dns
// reply (dcos-net's test data, the one dcos-dns's tests decode): the same
// fields with the same JSON types, and values in the same formats.
func TestAXFRShapeMatchesMesosDNS(t *testing.T) {
	real := upstreamtest.File(t, "dcos-dcos-net/apps/dcos_dns/test/axfr.json")
	srv := newTaskServer(t, Config{MesosDomain: "mesos"})
	_, ours := do(t, srv, http.MethodGet, "/v1/axfr")
	realShape, ourShape := jsonShape(t, real), jsonShape(t, ours)
	if !slices.Equal(realShape, ourShape) {
		t.Errorf("shape of /v1/axfr differs from mesos-dns's:\nmesos-dns: %q\nvipbridge: %q", realShape, ourShape)
	}
	checkDCOSDNSDecodes(t, real) // the checker itself accepts the real one
}

// jsonShape describes a JSON document as sorted "path: type" lines; map
// keys below Records.* are record names, so they are collapsed to "*".
func jsonShape(tb testing.TB, doc []byte) []string {
	tb.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	seen := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			seen[path+": object"] = true
			for k, e := range v {
				if strings.Count(path, ".") == 2 { // .Records.As
					k = "*"
				}
				walk(path+"."+k, e)
			}
		case []any:
			seen[path+": array"] = true
			for _, e := range v {
				walk(path+"[]", e)
			}
		default:
			seen[fmt.Sprintf("%s: %T", path, v)] = true
		}
	}
	walk("", v)
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// srvValue is the format of an SRV value of /v1/axfr: "<target>.:<port>".
var srvValue = regexp.MustCompile(`^[^:]+\.:[0-9]+$`)

// checkDCOSDNSDecodes decodes body as dcos-dns does
// (dcos/dcos-net apps/dcos_dns/src/dcos_dns_mesos_dns.erl handle_data):
// each record map folded (so it must be an object), every name ends in
// "<Domain>." (dname/2 cuts that many octets), IPs parse strictly
// (inet:parse_strict_address), SRV values split at the first ':' into a
// name in the domain and an integer port.
func checkDCOSDNSDecodes(tb testing.TB, body []byte) {
	tb.Helper()
	var doc struct {
		Domain  string
		Records map[string]map[string][]string
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		tb.Fatalf("decode as dcos-dns: %v", err)
	}
	suffix := "." + doc.Domain + "."
	inDomain := func(name string) bool { return strings.HasSuffix(name, suffix) || name == doc.Domain+"." }
	for _, kind := range []string{"As", "AAAAs", "SRVs"} {
		m, ok := doc.Records[kind]
		if !ok || m == nil {
			tb.Errorf("Records.%s is missing or null", kind)
		}
		for name, values := range m {
			if !inDomain(name) {
				tb.Errorf("Records.%s: %q is not in domain %q", kind, name, doc.Domain)
			}
			for _, v := range values {
				switch kind {
				case "As", "AAAAs":
					if a, err := netip.ParseAddr(v); err != nil || a.Is4() != (kind == "As") || a.Zone() != "" {
						tb.Errorf("Records.%s[%s]: %q is not a plain %s address", kind, name, v, kind)
					}
				case "SRVs":
					host, port, _ := strings.Cut(v, ":")
					if _, err := strconv.Atoi(port); err != nil || !inDomain(host) || !srvValue.MatchString(v) {
						tb.Errorf("Records.SRVs[%s]: %q is not <name in domain>.:<port>", name, v)
					}
				}
			}
		}
	}
}

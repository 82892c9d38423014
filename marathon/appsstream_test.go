package marathon

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

// decodeAppsWhole is DecodeApps as it was before it streamed: the whole
// body unmarshalled into struct{ Apps []appJSON }, then converted. It is
// the reference the streaming decoder is held to.
func decodeAppsWhole(data []byte, resolve func(string) netip.Addr) ([]discovery.App, error) {
	var body struct {
		Apps []appJSON `json:"apps"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&body); err != nil {
		return nil, err
	}
	apps := make([]discovery.App, 0, len(body.Apps))
	for i := range body.Apps {
		app, err := body.Apps[i].toApp(resolve)
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
	}
	return apps, nil
}

// appsKeys counts the top-level keys of an object body that name "apps".
// With more than one, the whole-body decoder merges the arrays element by
// element and converts only the result, while DecodeApps converts each
// array and keeps the last, so an invalid app in an earlier array fails
// only DecodeApps. Marathon writes the key once; such bodies are not
// compared.
func appsKeys(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if key, _ := tok.(string); strings.EqualFold(key, "apps") {
			n++
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return n
		}
	}
	return n
}

// checkStreamed asserts that DecodeApps agrees with decodeAppsWhole on data.
func checkStreamed(t *testing.T, data []byte) {
	t.Helper()
	if appsKeys(data) > 1 {
		return
	}
	got, err := DecodeApps(bytes.NewReader(data), fakeResolve)
	want, wantErr := decodeAppsWhole(data, fakeResolve)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("DecodeApps(%q): err = %v, whole-body decoding: %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeApps(%q) = %+v, whole-body decoding: %+v", data, got, want)
	}
}

var streamedCases = []struct{ name, body string }{
	{"empty body", ``},
	{"null body", `null`},
	{"empty object", `{}`},
	{"null apps", `{"apps":null}`},
	{"empty apps", `{"apps":[]}`},
	{"other keys around", `{"x":{"apps":[1]},"apps":[{"id":"/a","tasks":[{"id":"t","host":"10.0.0.1","ports":[31000]}]}],"y":[{}]}`},
	{"key case", `{"APPS":[{"id":"/a"}]}`},
	{"trailing data", `{"apps":[{"id":"/a"}]} garbage`},
	{"duplicate key", `{"apps":[{"id":"/a","version":"1"},{"id":"/b"}],"apps":[{"id":"/c"}]}`},
	{"duplicate key, first invalid", `{"Apps":[{}],"Apps":[]}`},
	{"app without id", `{"apps":[{"id":"/a"},{"id":""}]}`},
	{"null app", `{"apps":[null]}`},
	{"truncated", `{"apps":[{"id":"/a"}`},
	{"truncated after apps", `{"apps":[{"id":"/a"}]`},
	{"truncated in key", `{"ap`},
	{"array body", `[{"id":"/a"}]`},
	{"string body", `"apps"`},
	{"apps object", `{"apps":{"id":"/a"}}`},
	{"apps number", `{"apps":1}`},
	{"wrong type in app", `{"apps":[{"id":"/a","ports":"x"}]}`},
	{"wrong close", `{"apps":[{"id":"/a"}}}`},
	{"missing comma", `{"apps":[{"id":"/a"} {"id":"/b"}]}`},
}

func TestDecodeAppsStreamed(t *testing.T) {
	for _, tt := range streamedCases {
		t.Run(tt.name, func(t *testing.T) { checkStreamed(t, []byte(tt.body)) })
	}
}

func FuzzDecodeAppsStreamed(f *testing.F) {
	for _, tt := range streamedCases {
		f.Add([]byte(tt.body))
	}
	f.Add([]byte(`{"apps":[{"id":"/a","networks":[{"mode":"container","name":"n"}],"container":{"portMappings":[{"containerPort":80,"hostPort":0}]},"labels":{"VIP_PORT3":"udp://1.2.3.4:53"},"tasks":[{"id":"t","host":"agent-1","ports":[1],"ipAddresses":[{"ipAddress":"::ffff:1.2.3.4"}]}]}]}`))
	addUpstreamSeeds(f, func(data []byte) { f.Add(data) },
		"mesosphere-marathon-lb/tests/*.json", "allegro-marathon-consul/apps/testdata/apps.json")
	f.Fuzz(checkStreamed)
}

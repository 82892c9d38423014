package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/cmd/vipbridge/httpapi"
	"github.com/vipbridge/vipbridge/discovery"
)

// apiTables serves one table to the HTTP API.
type apiTables struct{ t *discovery.Table }

func (a apiTables) Table() *discovery.Table  { return a.t }
func (a apiTables) Status() discovery.Status { return discovery.Status{Loaded: true} }

// serveAPI serves the HTTP API over a table with one mesos zone name and
// one dcos zone name on loopback, and returns its host:port.
func serveAPI(t *testing.T, cfg httpapi.Config) string {
	t.Helper()
	ip := netip.MustParseAddr("10.0.0.1")
	tbl := discovery.NewTable(nil, nil, nil).WithRecords([]*discovery.TaskRecords{{
		Framework: "marathon", Name: "web", ID: "web.1", Records: []discovery.ZoneRecord{
			{Zone: discovery.ZoneMesos, Type: discovery.TypeA, Name: "web.marathon", Addr: ip},
			{Zone: discovery.ZoneDCOS, Type: discovery.TypeA, Name: "web.marathon.autoip", Addr: ip},
		},
	}}, nil)
	cfg.Tables = apiTables{tbl}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestRunZoneSelectsZone(t *testing.T) {
	addr := serveAPI(t, httpapi.Config{MesosDomain: "mesos"})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "default", args: nil, want: []string{"$ORIGIN l4lb.thisdcos.directory.\n"}},
		{name: "mesos", args: []string{"--zone", "mesos"}, want: []string{"$ORIGIN mesos.\n$TTL 60\n", "web.marathon\tIN\tA\t10.0.0.1\n"}},
		{name: "dcos", args: []string{"--zone", "dcos.thisdcos.directory."}, want: []string{"$ORIGIN dcos.thisdcos.directory.\n", "web.marathon.autoip\tIN\tA\t10.0.0.1\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runZone(context.Background(), append([]string{"--http-addr", addr}, tt.args...), &out, io.Discard); err != nil {
				t.Fatalf("runZone(%q): %v", tt.args, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("runZone(%q) printed no %q:\n%s", tt.args, w, out.String())
				}
			}
		})
	}
	err := runZone(context.Background(), []string{"--http-addr", addr, "--zone", "example.org"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("runZone --zone example.org = %v, want a 404 error", err)
	}
}

// TestV1ConfigHidesSecrets parses a configuration holding every kind of
// secret the flags take and checks that /v1/config shows none of them.
func TestV1ConfigHidesSecrets(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("TOKEN-CONTENTS-s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig("run", []string{
		"--marathon", "https://muser:mpass@marathon.example:8443,http://leader.example:8080",
		"--mesos", "http://mesosuser:mesospass@master.example:5050",
		"--marathon-credentials", "basicuser:basicpass",
		"--marathon-token-file", tokenFile,
	}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAPI(t, httpapi.Config{Settings: cfg})
	resp, err := http.Get("http://" + addr + "/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"muser", "mpass", "mesosuser", "mesospass", "basicuser", "basicpass", "TOKEN-CONTENTS", "s3cr3t"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET /v1/config shows %q:\n%s", secret, body)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET /v1/config is not a JSON object: %v\n%s", err, body)
	}
	for key, want := range map[string]any{
		"Marathon":     []any{"https://marathon.example:8443", "http://leader.example:8080"},
		"Mesos":        []any{"http://master.example:5050"},
		"MarathonUser": "<redacted>",
		"TokenFile":    tokenFile,
		"TTL":          "5s",
		"MesosDomain":  "mesos",
		"MesosTTL":     "1m0s",
		"VIPRange":     "11.0.0.0/8",
	} {
		got, _ := json.Marshal(doc[key])
		w, _ := json.Marshal(want)
		if !bytes.Equal(got, w) {
			t.Errorf("GET /v1/config %s = %s, want %s", key, got, w)
		}
	}
}

package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestV1Config(t *testing.T) {
	type nested struct {
		APIToken string
		Endpoint string
	}
	settings := struct {
		URLs          []string
		Credentials   string
		Password      string
		KeyFile       string
		TokenFile     string
		Interval      time.Duration
		Range         netip.Prefix
		Enabled       bool
		Count         int
		Nested        nested
		Headers       map[string]string
		Hook          func() // not shown
		unexported    string
		EmptyPassword string
	}{
		URLs:        []string{"http://u1:p1@a.example/x", "b.example:80", "u2:p2@c.example"},
		Credentials: "u3:p3",
		Password:    "p4",
		KeyFile:     "/etc/key.pem",
		TokenFile:   "/run/token",
		Interval:    90 * time.Second,
		Range:       netip.MustParsePrefix("11.0.0.0/8"),
		Enabled:     true,
		Count:       3,
		Nested:      nested{APIToken: "t5", Endpoint: "https://u6:p6@d.example"},
		Headers:     map[string]string{"Authorization": "token=t7", "Accept": "json"},
		unexported:  "p8",
	}
	srv, _ := newTestServer(t, Config{Settings: settings})
	var got map[string]any
	body := getJSON(t, srv, "/v1/config", &got)
	for _, secret := range []string{"u1", "p1", "u2", "p2", "u3", "p3", "p4", "t5", "u6", "p6", "t7", "p8", "unexported", "Hook"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET /v1/config shows %q:\n%s", secret, body)
		}
	}
	for key, want := range map[string]any{
		"URLs":          []any{"http://a.example/x", "b.example:80", redacted},
		"Credentials":   redacted,
		"KeyFile":       "/etc/key.pem",
		"TokenFile":     "/run/token",
		"Interval":      "1m30s",
		"Range":         "11.0.0.0/8",
		"Enabled":       true,
		"Count":         3.0,
		"Nested":        map[string]any{"APIToken": redacted, "Endpoint": "https://d.example"},
		"Headers":       map[string]any{"Authorization": redacted, "Accept": "json"},
		"EmptyPassword": "",
	} {
		if !jsonEqual(got[key], want) {
			t.Errorf("GET /v1/config %s = %v, want %v", key, got[key], want)
		}
	}

	srv, _ = newTestServer(t, Config{})
	if _, body := do(t, srv, http.MethodGet, "/v1/config"); string(body) != "{}\n" {
		t.Errorf("GET /v1/config without settings = %q, want {}", body)
	}
}

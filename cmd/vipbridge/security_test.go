package main

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// Security defaults. Covered elsewhere:
//   - DNS never recurses and refuses names outside the served zones:
//     dnsserver/answer_test.go (TestAnswerRequestErrors: "outside the zones
//     is REFUSED" and the other REFUSED rows; TestAnswer checks RA is never
//     set); TestSecretsNotInOutput below checks both on the real binary.
//   - TLS verification is always on, with or without --ca-file, and https
//     never redirects to http: marathon/auth_test.go, TestTLS.
//   - Secrets are redacted in marathon's own logs and errors:
//     marathon/auth_test.go, TestSecretsNeverLogged.

func TestHTTPAPIDefaultsToLocalhost(t *testing.T) {
	for _, cmd := range []string{"run", "demo"} {
		c, err := parseConfig(cmd, []string{"--marathon", "http://m:8080"}, env(nil), io.Discard)
		if err != nil {
			t.Fatalf("parseConfig(%s): %v", cmd, err)
		}
		host, _, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil {
			t.Fatalf("%s: --http-addr default %q: %v", cmd, c.HTTPAddr, err)
		}
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
			t.Errorf("%s: --http-addr default = %q, want a loopback address", cmd, c.HTTPAddr)
		}
	}
}

// TestSecretsNotInOutput runs the real binary with basic auth, then with a
// token file, against a simulator requiring them, at debug level, and
// greps everything it wrote and served for the secrets. marathon.New
// refuses both at once, hence two runs. The first run also has
// credentials in a second, unreachable URL, so that connection errors
// naming URLs are logged.
func TestSecretsNotInOutput(t *testing.T) {
	const (
		user     = "user"
		password = "s3cr3t-pw"
		token    = "t0k3n-5ecr3t-eyJhbGciOiJIUzI1NiJ9"
	)
	bin := buildBinary(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opt     marathontest.Option
		args    func(sim *marathontest.Server) []string
		secrets []string
		logged  string // proves the path that could leak was taken
	}{
		{
			name: "basic auth",
			opt:  marathontest.WithBasicAuth(user + ":" + password),
			args: func(sim *marathontest.Server) []string {
				down := "http://" + user + ":" + password + "@127.0.0.1:1"
				return []string{"--marathon", down + "," + sim.URL(), "--marathon-credentials", user + ":" + password}
			},
			secrets: []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
			logged:  "127.0.0.1:1",
		},
		{
			name: "token file",
			opt:  marathontest.WithToken(token),
			args: func(sim *marathontest.Server) []string {
				return []string{"--marathon", sim.URL(), "--marathon-token-file", tokenFile}
			},
			secrets: []string{token, token[:12]},
			logged:  "event stream connected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := marathontest.LoadScenario("small")
			if err != nil {
				t.Fatal(err)
			}
			sim := marathontest.NewServer(sc, tt.opt)
			t.Cleanup(sim.Close)
			args := append([]string{"run", "--mesos", sim.MesosURL(), "--lb", "none", "--data-dir", t.TempDir(),
				"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "debug",
				// Forwarding on, to a loopback port, for clients the test is not: never an open resolver.
				"--upstream", "127.0.0.1:9", "--dns-allow", "192.0.2.0/24"}, tt.args(sim)...)
			p := startProc(t, bin, args...)
			dnsAddr, httpAddr := p.addrs(t)
			waitFor(t, "web to resolve through the authenticated simulator", func() bool {
				r, err := queryA(dnsAddr, webName)
				return err == nil && r.Rcode == dns.RcodeSuccess
			})
			checkRefusedNoRecursion(t, dnsAddr)

			var out strings.Builder
			for _, path := range []string{"/records", "/readyz", "/healthz", "/metrics", "/v1/vips", "/v1/records", "/v1/version"} {
				resp, err := http.Get("http://" + httpAddr + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out.WriteString(path + "\n" + string(body) + "\n")
			}
			p.kill()
			out.WriteString(p.logs.String())
			if !strings.Contains(p.logs.String(), "level=DEBUG") || !strings.Contains(p.logs.String(), tt.logged) {
				t.Errorf("no debug lines or no %q logged; the grep would prove little:\n%s", tt.logged, p.logs)
			}
			for _, s := range tt.secrets {
				if i := strings.Index(out.String(), s); i >= 0 {
					t.Errorf("secret %q found in output: …%s…", s, out.String()[max(0, i-200):min(out.Len(), i+len(s)+50)])
				}
			}
		})
	}
}

// checkRefusedNoRecursion asks the daemon, from a client outside
// --dns-allow, for a name outside its zones
// with RD set: REFUSED, RA clear.
func checkRefusedNoRecursion(t *testing.T, dnsAddr string) {
	t.Helper()
	r, err := queryA(dnsAddr, "example.com")
	if err != nil {
		t.Fatalf("query example.com: %v", err)
	}
	if r.Rcode != dns.RcodeRefused || r.RecursionAvailable || len(r.Answer) > 0 {
		t.Errorf("example.com: rcode %s, RA %v, %d answers; want REFUSED, no RA, no answers",
			dns.RcodeToString[r.Rcode], r.RecursionAvailable, len(r.Answer))
	}
}

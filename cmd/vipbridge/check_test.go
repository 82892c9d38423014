package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// tlsFront serves the simulator's Marathon over HTTPS on loopback (the
// simulator speaks HTTP) and returns its URL and a PEM file of its
// certificate, the CA to trust.
func tlsFront(t *testing.T, target string) (string, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the bad CA case's handshake errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, certFile(t, srv)
}

// certFile writes srv's certificate as PEM and returns the file's path.
func certFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// selfSignedCA writes a self-signed certificate of its own (httptest's
// servers all share one) as PEM and returns the file's path.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the simulator's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// checkReport runs `vipbridge check` with args (and no environment) and
// returns each item's verdicts in order, the output and the error.
func checkReport(t *testing.T, env map[string]string, args ...string) (map[string][]verdict, string, error) {
	t.Helper()
	var out bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	err := runCheck(context.Background(), args, lookup, &out, io.Discard)
	verdicts := map[string][]verdict{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		// "FAIL  marathon tls         https://...": verdict, item, detail.
		if len(l) > 26 {
			v, item := verdict(strings.TrimSpace(l[:6])), strings.TrimSpace(l[6:26])
			verdicts[item] = append(verdicts[item], v)
		}
	}
	return verdicts, out.String(), err
}

// TestCheck runs `vipbridge check` on configurations against the real
// simulator (behind basic auth, its Marathon also behind TLS) and a real
// running daemon: a passing one and one per kind of fault. Each must show
// its fault as FAIL on its item, and only there.
func TestCheck(t *testing.T) {
	const creds = "ops:s3cr3t"
	sc, err := marathontest.LoadScenario("small")
	if err != nil {
		t.Fatal(err)
	}
	sim := marathontest.NewServer(sc, marathontest.WithBasicAuth(creds))
	t.Cleanup(sim.Close)
	marathonTLS, ca := tlsFront(t, sim.URL())
	otherCA := selfSignedCA(t)
	running := startDaemonWith(t, t.TempDir(), []string{sim.URL()}, []string{sim.MesosURL()}, func(c *config) { c.MarathonUser = creds })
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// good is a passing configuration; each case changes it.
	good := func() map[string]string {
		return map[string]string{
			"--marathon": marathonTLS, "--mesos": sim.MesosURL(), "--marathon-credentials": creds, "--ca-file": ca,
			"--lb": "none", "--data-dir": filepath.Join(t.TempDir(), "state"), "--dns-addr": "127.0.0.1:0", "--http-addr": "127.0.0.1:0",
		}
	}
	tests := []struct {
		name   string
		change map[string]string
		fails  []string // the items that must FAIL, and no other
	}{
		{name: "passing", change: nil},
		{name: "wrong password", change: map[string]string{"--marathon-credentials": "ops:wrong"},
			fails: []string{"marathon credentials", "mesos credentials", "marathon apps", "mesos state"}},
		{name: "bad CA", change: map[string]string{"--ca-file": otherCA},
			fails: []string{"marathon tls", "marathon apps", "mesos state"}},
		{name: "unreachable URL", change: map[string]string{"--mesos": "http://" + closedPort(t)},
			fails: []string{"mesos reachable", "mesos state"}},
		{name: "unwritable data dir", change: map[string]string{"--data-dir": filepath.Join(notDir, "state")},
			fails: []string{"data dir"}},
		{name: "taken DNS port", change: map[string]string{"--dns-addr": running.addrs.DNS.String()},
			fails: []string{"dns port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := good()
			for k, v := range tt.change {
				flags[k] = v
			}
			var args []string
			for k, v := range flags {
				args = append(args, k, v)
			}
			verdicts, out, err := checkReport(t, nil, args...)
			t.Logf("vipbridge check:\n%s", out)
			if (err != nil) != (len(tt.fails) > 0) {
				t.Errorf("vipbridge check returned %v, want an error: %v", err, len(tt.fails) > 0)
			}
			for _, item := range []string{"marathon reachable", "marathon tls", "marathon credentials", "marathon leader",
				"mesos reachable", "mesos leader", "marathon apps", "mesos state", "dataplane", "data dir", "dns port", "http port"} {
				if len(verdicts[item]) == 0 && len(tt.fails) == 0 {
					t.Errorf("no %q line", item)
				}
			}
			for item, vs := range verdicts {
				failed := false
				for _, v := range vs {
					failed = failed || v == verdictFail
				}
				if want := slices.Contains(tt.fails, item); failed != want {
					t.Errorf("%q verdicts %v, want FAIL: %v", item, vs, want)
				}
			}
			for _, item := range tt.fails {
				if len(verdicts[item]) == 0 {
					t.Errorf("no %q line, want a FAIL", item)
				}
			}
			if strings.Contains(out, "s3cr3t") {
				t.Errorf("vipbridge check prints the password")
			}
		})
	}

	// run's environment variables configure check as they configure run;
	// a flag wins over its variable.
	t.Run("environment", func(t *testing.T) {
		env := map[string]string{}
		for k, v := range good() {
			env[envName(strings.TrimPrefix(k, "--"))] = v
		}
		env["VIPBRIDGE_MARATHON_CREDENTIALS"] = "ops:wrong"
		verdicts, out, err := checkReport(t, env, "--marathon-credentials", creds)
		t.Logf("vipbridge check:\n%s", out)
		if err != nil || !slices.Equal(verdicts["marathon credentials"], []verdict{verdictOK}) {
			t.Errorf("vipbridge check from the environment = %v, marathon credentials %v; want a pass", err, verdicts["marathon credentials"])
		}
		verdicts, _, err = checkReport(t, env)
		if err == nil || !slices.Equal(verdicts["marathon credentials"], []verdict{verdictFail}) {
			t.Errorf("vipbridge check with VIPBRIDGE_MARATHON_CREDENTIALS wrong = %v, marathon credentials %v; want a FAIL", err, verdicts["marathon credentials"])
		}
	})
}

// TestCheckEtcd: with --role node, check asks a real etcd (one member)
// and nothing of Marathon or Mesos; an endpoint where no etcd listens
// fails its item.
func TestCheckEtcd(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	t.Cleanup(ec.Close)
	base := []string{"--role", "node", "--lb", "none", "--data-dir", filepath.Join(t.TempDir(), "state"),
		"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}

	verdicts, out, err := checkReport(t, nil, append(base, "--etcd", strings.Join(ec.Endpoints(), ","))...)
	t.Logf("vipbridge check:\n%s", out)
	if err != nil {
		t.Errorf("vipbridge check against a live etcd: %v", err)
	}
	for _, item := range []string{"etcd reachable", "etcd read"} {
		if !slices.Equal(verdicts[item], []verdict{verdictOK}) {
			t.Errorf("%q verdicts %v, want one ok", item, verdicts[item])
		}
	}
	if len(verdicts["marathon reachable"])+len(verdicts["mesos state"]) > 0 {
		t.Errorf("a node's check asked Marathon or Mesos:\n%s", out)
	}

	verdicts, out, err = checkReport(t, nil, append(base, "--etcd", "http://"+closedPort(t))...)
	t.Logf("vipbridge check:\n%s", out)
	if err == nil || !slices.Contains(verdicts["etcd reachable"], verdictFail) {
		t.Errorf("vipbridge check with no etcd listening = %v, etcd reachable %v; want a FAIL", err, verdicts["etcd reachable"])
	}
}

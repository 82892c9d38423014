package marathon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// credentials produce the Authorization header for every request to
// Marathon and Mesos: HTTP Basic (open-source Marathon's
// --http_credentials) or "token=<t>" (DC/OS, UPSTREAM.md §5.5) read from a
// file that is re-read whenever its modification time or size changes, so a
// rotated token is picked up without a restart.
//
// The header value is secret: it is never logged, and errors about it name
// the token file but never its contents.
type credentials struct {
	basic     string // "Basic <base64>", or ""
	tokenFile string

	mu    sync.Mutex
	token string // "token=<t>" of the last read
	mtime time.Time
	size  int64
}

func newCredentials(basicAuth, tokenFile string) (*credentials, error) {
	if basicAuth != "" && tokenFile != "" {
		return nil, errors.New("basic auth and token file are mutually exclusive")
	}
	c := &credentials{tokenFile: tokenFile}
	if basicAuth != "" {
		if !strings.Contains(basicAuth, ":") {
			return nil, errors.New(`basic auth must be "user:password"`)
		}
		c.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(basicAuth))
	}
	if tokenFile != "" {
		if _, err := c.header(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// header returns the Authorization value, "" when none is configured.
func (c *credentials) header() (string, error) {
	if c.basic != "" || c.tokenFile == "" {
		return c.basic, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("stat token file %s: %w", c.tokenFile, err)
	}
	if c.token != "" && fi.ModTime().Equal(c.mtime) && fi.Size() == c.size {
		return c.token, nil
	}
	data, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("read token file %s: %w", c.tokenFile, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("token file %s: want one non-empty line", c.tokenFile)
	}
	c.token, c.mtime, c.size = "token="+tok, fi.ModTime(), fi.Size()
	return c.token, nil
}

// authTransport sets the Authorization header on every request it sends,
// including each hop of a redirect: net/http drops the header when a
// redirect leaves the original host, but a Marathon non-leader sends
// /v2/events clients to the leader and a Mesos standby master sends
// /master/state to the leader, both of which need the same credentials.
// Only configured URLs and the hosts they redirect to are ever contacted;
// redirects from https to http are refused (see checkRedirect) so the
// credentials never travel in clear text unless configured so.
type authTransport struct {
	base  http.RoundTripper
	creds *credentials
}

// RoundTrip implements http.RoundTripper.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h, err := t.creds.header()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if h != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", h)
	}
	return t.base.RoundTrip(req)
}

// maxRedirects is how many redirects one request may follow, as net/http's
// default policy.
const maxRedirects = 10

// checkRedirect is the redirect policy of every request: net/http's limit
// of 10 hops, and no downgrade from https to http.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %s", redactURL(req.URL))
	}
	return nil
}

// baseTransport returns the transport to build on: a clone of the given
// client's *http.Transport (or of http.DefaultTransport) with the CA file's
// certificates as root CAs when caFile is set. Certificate verification is
// always on: InsecureSkipVerify is cleared.
func baseTransport(hc *http.Client, caFile string) (http.RoundTripper, error) {
	var rt http.RoundTripper = http.DefaultTransport
	if hc != nil && hc.Transport != nil {
		rt = hc.Transport
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		if caFile != "" {
			return nil, fmt.Errorf("ca file %s needs an *http.Transport, HTTPClient has %T", caFile, rt)
		}
		return rt, nil
	}
	tr = tr.Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.InsecureSkipVerify = false
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificates", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// redactURL returns u as text without user information, for logs and
// errors.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	return c.String()
}

// redact is redactURL for a URL string; unparsable input is replaced by a
// placeholder rather than echoed.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	return redactURL(u)
}

// ProbeClient returns an HTTP client that talks to Marathon or Mesos as
// the daemon's does (certificates verified against caFile or the system
// roots, the basic auth or token file's credentials on every request) but
// follows no redirect, so that a caller checking a configuration can read
// a standby's redirect to its leader. basicAuth and tokenFile are as in
// Config.
func ProbeClient(caFile, basicAuth, tokenFile string, timeout time.Duration) (*http.Client, error) {
	creds, err := newCredentials(basicAuth, tokenFile)
	if err != nil {
		return nil, err
	}
	base, err := baseTransport(nil, caFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Transport:     &authTransport{base: base, creds: creds},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

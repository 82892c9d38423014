package main

// The checks of `vipbridge check` that talk to Marathon and Mesos: each
// URL reachable, its TLS certificate verified, the credentials accepted,
// the leader found; then one full fetch of each source through the
// daemon's own client.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/marathon"
)

// upstreamProbe makes requests as the daemon does: TLS verified against
// the CA file (or the system roots), the configured credentials sent, but
// redirects not followed, so that a Mesos master's redirect to its
// leader can be read.
type upstreamProbe struct {
	kind string // "marathon" or "mesos", the items' prefix
	hc   *http.Client
	// hasAuth: credentials are configured (hc sends them); authKind
	// names them in the report.
	hasAuth  bool
	authKind string
	caFile   string
}

// probeAnswer is one response: its status, the Location of a redirect
// and up to 1 MiB of body.
type probeAnswer struct {
	status   int
	location string
	body     []byte
}

func newUpstreamProbe(kind, caFile, basic, tokenFile string) (*upstreamProbe, error) {
	hc, err := marathon.ProbeClient(caFile, basic, tokenFile, checkTimeout)
	if err != nil {
		return nil, err
	}
	p := &upstreamProbe{kind: kind, caFile: caFile, hc: hc}
	switch {
	case basic != "":
		p.hasAuth, p.authKind = true, "basic auth"
	case tokenFile != "":
		p.hasAuth, p.authKind = true, "token file"
	}
	return p, nil
}

// get makes one GET of base+path.
func (p *upstreamProbe) get(ctx context.Context, base, path string) (probeAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return probeAnswer{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return probeAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return probeAnswer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: body}, err
}

// connection reports the reachability and TLS lines of one request to
// base; reached is false when the request got no HTTP answer.
func (p *upstreamProbe) connection(base string, err error) (lines []checkLine, reached bool) {
	u := redactedURL(base)
	if err != nil && !isTLSError(err) {
		return []checkLine{failLine(p.kind+" reachable", "%s: %v", u, err)}, false
	}
	lines = append(lines, okLine(p.kind+" reachable", "%s", u))
	tlsItem := p.kind + " tls"
	switch {
	case err != nil:
		return append(lines, failLine(tlsItem, "%s: certificate not verified (--ca-file %q): %v", u, p.caFile, err)), false
	case !strings.HasPrefix(strings.ToLower(base), "https:"):
		lines = append(lines, skipLine(tlsItem, "%s: http, nothing to verify", u))
	case p.caFile != "":
		lines = append(lines, okLine(tlsItem, "%s: certificate verified against %s", u, p.caFile))
	default:
		lines = append(lines, okLine(tlsItem, "%s: certificate verified against the system roots", u))
	}
	return lines, true
}

// credentials reports the credentials line of an answer; accepted is
// false when the upstream refused them.
func (p *upstreamProbe) credentials(base string, a probeAnswer) (line checkLine, accepted bool) {
	u, item := redactedURL(base), p.kind+" credentials"
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		if !p.hasAuth && !strings.Contains(base, "@") {
			return failLine(item, "%s: required (%s) and none configured", u, http.StatusText(a.status)), false
		}
		kind := p.authKind
		if kind == "" {
			kind = "basic auth in the URL"
		}
		return failLine(item, "%s: rejected (%s, %s)", u, http.StatusText(a.status), kind), false
	case p.hasAuth:
		return okLine(item, "%s: accepted (%s)", u, p.authKind), true
	}
	return skipLine(item, "%s: none configured, none asked for", u), true
}

// checkMarathon asks each Marathon URL for GET /v2/info: reachable, TLS,
// credentials and the elected leader.
func checkMarathon(ctx context.Context, cfg config) []checkLine {
	if cfg.Cluster.Role == roleNode {
		return []checkLine{skipLine("upstreams", "--role node: Marathon and Mesos are the publishers' (etcd below)")}
	}
	if len(cfg.Marathon) == 0 {
		return []checkLine{skipLine("marathon", "no --marathon: Mesos-only mode")}
	}
	p, err := newUpstreamProbe("marathon", cfg.CAFile, cfg.MarathonUser, cfg.TokenFile)
	if err != nil {
		return []checkLine{failLine("marathon", "%v", err)}
	}
	var out []checkLine
	for _, base := range cfg.Marathon {
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		a, err := p.get(ctx, base, "/v2/info")
		cancel()
		out = append(out, p.marathonURL(base, a, err)...)
	}
	return out
}

func (p *upstreamProbe) marathonURL(base string, a probeAnswer, err error) []checkLine {
	lines, reached := p.connection(base, err)
	if !reached {
		return lines
	}
	cred, accepted := p.credentials(base, a)
	lines = append(lines, cred)
	if !accepted {
		return lines
	}
	u := redactedURL(base)
	var info struct {
		Leader string `json:"leader"`
	}
	switch {
	case a.status != http.StatusOK:
		return append(lines, failLine("marathon leader", "%s: GET /v2/info: %d %s, not a Marathon?", u, a.status, http.StatusText(a.status)))
	case json.Unmarshal(a.body, &info) != nil:
		return append(lines, failLine("marathon leader", "%s: GET /v2/info: not Marathon's JSON", u))
	case info.Leader == "":
		return append(lines, failLine("marathon leader", "%s: no leader elected", u))
	}
	return append(lines, okLine("marathon leader", "%s: %s", u, info.Leader))
}

// checkMesos asks each Mesos master for GET /master/redirect, which
// redirects to the leading master: reachable, TLS and the leader. Mesos
// does not authenticate that endpoint; the state fetch of checkSnapshots
// tests the credentials.
func checkMesos(ctx context.Context, cfg config) []checkLine {
	if cfg.Cluster.Role == roleNode {
		return nil
	}
	if len(cfg.Mesos) == 0 {
		return []checkLine{skipLine("mesos", "no --mesos: Marathon's tasks only")}
	}
	basic, tokenFile := cfg.MesosUser, cfg.MesosTokenFile
	if basic == "" && tokenFile == "" {
		basic, tokenFile = cfg.MarathonUser, cfg.TokenFile
	}
	p, err := newUpstreamProbe("mesos", cfg.CAFile, basic, tokenFile)
	if err != nil {
		return []checkLine{failLine("mesos", "%v", err)}
	}
	var out []checkLine
	for _, base := range cfg.Mesos {
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		a, err := p.get(ctx, base, "/master/redirect")
		cancel()
		lines, reached := p.connection(base, err)
		out = append(out, lines...)
		if !reached {
			continue
		}
		u := redactedURL(base)
		if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
			cred, _ := p.credentials(base, a)
			out = append(out, cred)
			continue
		}
		if a.location == "" {
			out = append(out, failLine("mesos leader", "%s: no leading master (GET /master/redirect: %d %s)", u, a.status, http.StatusText(a.status)))
			continue
		}
		out = append(out, okLine("mesos leader", "%s: %s", u, strings.TrimPrefix(a.location, "//")))
	}
	return out
}

// snapshotTimeout bounds one full snapshot: a large cluster's apps take a
// while (the daemon's client allows each request 2 minutes).
const snapshotTimeout = 2 * time.Minute

// checkSnapshots fetches one full snapshot of each source with the
// daemon's own client (marathon.Client): what the daemon will serve.
func checkSnapshots(ctx context.Context, cfg config) []checkLine {
	if cfg.Cluster.Role == roleNode {
		return nil
	}
	client, err := marathon.New(marathon.Config{
		MarathonURLs:   cfg.Marathon,
		MesosURLs:      cfg.Mesos,
		BasicAuth:      cfg.MarathonUser,
		TokenFile:      cfg.TokenFile,
		MesosBasicAuth: cfg.MesosUser,
		MesosTokenFile: cfg.MesosTokenFile,
		CAFile:         cfg.CAFile,
	})
	if err != nil {
		return []checkLine{failLine("sources", "%v", err)}
	}
	var out []checkLine
	for _, s := range []struct {
		item   string
		source discovery.Source
	}{{"marathon apps", client.Marathon()}, {"mesos state", client.Mesos()}} {
		if s.source == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		st, err := s.source.Snapshot(ctx)
		cancel()
		if err != nil {
			out = append(out, failLine(s.item, "%v%s", err, authHint(err)))
			continue
		}
		out = append(out, okLine(s.item, "%s", describeState(st)))
	}
	return out
}

// describeState counts what a snapshot holds.
func describeState(st discovery.State) string {
	tasks := 0
	for _, a := range st.Apps {
		tasks += len(a.Tasks)
	}
	s := fmt.Sprintf("fetched %d apps, %d tasks", len(st.Apps), tasks)
	if c := st.Cluster; c != nil {
		s += fmt.Sprintf(", %d frameworks, %d agents, leader %s", len(c.Frameworks), len(c.Agents), c.Leader)
	}
	return s
}

// authHint names the cause of a 401 or 403 in an error.
func authHint(err error) string {
	if s := err.Error(); strings.Contains(s, " 401 ") || strings.Contains(s, " 403 ") {
		return " (credentials rejected)"
	}
	return ""
}

// isTLSError reports whether err is a failure to verify a certificate or
// to agree on TLS: the server was reached.
func isTLSError(err error) bool {
	var (
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		notTLS    tls.RecordHeaderError
		tlsFailed = errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &notTLS)
	)
	return tlsFailed || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// redactedURL is u without user information, for the report.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<invalid url>"
	}
	p.User = nil
	return p.String()
}

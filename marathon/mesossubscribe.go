package marathon

// One subscription to the Mesos operator stream: the SUBSCRIBE request
// (with the standby's 307 followed here, credentials kept), the version
// probe, the watchdog that finds a silent stream dead, and the read loop
// that hands each record to MesosStream.apply.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// mesosSession is the outcome of one stream attempt.
type mesosSession struct {
	subscribed  bool // a SUBSCRIBED arrived
	unsupported bool // the master has no SUBSCRIBE
	events      int
	reason      string
	err         error
}

// session runs one subscription against base until the stream ends.
func (s *MesosStream) session(ctx context.Context, base string, sink Sink) (r mesosSession) {
	if v, ok := s.masterVersion(ctx, base); ok && !versionAtLeast(v, 1, 1) {
		return mesosSession{unsupported: true, reason: "unsupported", err: fmt.Errorf("mesos %s has no SUBSCRIBE (1.1 or later)", v)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
	}()
	dog := &swappableWatchdog{}
	dog.swap(newWatchdog(mesosFirstTimeout, cancel))
	defer dog.stop()
	resp, leaderHost, err := s.subscribe(ctx, base)
	if err != nil {
		var st *statusError
		if errors.As(err, &st) && subscribeRefused(st.code) {
			return mesosSession{unsupported: true, reason: "unsupported", err: err}
		}
		return mesosSession{reason: "connect", err: s.idleErr(dog, err)}
	}
	defer resp.Body.Close()
	leader := s.setLeader(leaderHost)
	body := &kickingReader{r: resp.Body, dog: dog}
	rr := newRecordReader(body, maxMesosRecord)
	defer s.c.metrics.mesosConnected.Set(0)
	for {
		rec, err := rr.NextReader()
		if err != nil {
			return s.ended(r, dog, err)
		}
		r.events++
		// The followed Marathon's tasks are left out of SUBSCRIBED: its
		// own source serves them (mesoseventread.go).
		ev, err := readMesosEvent(rec, s.c.knownMarathonID())
		if err != nil {
			if rr.failed() {
				continue // the stream broke inside the record: NextReader says how
			}
			s.c.metrics.mesosEvents.WithLabelValues(mesosEventLabel(ev.Type), resultError).Inc()
			s.c.log.Warn("bad mesos event skipped", "err", err)
			continue
		}
		if ev.Type == mesosSubscribed {
			r.subscribed = true
			s.c.metrics.mesosConnected.Set(1)
			if hb := ev.Subscribed.HeartbeatIntervalSeconds; hb > 0 {
				d := time.Duration(hb*float64(time.Second)) * heartbeatsMissed
				dog.swap(newWatchdog(d, cancel))
			}
		}
		s.apply(&ev, leader, sink)
	}
}

// ended is the outcome of a session whose stream failed with err.
func (s *MesosStream) ended(r mesosSession, dog *swappableWatchdog, err error) mesosSession {
	r.reason = "ended"
	var re *RecordError
	if errors.As(err, &re) {
		r.reason = "framing"
	} else if err != io.EOF {
		r.reason, err = "read", s.idleErr(dog, err)
	}
	if s.resubscribed.Swap(false) {
		r.reason = "resubscribe"
	}
	r.err = err
	return r
}

// setLeader records the master subscribed to and returns its address when
// its host is an IP literal.
func (s *MesosStream) setLeader(hostport string) netip.AddrPort {
	h := masterHost{host: hostport}
	if host, port, err := net.SplitHostPort(hostport); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		h = masterHost{host: host, port: uint16(p)}
	}
	s.mu.Lock()
	s.leader = h
	s.mu.Unlock()
	if ip, ok := parseIP(h.host); ok && h.port != 0 {
		return netip.AddrPortFrom(ip, h.port)
	}
	return netip.AddrPort{}
}

// subscribeRefused reports whether a status answering SUBSCRIBE means the
// master will not stream to us: no operator API (404, 501), or /api/v1 in
// the read-write authentication realm (--authenticate_http_readwrite)
// while our credentials only read (401, 403): /master/state, read-only,
// may still answer.
func subscribeRefused(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusNotImplemented, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// idleErr reports a cancelled request as the watchdog's doing when it was.
func (s *MesosStream) idleErr(dog *swappableWatchdog, err error) error {
	if dog.fired() {
		return fmt.Errorf("%w: no byte from the mesos master in time (heartbeats stopped)", errIdleTimeout)
	}
	return err
}

// subscribe sends SUBSCRIBE and follows a standby master's 307 itself, so
// that the credentials go along (net/http drops Authorization on a
// redirect to another host: golang/go#65065) and a scheme-less Location
// ("//10.0.0.1:5050/api/v1", apache/mesos src/master/http.cpp redirect)
// keeps the request's scheme. It returns the 200 response and the
// leader's host:port.
func (s *MesosStream) subscribe(ctx context.Context, base string) (*http.Response, string, error) {
	u, err := url.Parse(base + mesosAPIPath)
	if err != nil {
		return nil, "", fmt.Errorf("mesos url: %w", err)
	}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(subscribeBody))
		if err != nil {
			return nil, "", fmt.Errorf("request %s: %w", redactURL(u), err)
		}
		// Exactly this Content-Type: the master compares it as a string
		// (apache/mesos src/master/http.cpp Master::Http::api).
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := s.c.mesosAPI.Do(req)
		if err != nil {
			return nil, "", err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return resp, u.Host, nil
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusMovedPermanently:
			loc := resp.Header.Get("Location")
			resp.Body.Close()
			next, err := u.Parse(loc)
			switch {
			case err != nil || loc == "":
				return nil, "", fmt.Errorf("POST %s: %s with a bad Location", redactURL(u), resp.Status)
			case hop+1 >= maxRedirects:
				return nil, "", fmt.Errorf("POST %s: stopped after %d redirects", redactURL(u), maxRedirects)
			case u.Scheme == "https" && next.Scheme != "https":
				return nil, "", fmt.Errorf("refusing redirect from https to %s", redactURL(next))
			}
			next.User = nil
			u = next
		default:
			resp.Body.Close()
			return nil, "", &statusError{code: resp.StatusCode, text: fmt.Sprintf("POST %s: %s", redactURL(u), resp.Status)}
		}
	}
}

// masterVersion reads GET /version ({"version":"1.4.0",…}); ok is false
// when it cannot tell.
func (s *MesosStream) masterVersion(ctx context.Context, base string) (string, bool) {
	var v struct {
		Version string `json:"version"`
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	err := s.c.get(ctx, "mesos_version", []string{base}, new(atomic.Int32), mesosVersionPath, func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&v)
	})
	return v.Version, err == nil && v.Version != ""
}

// versionAtLeast reports whether version "1.4.0" is at least major.minor;
// an unparsable version is taken to be recent.
func versionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return true
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// swappableWatchdog is the session's current watchdog: the first one
// waits for SUBSCRIBED, the next one for heartbeats at the interval
// SUBSCRIBED announced.
type swappableWatchdog struct {
	cur      atomic.Pointer[watchdog]
	anyFired atomic.Bool
}

func (d *swappableWatchdog) swap(w *watchdog) {
	if old := d.cur.Swap(w); old != nil && old.stop() {
		d.anyFired.Store(true)
	}
}

func (d *swappableWatchdog) kick() { d.cur.Load().kick() }

func (d *swappableWatchdog) stop() {
	if d.cur.Load().stop() {
		d.anyFired.Store(true)
	}
}

func (d *swappableWatchdog) fired() bool { return d.anyFired.Load() || d.cur.Load().fired.Load() }

// kickingReader feeds the watchdog with every byte read.
type kickingReader struct {
	r   io.Reader
	dog *swappableWatchdog
}

func (k *kickingReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.dog.kick()
	}
	return n, err
}

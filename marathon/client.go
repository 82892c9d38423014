package marathon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipbridge/vipbridge/discovery"
)

// Config configures a Client.
type Config struct {
	// MarathonURLs are Marathon base URLs ("http://m1:8080",
	// "https://master/service/marathon"), tried in turn. At least one
	// unless MesosURLs are given: without, the Client serves Mesos alone
	// (Mesos-only mode) and the Mesos source keeps Marathon's tasks too.
	// User information in a URL ("http://user:pass@m1:8080") is moved to
	// BasicAuth and never appears in logs or errors.
	MarathonURLs []string
	// MesosURLs are Mesos master base URLs ("http://m1:5050"), tried in
	// turn; none disables Client.Mesos.
	MesosURLs []string
	// BasicAuth is "user:password" for HTTP Basic auth (open-source
	// Marathon's --http_credentials). Exclusive with TokenFile.
	BasicAuth string
	// TokenFile holds a DC/OS auth token sent as "Authorization:
	// token=<t>"; it is re-read when its modification time or size changes.
	TokenFile string
	// CAFile is a PEM bundle used as the root CAs for https URLs (empty =
	// system roots). Certificates are always verified.
	CAFile string
	// MesosInterval is how often the caller should resync the Mesos source
	// (0 → 30s); the Client itself does not poll. See MesosInterval.
	MesosInterval time.Duration
	// HTTPClient supplies the transport (nil → a clone of
	// http.DefaultTransport). Only its Transport is used: the Client sets
	// its own timeouts, redirect policy and credentials.
	HTTPClient *http.Client
	// Registerer receives the metrics (nil → a private registry).
	Registerer prometheus.Registerer
	// Logger is the logger (nil → discard).
	Logger *slog.Logger
	// MaxEventSize is the largest event accepted, in bytes on the wire
	// (0 → 16 MiB). A larger one is counted and forces a reconnect and a
	// resync.
	MaxEventSize int
	// IdleTimeout is how long the stream may stay silent, heartbeats
	// included, before it is considered dead (0 → 30s; Marathon sends a
	// heartbeat every 10s).
	IdleTimeout time.Duration
	// Backoff bounds the delay between reconnect attempts.
	Backoff Backoff
	// MesosBasicAuth and MesosTokenFile are the Mesos masters'
	// credentials, as BasicAuth and TokenFile are Marathon's (exclusive
	// too); both empty → Marathon's credentials are used for Mesos too.
	MesosBasicAuth string
	MesosTokenFile string
	// MesosFailoverGrace bounds how long, after a Mesos master failover,
	// tasks the new master's first snapshot lacks are kept while their
	// agents re-register (0 → 10 min, Mesos's --agent_reregister_timeout;
	// see MesosStream).
	MesosFailoverGrace time.Duration
}

// Defaults of Config's zero values.
const (
	defaultMesosInterval = 30 * time.Second
	defaultMaxEventSize  = 16 << 20
	defaultIdleTimeout   = 30 * time.Second

	// restTimeout bounds one REST request, body included.
	restTimeout = 2 * time.Minute
	// maxBodySize bounds a REST response body.
	maxBodySize = 256 << 20
)

// Client talks to Marathon (the SSE event stream, /v2/apps, /v2/info) and
// to the Mesos masters (/master/state). Marathon and Mesos return the
// sources that the reconciler resyncs from; Stream returns the event
// stream, which feeds a Sink (the reconciler, built from those sources).
type Client struct {
	marathonURLs []string
	mesosURLs    []string
	maxEvent     int
	idle         time.Duration
	backoff      Backoff
	mesosEvery   time.Duration

	log           *slog.Logger
	metrics       *metrics
	resolver      *hostResolver
	pods          *podTracker
	rest          *http.Client // REST requests
	stream        *http.Client // the event stream: with the idle watchdog
	mesosREST     *http.Client // REST requests to Mesos: with Mesos's credentials
	mesosAPI      *http.Client // the operator API: redirects are the caller's
	failoverGrace time.Duration

	marathonNext atomic.Int32 // index of the Marathon URL that last worked
	mesosNext    atomic.Int32 // index of the Mesos URL that last worked

	mu     sync.Mutex
	fwName string // Marathon's framework name, from /v2/info
	fwID   string // Marathon's framework ID, from /v2/info; "" until known
	leader string // Marathon's leader, from /v2/info
	// identity receives a value (coalesced) whenever fwID changes: the
	// Mesos tasks are then classified anew (MesosStream.Run).
	identity chan struct{}
}

// New checks cfg and builds a Client. It does not contact anything.
func New(cfg Config) (*Client, error) {
	if len(cfg.MarathonURLs) == 0 && len(cfg.MesosURLs) == 0 {
		return nil, errors.New("no marathon or mesos url")
	}
	c := &Client{
		maxEvent:   cfg.MaxEventSize,
		idle:       cfg.IdleTimeout,
		backoff:    cfg.Backoff.withDefaults(),
		mesosEvery: cfg.MesosInterval,
		log:        cfg.Logger,
		resolver:   newHostResolver(),
		pods:       newPodTracker(),
		fwName:     DefaultFramework,
		identity:   make(chan struct{}, 1),
	}
	if len(cfg.MarathonURLs) == 0 {
		// Mesos-only: no Marathon source covers Marathon's tasks, so the
		// Mesos source excludes no framework.
		c.fwName = ""
	}
	if c.maxEvent <= 0 {
		c.maxEvent = defaultMaxEventSize
	}
	if c.idle <= 0 {
		c.idle = defaultIdleTimeout
	}
	if c.mesosEvery <= 0 {
		c.mesosEvery = defaultMesosInterval
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "marathon")
	c.failoverGrace = cfg.MesosFailoverGrace
	if c.failoverGrace <= 0 {
		c.failoverGrace = defaultFailoverGrace
	}
	basic := cfg.BasicAuth
	var err error
	if c.marathonURLs, basic, err = baseURLs(cfg.MarathonURLs, basic); err != nil {
		return nil, fmt.Errorf("marathon urls: %w", err)
	}
	shared := cfg.MesosBasicAuth == "" && cfg.MesosTokenFile == ""
	mesosBasic := cfg.MesosBasicAuth
	if shared {
		// Mesos shares Marathon's credentials, from either's URLs.
		c.mesosURLs, basic, err = baseURLs(cfg.MesosURLs, basic)
	} else {
		c.mesosURLs, mesosBasic, err = baseURLs(cfg.MesosURLs, mesosBasic)
	}
	if err != nil {
		return nil, fmt.Errorf("mesos urls: %w", err)
	}
	creds, err := newCredentials(basic, cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	mesosCreds := creds
	if !shared {
		if mesosCreds, err = newCredentials(mesosBasic, cfg.MesosTokenFile); err != nil {
			return nil, fmt.Errorf("mesos credentials: %w", err)
		}
	}
	base, err := baseTransport(cfg.HTTPClient, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	auth := &authTransport{base: base, creds: creds}
	c.rest = &http.Client{Transport: auth, CheckRedirect: checkRedirect}
	c.stream = &http.Client{Transport: &idleTransport{base: auth, timeout: c.idle}, CheckRedirect: checkRedirect}
	mesosAuth := &authTransport{base: base, creds: mesosCreds}
	c.mesosREST = &http.Client{Transport: mesosAuth, CheckRedirect: checkRedirect}
	c.mesosAPI = &http.Client{Transport: mesosAuth, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if c.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return c, nil
}

// baseURLs validates raw URLs and strips their user information, which
// becomes the basic auth unless basic is already set to the same value.
func baseURLs(raw []string, basic string) ([]string, string, error) {
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil {
			// The text is not echoed: it may hold credentials.
			return nil, "", fmt.Errorf("url #%d: want http(s)://host[:port][/path]", i+1)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("url %s: want http(s)://host[:port][/path]", redactURL(u))
		}
		if u.User != nil {
			ui := u.User.String()
			if p, err := url.PathUnescape(ui); err == nil {
				ui = p
			}
			if basic != "" && basic != ui {
				return nil, "", fmt.Errorf("url %s: credentials differ from basic auth", redactURL(u))
			}
			basic, u.User = ui, nil
		}
		u.RawQuery, u.Fragment = "", ""
		out = append(out, strings.TrimRight(u.String(), "/"))
	}
	return out, basic, nil
}

// MesosInterval is how often the Mesos source should be resynced
// (Config.MesosInterval with its default applied).
func (c *Client) MesosInterval() time.Duration { return c.mesosEvery }

// Marathon returns the source of Marathon apps: Snapshot reads
// GET /v2/apps?embed=apps.tasks (and /v2/info for the framework name); nil
// when no Marathon URL is configured (Mesos-only mode).
func (c *Client) Marathon() discovery.Source {
	if len(c.marathonURLs) == 0 {
		return nil
	}
	return marathonSource{c}
}

// Mesos returns the source of other frameworks' tasks from Mesos state, or
// nil when no Mesos URL is configured.
func (c *Client) Mesos() discovery.Source {
	if len(c.mesosURLs) == 0 {
		return nil
	}
	return mesosSource{c}
}

// framework returns Marathon's framework name (default "marathon"; "" in
// Mesos-only mode).
func (c *Client) framework() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fwName
}

// errMarathonUnknown is the Mesos source's error while Marathon's
// framework ID is not known: no Mesos task is classified before then.
var errMarathonUnknown = errors.New("marathon framework id not known yet (from /v2/info frameworkId)")

// marathonID returns the followed Marathon's framework ID, whose tasks the
// Mesos source leaves to the Marathon source: "" in Mesos-only mode, where
// it leaves none. Until /v2/info has told it, it asks once more, and fails
// with errMarathonUnknown when that does not tell either.
func (c *Client) marathonID(ctx context.Context) (string, error) {
	if len(c.marathonURLs) == 0 {
		return "", nil
	}
	if id := c.knownMarathonID(); id != "" {
		return id, nil
	}
	if err := c.refreshInfo(ctx); err != nil {
		return "", fmt.Errorf("%w: %w", errMarathonUnknown, err)
	}
	if id := c.knownMarathonID(); id != "" {
		return id, nil
	}
	return "", errMarathonUnknown
}

func (c *Client) knownMarathonID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fwID
}

// marathonSource is Client.Marathon.
type marathonSource struct{ c *Client }

// Snapshot returns every Marathon app with its tasks and every pod with its
// instances (podsync.go), from the first Marathon URL that answers
// (non-leaders proxy REST calls to the leader).
func (s marathonSource) Snapshot(ctx context.Context) (discovery.State, error) {
	c := s.c
	if err := c.refreshInfo(ctx); err != nil {
		c.log.Warn("marathon info unavailable, keeping framework name", "framework", c.framework(), "err", err)
	}
	rctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	resolve := c.resolver.bind(rctx)
	var apps []discovery.App
	err := c.get(ctx, "apps", c.marathonURLs, &c.marathonNext, "/v2/apps?embed=apps.tasks", func(r io.Reader) error {
		var err error
		apps, err = DecodeApps(r, resolve)
		return err
	})
	if err != nil {
		return discovery.State{}, err
	}
	fw := c.framework()
	for i := range apps {
		apps[i].Framework = fw
	}
	pods, err := c.snapshotPods(ctx, resolve)
	if err != nil {
		return discovery.State{}, err
	}
	return discovery.State{Apps: append(apps, pods...)}, nil
}

// infoJSON is the part of GET /v2/info the client uses
// (docs/docs/rest-api/public/api/v2/examples/info.json).
type infoJSON struct {
	Leader         string `json:"leader"`
	FrameworkID    string `json:"frameworkId"`
	MarathonConfig struct {
		FrameworkName string `json:"framework_name"`
	} `json:"marathon_config"`
}

// refreshInfo reads /v2/info: Marathon's framework name, framework ID and
// leader.
func (c *Client) refreshInfo(ctx context.Context) error {
	var info infoJSON
	err := c.get(ctx, "info", c.marathonURLs, &c.marathonNext, "/v2/info", func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&info)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fw := info.MarathonConfig.FrameworkName; fw != "" && fw != c.fwName {
		c.log.Info("marathon framework name", "framework", fw)
		c.fwName = fw
	}
	if id := info.FrameworkID; id != "" && id != c.fwID {
		c.log.Info("marathon framework id", "framework_id", id, "previous", c.fwID)
		c.fwID = id
		select {
		case c.identity <- struct{}{}:
		default:
		}
	}
	if info.Leader != c.leader {
		c.log.Info("marathon leader", "leader", info.Leader)
		c.leader = info.Leader
	}
	return nil
}

// get fetches path from the bases in turn (with Mesos's credentials when
// endpoint, the metrics label, starts with "mesos"), starting with the one that last
// worked (*next), and hands the first 200 response's body to decode.
func (c *Client) get(ctx context.Context, endpoint string, bases []string, next *atomic.Int32, path string, decode func(io.Reader) error) error {
	if len(bases) == 0 {
		return fmt.Errorf("fetch %s: no url configured", path)
	}
	start := int(next.Load())
	var errs []error
	for i := range bases {
		k := (start + i) % len(bases)
		err := c.getOne(ctx, endpoint, bases[k]+path, decode)
		if err == nil || isNotFound(err) {
			// A 404 is an answer (a Marathon without pods), not a failure
			// of this URL: the others would say the same.
			next.Store(int32(k))
			if err != nil {
				return fmt.Errorf("fetch %s: %w", path, err)
			}
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("fetch %s: %w", path, errors.Join(errs...))
}

// getOne performs one GET and decodes its size-bounded body.
func (c *Client) getOne(ctx context.Context, endpoint, rawURL string, decode func(io.Reader) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, restTimeout)
	defer cancel()
	t0 := time.Now()
	defer func() {
		result := resultOK
		if err != nil {
			result = resultError
		}
		c.metrics.requests.WithLabelValues(endpoint, result).Observe(time.Since(t0).Seconds())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", redact(rawURL), err)
	}
	req.Header.Set("Accept", "application/json")
	hc := c.rest
	if strings.HasPrefix(endpoint, "mesos") {
		hc = c.mesosREST
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	where := redactURL(resp.Request.URL)
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode, text: fmt.Sprintf("GET %s: %s", where, resp.Status)}
	}
	body := &boundedReader{r: resp.Body, left: maxBodySize}
	if err := decode(body); err != nil {
		if body.over {
			return fmt.Errorf("GET %s: body larger than %d bytes", where, maxBodySize)
		}
		return fmt.Errorf("decode %s: %w", where, err)
	}
	return nil
}

// errBodyTooLarge ends a response body that exceeds maxBodySize.
var errBodyTooLarge = errors.New("response body too large")

// boundedReader reads at most left bytes and then fails, so an endless or
// huge body cannot exhaust memory while being decoded.
type boundedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.r.Read(probe[:])
		if n == 0 && err != nil {
			return 0, err
		}
		b.over = true
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// statusError is an HTTP answer other than the one expected, with its
// status code for callers that tell them apart (404: no pods; 404/501:
// no SUBSCRIBE).
type statusError struct {
	code int
	text string
}

func (e *statusError) Error() string { return e.text }

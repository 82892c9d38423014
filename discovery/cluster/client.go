package cluster

// The etcd client both roles use: endpoints, TLS and credentials from
// files, and reconnect settings tuned so that watchers catch up within
// seconds of an outage (gRPC's default reconnect backoff grows to 120 s).

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
)

// ClientConfig configures NewClient. Nothing in it is ever logged.
type ClientConfig struct {
	// Endpoints are the etcd client URLs (http:// or https://); required.
	Endpoints []string
	// CAFile is a PEM bundle to verify etcd's certificates; empty uses the
	// system's roots (for https endpoints).
	CAFile string
	// CertFile and KeyFile are the client certificate and key, for etcd
	// running with --client-cert-auth; both or neither.
	CertFile, KeyFile string
	// CredentialsFile holds "user:password" (one line) for etcd's
	// authentication; empty sends none.
	CredentialsFile string
	// DialTimeout bounds the authentication at start; zero means 5 s.
	DialTimeout time.Duration
}

// reconnect is the gRPC reconnect backoff: from 100 ms to at most 1 s,
// ±20 %, so that after an outage every watcher is back within about a
// second of etcd, while thousands of nodes still spread their retries.
var reconnect = grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// NewClient returns an etcd client for cfg. It does not wait for etcd to
// be reachable: calls fail or wait until it is.
func NewClient(cfg ClientConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd client: no endpoints")
	}
	c := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		// Keepalives find a dead member; etcd refuses pings more often
		// than every 5 s and pings without a stream (its enforcement
		// policy answers GOAWAY "too_many_pings").
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnect, MinConnectTimeout: 2 * time.Second}),
		},
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	var err error
	if c.TLS, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.CredentialsFile != "" {
		b, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client: read credentials file: %w", err)
		}
		user, pass, ok := bytes.Cut(bytes.TrimSpace(b), []byte(":"))
		if !ok || len(user) == 0 {
			return nil, errors.New("etcd client: credentials file: want user:password")
		}
		c.Username, c.Password = string(user), string(pass)
	}
	cli, err := clientv3.New(c)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cli, nil
}

// tlsConfig is cfg's TLS configuration; nil when it sets no file.
func tlsConfig(cfg ClientConfig) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client: read ca file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("etcd client: ca file holds no PEM certificate")
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("etcd client: cert file and key file go together")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client: load client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

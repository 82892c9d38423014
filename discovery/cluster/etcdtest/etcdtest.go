// Package etcdtest runs a real etcd cluster of separate etcd processes on
// loopback for tests: members can be stopped, restarted, paused and
// compacted. Only tests import it. It needs the etcd binary
// (scripts/deps.d/etcd.sh installs Debian's etcd-server, 3.4); without it
// the test skips with one line, or fails under CI=true.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	members []*member
	initial string
	tls     *TLSFiles
}

// TLSFiles are the PEM files of a cluster serving its clients over TLS
// and asking them for certificates (--client-cert-auth).
type TLSFiles struct {
	CA, Cert, Key         string // the members' CA, certificate and key
	ClientCert, ClientKey string // a client certificate the CA signed
}

// Option changes how Start runs the cluster.
type Option func(*Cluster)

// WithBinary runs the members from the etcd binary at path instead of the
// etcd on $PATH (another etcd version: scripts/build-etcd.sh).
func WithBinary(path string) Option { return func(c *Cluster) { c.bin = path } }

// WithTLS makes the members serve clients over TLS with files.
func WithTLS(files TLSFiles) Option { return func(c *Cluster) { c.tls = &files } }

type member struct {
	name, client, peer, dir string
	mu                      sync.Mutex
	cmd                     *exec.Cmd
	done                    chan struct{}
}

// Start starts n members on 127.0.0.1 and waits until they serve. Their
// data lives in memory (/dev/shm) when it can; Close (registered with
// t.Cleanup) kills them.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for _, o := range opts {
		o(c)
	}
	if c.bin == "" {
		bin, err := exec.LookPath("etcd")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("etcd binary missing (scripts/deps.d/etcd.sh installs it): %v", err)
			}
			t.Skip("etcd binary missing; scripts/test-deps.sh installs it")
		}
		c.bin = bin
	}
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "etcdtest-")
	if err != nil {
		t.Fatalf("etcd dir: %v", err)
	}
	c.dir = dir
	scheme := "http://"
	if c.tls != nil {
		scheme = "https://"
	}
	var peers []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), client: scheme + freeAddr(t), peer: "http://" + freeAddr(t)}
		m.dir = filepath.Join(dir, m.name)
		c.members = append(c.members, m)
		peers = append(peers, m.name+"="+m.peer)
	}
	c.initial = strings.Join(peers, ",")
	t.Cleanup(c.Close)
	for i := range c.members {
		c.StartMember(i)
	}
	c.WaitHealthy()
	return c
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client)
	}
	return out
}

// StartMember starts (or restarts, with its data) member i.
func (c *Cluster) StartMember(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	state := "new"
	if _, err := os.Stat(m.dir); err == nil {
		state = "existing"
	}
	args := []string{"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", c.initial, "--initial-cluster-token", filepath.Base(c.dir),
		"--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--experimental-watch-progress-notify-interval", "1s",
		"--logger", "zap", "--log-level", "error"}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.Cert, "--key-file", c.tls.Key, "--trusted-ca-file", c.tls.CA, "--client-cert-auth")
	}
	cmd := exec.Command(c.bin, args...)
	log, err := os.Create(filepath.Join(c.dir, m.name+".log"))
	if err != nil {
		c.t.Fatalf("etcd log: %v", err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start etcd %s: %v", m.name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	done := m.done
	go func() { cmd.Wait(); log.Close(); close(done) }()
}

// StopMember kills member i (SIGKILL: a crash), keeping its data.
func (c *Cluster) StopMember(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGCONT)
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Client returns a client of every member, closed at cleanup.
func (c *Cluster) Client() *clientv3.Client {
	cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if c.tls != nil {
		tc, err := (transport.TLSInfo{CertFile: c.tls.ClientCert, KeyFile: c.tls.ClientKey, TrustedCAFile: c.tls.CA}).ClientConfig()
		if err != nil {
			c.t.Fatalf("etcd client tls: %v", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitHealthy waits (up to two minutes: the machine may be loaded) until
// a linearizable read succeeds.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	cli := c.Client()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd not healthy: %v (logs in %s)", err, c.dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Compact compacts etcd's history up to its current revision.
func (c *Cluster) Compact(cli *clientv3.Client) int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "compact-marker")
	if err != nil {
		c.t.Fatalf("compact: %v", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("compact: %v", err)
	}
	return resp.Header.Revision
}

// Close kills every member and removes the data.
func (c *Cluster) Close() {
	for i := range c.members {
		c.StopMember(i)
	}
	os.RemoveAll(c.dir)
}

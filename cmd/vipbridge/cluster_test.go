package main

// Cluster mode end to end: a real three-member etcd (etcdtest), two
// publisher daemons on the Marathon simulator and 100 node daemons in
// this process, each with its own data dir and DNS listener on 127.0.x.y:
// every node converges, changes keep flowing after the leader resigns,
// Marathon sees one event stream per publisher, and no name ever maps to
// two addresses on any node.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/discovery/cluster/etcdtest"
)

// startClusterDaemon starts `vipbridge run args...` in process with
// loopback listeners (DNS on dnsIP) and tweak applied to the parsed
// configuration.
func startClusterDaemon(t testing.TB, dnsIP string, args []string, tweak func(*config)) *daemon {
	t.Helper()
	args = append([]string{"--lb", "none", "--data-dir", t.TempDir(), "--dns-addr", dnsIP + ":0", "--http-addr", "127.0.0.1:0",
		"--log-level", "info", "--upstream", "none"}, args...)
	cfg, err := parseConfig("run", args, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	cfg.Cluster.CacheNoSync = true
	if tweak != nil {
		tweak(&cfg)
	}
	return runTestDaemon(t, cfg)
}

// taskName is a task-zone name of the "small" scenario's /web.
const taskName = "web.marathon.mesos"

// nodeIP is node i's DNS address, one per node.
func nodeIP(i int) string { return fmt.Sprintf("127.0.%d.%d", 10+i/250, 1+i%250) }

// clusterRig is a running cluster: etcd, the simulator, publishers
// and nodes.
type clusterRig struct {
	ec    *etcdtest.Cluster
	pubs  []*daemon
	nodes []*daemon
}

func startClusterRig(t testing.TB, ec *etcdtest.Cluster, marathonURL, mesosURL string, publishers, nodes int) *clusterRig {
	t.Helper()
	r := &clusterRig{ec: ec}
	etcd := strings.Join(ec.Endpoints(), ",")
	for i := range publishers {
		id := fmt.Sprintf("pub-%d", i)
		r.pubs = append(r.pubs, startClusterDaemon(t, "127.0.0.1", []string{"--role", "publisher", "--etcd", etcd,
			"--marathon", marathonURL, "--mesos", mesosURL, "--etcd-session-ttl", "2s"}, func(c *config) { c.Cluster.PublisherID = id }))
	}
	for i := range nodes {
		r.nodes = append(r.nodes, startClusterDaemon(t, nodeIP(i), []string{"--role", "node", "--etcd", etcd}, nil))
	}
	return r
}

// nameBook records every answer seen: a name must never map to two
// addresses, nor an address to two names.
type nameBook struct {
	mu     sync.Mutex
	byName map[string]netip.Addr
	byAddr map[netip.Addr]string
}

func (b *nameBook) see(t testing.TB, where, name string, a netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byName == nil {
		b.byName, b.byAddr = map[string]netip.Addr{}, map[netip.Addr]string{}
	}
	if old, ok := b.byName[name]; ok && old != a {
		t.Errorf("%s: %s answered %s, elsewhere %s", where, name, a, old)
	}
	if old, ok := b.byAddr[a]; ok && old != name {
		t.Errorf("%s: %s is %s's address, elsewhere %s's", where, a, name, old)
	}
	b.byName[name], b.byAddr[a] = a, name
}

// answer asks d over DNS for name's A record and records it.
func (b *nameBook) answer(t testing.TB, d *daemon, where, name string) (netip.Addr, bool) {
	r, err := d.query(name, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return netip.Addr{}, false
	}
	a, ok := aRecord(r)
	if ok {
		b.see(t, where, name, a)
	}
	return a, ok
}

// backendsOn is how many backends node d serves for web:80.
func backendsOn(d *daemon, name string, port uint16) int {
	v, ok := d.addrs.Node.Table().VIP(discovery.VIPKey{Protocol: discovery.TCP, Name: name, Port: port})
	if !ok {
		return -1
	}
	return len(v.Backends)
}

// everyNode waits until cond holds on every node.
func everyNode(t testing.TB, nodes []*daemon, what string, cond func(i int, d *daemon) bool) {
	t.Helper()
	for i, d := range nodes {
		waitFor(t, fmt.Sprintf("node %d: %s", i, what), func() bool { return cond(i, d) })
	}
}

func TestClusterMode(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	sim := startSim(t, "small")
	n := 100
	if testing.Short() {
		n = 20
	}
	rig := startClusterRig(t, ec, sim.URL(), sim.MesosURL(), 2, n)
	var book nameBook
	converge := func(backends int) {
		t.Helper()
		everyNode(t, rig.nodes, fmt.Sprintf("web with %d backends and db resolving", backends), func(i int, d *daemon) bool {
			where := fmt.Sprintf("node %d", i)
			_, web := book.answer(t, d, where, webName)
			_, db := book.answer(t, d, where, dbName)
			return web && db && backendsOn(d, "web.marathon", 80) == backends && !d.addrs.Node.Table().Stale
		})
		for i, p := range rig.pubs {
			book.answer(t, p, fmt.Sprintf("publisher %d", i), webName)
		}
	}
	converge(2)
	if got := sim.Streams(); got != len(rig.pubs) {
		t.Errorf("Marathon event streams = %d with %d nodes, want %d (one per publisher)", got, n, len(rig.pubs))
	}

	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	converge(3)

	// The leader resigns (it stops): the other takes over and changes
	// keep flowing.
	leader := rig.nodes[0].addrs.Node.Leader()
	var survivor string
	for i, p := range rig.pubs {
		if id := fmt.Sprintf("pub-%d", i); id == leader {
			p.stop()
		} else {
			survivor = id
		}
	}
	if err := sim.ScaleApp("/web", 4); err != nil {
		t.Fatal(err)
	}
	converge(4)
	everyNode(t, rig.nodes, "the other publisher to lead", func(_ int, d *daemon) bool { return d.addrs.Node.Leader() == survivor })

	// And back down: removed backends leave every node too.
	if err := sim.ScaleApp("/web", 2); err != nil {
		t.Fatal(err)
	}
	converge(2)
	var ready struct {
		Stale        bool     `json:"stale"`
		StaleSources []string `json:"stale_sources"`
		Cluster      struct {
			Role          string `json:"role"`
			Leader        string `json:"leader"`
			Revision      int64  `json:"revision"`
			EtcdConnected bool   `json:"etcd_connected"`
		} `json:"cluster"`
	}
	if err := rig.nodes[0].getJSON("/readyz", &ready); err != nil || ready.Stale {
		t.Errorf("/readyz of a synced node: %+v, %v", ready, err)
	}
	if c := ready.Cluster; c.Role != roleNode || c.Leader == "" || c.Revision <= 0 || !c.EtcdConnected {
		t.Errorf("/readyz of a synced node: cluster %+v, want role node, a leader, a revision, etcd connected", c)
	}
	var records struct {
		Cluster *struct {
			Role string `json:"role"`
		} `json:"cluster"`
	}
	for i, p := range rig.pubs {
		if fmt.Sprintf("pub-%d", i) != survivor {
			continue // stopped
		}
		if err := p.getJSON("/records", &records); err != nil || records.Cluster == nil || records.Cluster.Role != rolePublisher {
			t.Errorf("/records of a publisher: cluster %+v, %v; want role publisher", records.Cluster, err)
		}
		// A publisher serves the task zones of its own reconciler; a node
		// forwards the mesos domain to it, as DC/OS's agents forward it to
		// the masters' mesos-dns.
		if r, err := queryA(p.addrs.DNS.String(), taskName); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("publisher: %s = %v, %v; want its tasks' addresses", taskName, r, err)
		}
		pub := p.addrs.DNS.String()
		fwd := startClusterDaemon(t, nodeIP(240), []string{"--role", "node", "--etcd", strings.Join(ec.Endpoints(), ","),
			"--forward-zone", "mesos=" + pub + " mesos.thisdcos.directory=" + pub + " dcos.thisdcos.directory=" + pub,
			"--upstream", "none"}, nil)
		for _, name := range []string{taskName, "web.marathon.mesos.thisdcos.directory", "web.marathon.autoip.dcos.thisdcos.directory"} {
			if r, err := queryA(fwd.addrs.DNS.String(), name); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				t.Errorf("node forwarding the task zones to the publisher: %s = %v, %v; want its tasks' addresses", name, r, err)
			}
		}
		fwd.stop()
	}

	// Every etcd member stops: every node keeps answering over DNS, marked
	// stale, then catches up.
	for i := range 3 {
		ec.StopMember(i)
	}
	everyNode(t, rig.nodes, "stale while etcd is down", func(_ int, d *daemon) bool { return d.addrs.Node.Table().Stale })
	if err := rig.nodes[0].getJSON("/readyz", &ready); err != nil || !ready.Stale {
		t.Errorf("/readyz with etcd down: %+v, %v; want stale", ready, err)
	}
	for i, d := range rig.nodes {
		for _, name := range []string{webName, dbName} {
			if _, ok := book.answer(t, d, fmt.Sprintf("node %d, etcd down", i), name); !ok {
				t.Errorf("node %d does not answer %s with etcd down", i, name)
			}
		}
	}
	if err := sim.ScaleApp("/web", 3); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ec.StartMember(i)
	}
	converge(3)
}

func TestClusterFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // "" for no error
	}{
		{"node", []string{"--role", "node", "--etcd", "http://e:2379"}, ""},
		{"publisher", []string{"--role", "publisher", "--etcd", "http://e:2379", "--marathon", "http://m:8080"}, ""},
		{"node without etcd", []string{"--role", "node"}, "--role node needs --etcd"},
		{"node with marathon", []string{"--role", "node", "--etcd", "http://e:2379", "--marathon", "http://m:8080"}, "never talks to Marathon"},
		{"publisher without upstream", []string{"--role", "publisher", "--etcd", "http://e:2379"}, "--marathon or --mesos"},
		{"etcd without a role", []string{"--etcd", "http://e:2379", "--marathon", "http://m:8080"}, "--etcd needs --role"},
		{"unknown role", []string{"--role", "leader", "--etcd", "http://e:2379"}, "--role: want"},
		{"short session", []string{"--role", "node", "--etcd", "http://e:2379", "--etcd-session-ttl", "1s"}, "at least 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("run", tt.args, func(string) (string, bool) { return "", false }, io.Discard)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("parseConfig(%q) = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestClusterCredentialsNeverShown(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	dir := t.TempDir()
	creds := filepath.Join(dir, "etcd-credentials")
	if err := os.WriteFile(creds, []byte("vipbridge:s3cr3t-etcd-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startClusterDaemon(t, "127.0.0.1", []string{"--role", "node", "--etcd", strings.Join(ec.Endpoints(), ","),
		"--etcd-credentials-file", creds, "--log-level", "debug"}, nil)
	var cfg map[string]any
	if err := d.getJSON("/v1/config", &cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the client try (etcd has no auth: it refuses)
	body, _ := json.Marshal(cfg)
	for what, text := range map[string]string{"/v1/config": string(body), "the log": d.logs.String()} {
		if strings.Contains(text, "s3cr3t-etcd-pw") {
			t.Errorf("%s shows the etcd password", what)
		}
	}
}

// TLS to etcd with client certificates: a publisher and a node with the
// --etcd-*-file flags converge; a node without a client certificate is
// refused and serves nothing (not ready), and no key material is logged.
func TestClusterTLS(t *testing.T) {
	files := etcdtest.NewTLSFiles(t, t.TempDir())
	ec := etcdtest.Start(t, 1, etcdtest.WithTLS(files))
	sim := startSim(t, "small")
	etcd := strings.Join(ec.Endpoints(), ",")
	tlsArgs := []string{"--etcd", etcd, "--etcd-ca-file", files.CA, "--etcd-cert-file", files.ClientCert, "--etcd-key-file", files.ClientKey}
	startClusterDaemon(t, "127.0.0.1", append([]string{"--role", "publisher", "--marathon", sim.URL(), "--mesos", sim.MesosURL()}, tlsArgs...), nil)
	node := startClusterDaemon(t, nodeIP(0), append([]string{"--role", "node"}, tlsArgs...), nil)
	var book nameBook
	waitFor(t, "the TLS node to answer web", func() bool {
		_, ok := book.answer(t, node, "tls node", webName)
		return ok && !node.addrs.Node.Table().Stale
	})
	refused := startClusterDaemon(t, nodeIP(1), []string{"--role", "node", "--etcd", etcd, "--etcd-ca-file", files.CA}, nil)
	time.Sleep(time.Second)
	if st := refused.addrs.Node.Status(); st.Synced || refused.addrs.Node.Table().VIPs.Len() != 0 {
		t.Errorf("a node without a client certificate synced: %+v", st)
	}
	key, err := os.ReadFile(files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBody := strings.Split(string(key), "\n")[1]
	if strings.Contains(node.logs.String(), pemBody) {
		t.Errorf("the node logged its etcd client key")
	}
}

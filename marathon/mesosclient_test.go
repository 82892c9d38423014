package marathon

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
)

const upstreamMesosState = "mesosphere-mesos-dns/factories/fake.json"

// mesosLeader serves state at /master/state.
func mesosLeader(t *testing.T, state []byte) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mesosStatePath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(state)
	}))
	t.Cleanup(s.Close)
	return s
}

// mesosStandby answers 307 with a protocol-relative Location, as a Mesos
// master that is not the leader does.
func mesosStandby(t *testing.T, leader *httptest.Server) *httptest.Server {
	t.Helper()
	host := strings.TrimPrefix(leader.URL, "http://")
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "//"+host+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestMesosSnapshot(t *testing.T) {
	state := upstreamtest.File(t, upstreamMesosState)
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no leader", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	leader := mesosLeader(t, state)
	standby := mesosStandby(t, leader)

	tests := []struct {
		name    string
		urls    []string
		info    string // frameworkId from /v2/info, "" for the fixture's "marathon"
		wantErr string
	}{
		{name: "leader", urls: []string{leader.URL}},
		{name: "standby redirects to the leader", urls: []string{standby.URL}},
		{name: "no leader known then standby", urls: []string{unavailable.URL, standby.URL}},
		{name: "other marathon framework", urls: []string{leader.URL}, info: "20140703-014514-3041283216-5050-5348-0001"},
		{name: "no leader known", urls: []string{unavailable.URL}, wantErr: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			framework := "20140703-014514-3041283216-5050-5348-0000" // "marathon" in the fixture
			if tt.info != "" {
				framework = tt.info
			}
			m := marathonServer(t, []byte(`{"frameworkId":"`+framework+`"}`), []byte(`{"apps":[]}`))
			c, _, _ := testClient(t, Config{MarathonURLs: []string{m.URL}, MesosURLs: tt.urls})
			noDNS(c)
			st, err := c.Mesos().Snapshot(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Snapshot error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			want, _, err := DecodeMesosState(bytes.NewReader(state), framework)
			if err != nil {
				t.Fatalf("DecodeMesosState: %v", err)
			}
			if len(want.Apps) == 0 {
				t.Fatalf("fixture has no tasks outside %q", framework)
			}
			if !reflect.DeepEqual(st.Apps, want.Apps) {
				t.Errorf("Snapshot apps = %+v\nwant %+v", st.Apps, want.Apps)
			}
		})
	}
}

// TestMesosAgentsResolveMarathonHosts checks that agents from Mesos state
// give Marathon tasks on named hosts their agent IP without DNS.
func TestMesosAgentsResolveMarathonHosts(t *testing.T) {
	state := []byte(`{"leader":"master@127.0.0.1:5050","slaves":[{"id":"S1","hostname":"agent-1.example","pid":"slave(1)@10.1.2.3:5051"}],"frameworks":[]}`)
	apps := []byte(`{"apps":[{"id":"/web","portDefinitions":[{"port":0,"labels":{"VIP_0":"/web:80"}}],
		"tasks":[{"id":"web.1","appId":"/web","host":"agent-1.example","state":"TASK_RUNNING","ports":[31000]}]}]}`)
	m := marathonServer(t, []byte(`{"frameworkId":"F0"}`), apps)
	c, _, _ := testClient(t, Config{MarathonURLs: []string{m.URL}, MesosURLs: []string{mesosLeader(t, state).URL}})
	lookups := noDNS(c)
	if _, err := c.Mesos().Snapshot(context.Background()); err != nil {
		t.Fatalf("Mesos Snapshot: %v", err)
	}
	st, err := c.Marathon().Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Marathon Snapshot: %v", err)
	}
	if len(st.Apps) != 1 || len(st.Apps[0].Tasks) != 1 {
		t.Fatalf("apps = %+v, want one app with one task", st.Apps)
	}
	if got, want := st.Apps[0].Tasks[0].AgentIP, netip.MustParseAddr("10.1.2.3"); got != want {
		t.Errorf("AgentIP = %v, want %v", got, want)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d DNS lookups, want 0", n)
	}
}

func TestHostResolver(t *testing.T) {
	agent := netip.MustParseAddr("10.0.0.9")
	dnsAddr := netip.MustParseAddr("10.0.0.50")
	tests := []struct {
		name string
		host string
		// dns is what the DNS lookup returns; nil means failure.
		dns     []netip.Addr
		want    netip.Addr
		lookups int32 // after resolving twice
	}{
		{name: "ipv4 literal", host: "10.0.0.1", want: netip.MustParseAddr("10.0.0.1")},
		{name: "mapped literal", host: "::ffff:10.0.0.1", want: netip.MustParseAddr("10.0.0.1")},
		{name: "ipv6 literal", host: "fd00::1", want: netip.MustParseAddr("fd00::1")},
		{name: "mesos agent", host: "agent.example", want: agent},
		{name: "dns, cached", host: "web.example", dns: []netip.Addr{dnsAddr}, want: dnsAddr, lookups: 1},
		{name: "dns prefers ipv4", host: "web.example", dns: []netip.Addr{netip.MustParseAddr("fd00::5"), dnsAddr}, want: dnsAddr, lookups: 1},
		{name: "dns failure, cached", host: "gone.example", want: netip.Addr{}, lookups: 1},
		{name: "empty", host: "", want: netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHostResolver()
			var lookups atomic.Int32
			r.lookup = func(context.Context, string) ([]netip.Addr, error) {
				lookups.Add(1)
				if tt.dns == nil {
					return nil, errors.New("no such host")
				}
				return tt.dns, nil
			}
			r.setAgents(map[string]netip.Addr{"agent.example": agent})
			for range 2 {
				if got := r.resolve(context.Background(), tt.host); got != tt.want {
					t.Errorf("resolve(%q) = %v, want %v", tt.host, got, tt.want)
				}
			}
			if got := lookups.Load(); got != tt.lookups {
				t.Errorf("%d lookups, want %d", got, tt.lookups)
			}
		})
	}
}

func TestHostResolverExpiry(t *testing.T) {
	r := newHostResolver()
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	var lookups atomic.Int32
	r.lookup = func(context.Context, string) ([]netip.Addr, error) {
		lookups.Add(1)
		return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
	}
	r.resolve(context.Background(), "a.example")
	now = now.Add(positiveTTL + time.Second)
	r.resolve(context.Background(), "a.example")
	if got := lookups.Load(); got != 2 {
		t.Errorf("%d lookups after the cache entry expired, want 2", got)
	}
}

// TestHostResolverBudget checks that a lookup cut short by the caller's
// context is neither waited for nor cached as a failure.
func TestHostResolverBudget(t *testing.T) {
	r := newHostResolver()
	var lookups atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	r.lookup = func(ctx context.Context, _ string) ([]netip.Addr, error) {
		lookups.Add(1)
		cancel() // the caller gives up while the lookup runs
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if got := r.resolve(ctx, "slow.example"); got.IsValid() {
		t.Errorf("resolve = %v, want invalid", got)
	}
	if got := r.resolve(ctx, "slow.example"); got.IsValid() {
		t.Errorf("resolve with a done context = %v, want invalid", got)
	}
	if got := lookups.Load(); got != 1 {
		t.Errorf("%d lookups, want 1 (none once the context is done)", got)
	}
	r.mu.Lock()
	_, cached := r.cache["slow.example"]
	r.mu.Unlock()
	if cached {
		t.Errorf("a lookup cut short by the caller was cached")
	}
}

// TestMesosOnlySnapshot checks Mesos-only mode: without a Marathon URL
// there is no Marathon source, and the Mesos source keeps Marathon's tasks
// as apps made of one task each.
func TestMesosOnlySnapshot(t *testing.T) {
	leader := mesosLeader(t, upstreamtest.File(t, upstreamMesosState))
	c, _, _ := testClient(t, Config{MesosURLs: []string{leader.URL}})
	noDNS(c)
	if m := c.Marathon(); m != nil {
		t.Fatalf("Marathon() without Marathon URLs = %v, want nil", m)
	}
	st, err := c.Mesos().Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	marathonTasks := 0
	for _, a := range st.Apps {
		if a.Framework == DefaultFramework {
			marathonTasks++
			if !a.FromMesos || a.Tasks[0].Name == "" {
				t.Errorf("app %s = %+v, want FromMesos with the task name", a.ID, a)
			}
		}
	}
	// fake.json's marathon framework lists 8 tasks, one of them killed.
	if marathonTasks != 8 {
		t.Errorf("%d tasks of marathon, want 8", marathonTasks)
	}
}

// TestMesosSnapshotMasters checks Cluster.Masters: the configured Mesos
// hosts by address, in order, deduplicated, names resolved through the
// agents Mesos lists and DNS, unresolvable names left out.
func TestMesosSnapshotMasters(t *testing.T) {
	state := []byte(`{"leader":"master@10.0.0.2:5050","slaves":[{"id":"S1","hostname":"m3.example","pid":"slave(1)@10.0.0.3:5051"}],"frameworks":[]}`)
	leader := mesosLeader(t, state)
	urls := []string{leader.URL, "http://10.0.0.2:5050", "http://127.0.0.1:1", "http://m3.example:5050", "http://gone.example:5050", "http://[::1]:5050"}
	c, _, _ := testClient(t, Config{MesosURLs: urls})
	noDNS(c)
	st, err := c.Mesos().Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("::1")}
	if !reflect.DeepEqual(st.Cluster.Masters, want) {
		t.Errorf("Masters = %v, want %v", st.Cluster.Masters, want)
	}
	if st.Cluster.Leader != netip.MustParseAddrPort("10.0.0.2:5050") {
		t.Errorf("Leader = %v, want 10.0.0.2:5050", st.Cluster.Leader)
	}
}

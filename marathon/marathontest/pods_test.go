package marathontest_test

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
	"github.com/vipbridge/vipbridge/marathon"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// TestPodsDecode reads the demo's pod through marathon.DecodePods: the
// endpoint without a host port is reached at the instance IP : container
// port, the one with a host port at the agent : allocated host port.
func TestPodsDecode(t *testing.T) {
	s := newDemo(t)
	resp, err := http.Get(s.URL() + "/v2/pods/::status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pods, err := marathon.DecodePods(resp.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].ID != "/cache" || len(pods[0].Tasks) != 2 {
		t.Fatalf("pods = %+v, want /cache with 2 instances", pods)
	}
	truth, err := s.PodInstances("/cache")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, in := range truth {
		want = append(want, netip.AddrPortFrom(in.IPs[0], 6379).String(), netip.AddrPortFrom(in.AgentIP, in.HostPorts[0]).String())
	}
	var got []string
	for v := range discovery.Build(pods, nil, time.Now()).VIPs.All() {
		for _, b := range v.Backends {
			got = append(got, b.Addr.String())
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("backends = %v, want %v", got, want)
	}
	var one map[string]any
	if code := getJSON(t, s.URL()+"/v2/pods/cache::status", &one); code != http.StatusOK || one["id"] != "/cache" {
		t.Errorf("GET /v2/pods/cache::status = %d %v", code, one["id"])
	}
	if code := getJSON(t, s.URL()+"/v2/pods/nope::status", &one); code != http.StatusNotFound {
		t.Errorf("GET of an unknown pod = %d, want 404", code)
	}
	var defs []map[string]any
	if code := getJSON(t, s.URL()+"/v2/pods", &defs); code != http.StatusOK || len(defs) != 1 {
		t.Errorf("GET /v2/pods = %d, %d pods", code, len(defs))
	}
}

func isPodStatus(m map[string]any) bool {
	_, spec := m["spec"]
	_, instances := m["instances"]
	_, id := m["id"]
	return spec && instances && id
}

// podRAML returns the property names of the pod RAML types.
func podRAML(t *testing.T, root string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\s+([A-Za-z_]+)\??:`)
	out := map[string]bool{}
	for _, p := range []string{"pod.raml", "podStatus.raml", "podContainer.raml", "network.raml", "healthCheck.raml"} {
		data, err := os.ReadFile(filepath.Join(root, "mesosphere-marathon/docs/docs/rest-api/public/api/v2/types", p))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			out[string(m[1])] = true
		}
	}
	return out
}

// TestPodShapeMatchesUpstream checks that every key path of the
// simulator's PodStatus occurs in the real pod statuses of the DC/OS UI
// fixtures, or is a pod RAML property under a known parent.
func TestPodShapeMatchesUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	upstream := readJSONFiles(t, globJSON(t, root, "dcos-dcos-ui")...)
	want := map[string]bool{}
	var rs []map[string]any
	for _, d := range upstream {
		roots(d, isPodStatus, &rs)
	}
	for _, r := range rs {
		keyPaths(r, "", want, func(map[string]any) bool { return false })
	}
	if len(want) < 40 {
		t.Fatalf("too few upstream pod paths: %d", len(want))
	}
	s := newDemo(t)
	got := map[string]bool{}
	for _, p := range fetch(t, s.URL()+"/v2/pods/::status").([]any) {
		keyPaths(p, "", got, func(map[string]any) bool { return false })
	}
	if bad := unknownPaths(got, want, podRAML(t, root)); len(bad) > 0 {
		t.Errorf("pod status keys not in upstream pods or RAML: %v", bad)
	}
}

// TestPodEventShapeMatchesUpstream drives every pod control method and
// checks the events against the examples of docs/docs/event-bus.md.
func TestPodEventShapeMatchesUpstream(t *testing.T) {
	root := upstreamtest.Dir(t)
	want := eventExamples(t, root)
	extra := map[string]map[string]bool{
		"status_update_event": {".ipAddresses": true, ".ipAddresses[].ipAddress": true, ".ipAddresses[].protocol": true},
		"deployment_success":  {".plan": true, ".plan.id": true, ".plan.steps": true, ".plan.steps[].action": true, ".plan.steps[].app": true, ".plan.version": true},
	}
	s := newDemo(t)
	st := openStream(t, s.URL()+"/v2/events")
	spec := marathontest.PodSpec{ID: "/p", Instances: 1, HealthChecks: true, Containers: []marathontest.ContainerSpec{
		{Name: "a", Endpoints: []marathontest.EndpointSpec{{Name: "e", Labels: map[string]string{"VIP_0": "/p:80"}}}}, {Name: "b"}}}
	if err := s.AddPod(spec); err != nil {
		t.Fatal(err)
	}
	if err := s.ScalePod("/p", 2); err != nil {
		t.Fatal(err)
	}
	ins, _ := s.PodInstances("/p")
	if err := s.SetPodHealth(ins[0].ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.KillPodInstance(ins[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePod("/p"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for seen["pod_deleted_event"] == 0 || seen["instance_changed_event"] < 4 {
		typ, m := st.event()
		seen[typ]++
		got := map[string]bool{}
		keyPaths(m, "", got, func(map[string]any) bool { return false })
		for p := range got {
			if !want[typ][p] && !extra[typ][p] {
				t.Errorf("%s key %s not in upstream examples", typ, p)
			}
		}
		if typ == "status_update_event" && !strings.HasPrefix(m["taskId"].(string), "p.instance-") {
			t.Errorf("status_update_event taskId %v, want <pod>.instance-<uuid>.<container>", m["taskId"])
		}
	}
	for _, typ := range []string{"pod_created_event", "pod_updated_event", "pod_deleted_event", "instance_health_changed_event", "status_update_event"} {
		if seen[typ] == 0 {
			t.Errorf("no %s among %v", typ, seen)
		}
	}
}

package httpapi

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
	"github.com/vipbridge/vipbridge/lb"
)

// fakeDataplane reports the states it holds.
type fakeDataplane map[discovery.VIPKey][]lb.ServiceState

func (f fakeDataplane) State() map[discovery.VIPKey][]lb.ServiceState { return f }

func TestDataplaneState(t *testing.T) {
	table := testTable(t)
	if table.VIPs.Len() < 2 {
		t.Fatalf("testTable has %d VIPs, want at least 2", table.VIPs.Len())
	}
	first, second := table.VIPs.At(0).Key, table.VIPs.At(1).Key
	addr := netip.MustParseAddrPort("11.0.0.1:80")
	dp := fakeDataplane{
		first: {{Protocol: first.Protocol, Addr: addr, Status: lb.StatusProgrammed},
			{Protocol: first.Protocol, Addr: addr, Status: lb.StatusError, Reason: "file exists"}},
	}
	srv, _ := newTestServer(t, Config{Dataplane: dp})

	_, body := do(t, srv, "GET", "/v1/vips")
	var vips []struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &vips); err != nil {
		t.Fatalf("decode /v1/vips: %v\n%s", err, body)
	}
	if vips[0].State != "error" || vips[0].Reason != "file exists" {
		t.Errorf("/v1/vips[0] state = %q %q, want the worst service's: error \"file exists\"", vips[0].State, vips[0].Reason)
	}
	if vips[1].State != "pending" {
		t.Errorf("/v1/vips[1] (%v, not applied) state = %q, want pending", second, vips[1].State)
	}

	_, body = do(t, srv, "GET", "/records")
	var records struct {
		VIPs []struct {
			Dataplane *struct {
				Status   string            `json:"status"`
				Services []lb.ServiceState `json:"services"`
			} `json:"dataplane"`
		} `json:"vips"`
	}
	if err := json.Unmarshal(body, &records); err != nil {
		t.Fatalf("decode /records: %v", err)
	}
	if d := records.VIPs[0].Dataplane; d == nil || d.Status != "error" || len(d.Services) != 2 {
		t.Errorf("/records vips[0].dataplane = %+v, want status error with its 2 services", d)
	}

	// Without a dataplane (--lb none) nothing is shown.
	srv, _ = newTestServer(t, Config{})
	_, body = do(t, srv, "GET", "/v1/vips")
	vips = nil
	if err := json.Unmarshal(body, &vips); err != nil {
		t.Fatal(err)
	}
	if vips[0].State != "" {
		t.Errorf("/v1/vips state without a dataplane = %q, want none", vips[0].State)
	}
}

package dnsserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDig asks the server with ISC dig, a client this package does not
// share code with. Under CI=true dig must be installed.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dig not on PATH under CI=true: install dnsutils")
		}
		t.Skip("dig not on PATH: install dnsutils (bind9-dnsutils) to run this test; skipping")
	}
	tbl := testTable(t)
	r := start(t, Config{Tables: newTables(tbl)})
	_, port, err := net.SplitHostPort(r.udp)
	if err != nil {
		t.Fatal(err)
	}
	var bigSRV []string
	for i := range bigPorts {
		bigSRV = append(bigSRV, fmt.Sprintf("0 1 %d big.marathon.l4lb.thisdcos.directory.", 2000+i))
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"A", []string{"foo.marathon.l4lb.thisdcos.directory", "A"}, []string{"{foo.marathon/4}"}},
		{"AAAA", []string{"qux.marathon.l4lb.thisdcos.directory", "AAAA"}, []string{"{qux.marathon/6}"}},
		{"SRV", []string{"_foo._tcp.marathon.l4lb.thisdcos.directory", "SRV"}, []string{
			"0 1 53 foo.marathon.l4lb.thisdcos.directory.",
			"0 1 80 foo.marathon.l4lb.thisdcos.directory.",
		}},
		{"SRV over TCP", []string{"+tcp", "_foo._udp.marathon.l4lb.thisdcos.directory", "SRV"}, []string{
			"0 1 53 foo.marathon.l4lb.thisdcos.directory.",
		}},
		{"dclb alias", []string{"foo.marathon.dclb.thisdcos.directory", "A"}, []string{"{foo.marathon/4}"}},
		{"truncated SRV retried over TCP", []string{"+noedns", "_big._tcp.marathon.l4lb.thisdcos.directory", "SRV"}, bigSRV},
		{"NXDOMAIN", []string{"nope.marathon.l4lb.thisdcos.directory", "A"}, nil},
		{"SOA", []string{"l4lb.thisdcos.directory", "SOA"}, []string{
			"ns.l4lb.thisdcos.directory. hostmaster.l4lb.thisdcos.directory. 7 60 180 86400 5",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"@127.0.0.1", "-p", port, "+short", "+time=5", "+tries=2"}, tt.args...)
			out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			var want, got []string
			for _, w := range tt.want {
				want = append(want, expand(t, tbl, w))
			}
			for _, line := range strings.Split(string(out), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					got = append(got, line)
				}
			}
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Errorf("dig %s:\n got: %s\nwant: %s", strings.Join(args, " "), g, w)
			}
		})
	}
}

package main

import (
	"io"
	"net/netip"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c config)
		wantErr bool
	}{
		{
			name: "run defaults",
			cmd:  "run",
			args: []string{"--marathon", "http://m1:8080/, http://m2:8080"},
			check: func(t *testing.T, c config) {
				if len(c.Marathon) != 2 || c.Marathon[0] != "http://m1:8080" || c.Marathon[1] != "http://m2:8080" {
					t.Errorf("Marathon = %q", c.Marathon)
				}
				if c.DNSAddr != ":53" || c.HTTPAddr != "127.0.0.1:62080" || c.LB != "auto" || c.TTL != 5*time.Second {
					t.Errorf("defaults = dns %q http %q lb %q ttl %v", c.DNSAddr, c.HTTPAddr, c.LB, c.TTL)
				}
				if c.VIPRange != netip.MustParsePrefix("11.0.0.0/8") || c.VIP6Range != netip.MustParsePrefix("fd01:c::/64") {
					t.Errorf("ranges = %v %v", c.VIPRange, c.VIP6Range)
				}
				if c.ResyncInterval != 5*time.Minute {
					t.Errorf("ResyncInterval = %v, want 5m", c.ResyncInterval)
				}
			},
		},
		{
			name: "env sets flags",
			cmd:  "run",
			env: map[string]string{"VIPBRIDGE_MARATHON": "http://m:8080", "VIPBRIDGE_DNS_ADDR": "127.0.0.1:5353",
				"VIPBRIDGE_RESYNC_INTERVAL": "1m", "VIPBRIDGE_LOG_FORMAT": "json", "VIPBRIDGE_DATA_DIR": "/d"},
			check: func(t *testing.T, c config) {
				if c.DNSAddr != "127.0.0.1:5353" || c.ResyncInterval != time.Minute || c.LogFormat != "json" || !c.DataDirSet {
					t.Errorf("got dns %q resync %v format %q dataDirSet %v", c.DNSAddr, c.ResyncInterval, c.LogFormat, c.DataDirSet)
				}
			},
		},
		{
			name: "flag beats env",
			cmd:  "run",
			args: []string{"--marathon", "http://flag:8080"},
			env:  map[string]string{"VIPBRIDGE_MARATHON": "http://env:8080"},
			check: func(t *testing.T, c config) {
				if c.Marathon[0] != "http://flag:8080" {
					t.Errorf("Marathon = %q, want the flag's", c.Marathon)
				}
			},
		},
		{
			name: "demo needs no marathon",
			cmd:  "demo",
			check: func(t *testing.T, c config) {
				if c.DNSAddr != "127.0.0.1:8053" || c.DataDirSet || c.LB != "none" {
					t.Errorf("demo dns %q dataDirSet %v lb %q", c.DNSAddr, c.DataDirSet, c.LB)
				}
			},
		},
		{name: "run needs marathon or mesos", cmd: "run", wantErr: true},
		{
			name: "mesos alone suffices",
			cmd:  "run",
			args: []string{"--mesos", "http://10.0.0.1:5050"},
			check: func(t *testing.T, c config) {
				if len(c.Marathon) != 0 || len(c.Mesos) != 1 {
					t.Errorf("Marathon = %q, Mesos = %q, want no Marathon and one Mesos", c.Marathon, c.Mesos)
				}
			},
		},
		{name: "bad env duration", cmd: "run", args: []string{"--marathon", "http://m"}, env: map[string]string{"VIPBRIDGE_TTL": "soon"}, wantErr: true},
		{name: "v6 range for v4", cmd: "run", args: []string{"--marathon", "http://m", "--vip-range", "fd00::/64"}, wantErr: true},
		{name: "bad log format", cmd: "run", args: []string{"--marathon", "http://m", "--log-format", "xml"}, wantErr: true},
		{name: "unknown dataplane", cmd: "run", args: []string{"--marathon", "http://m", "--lb", "bpf"}, wantErr: true},
		{
			name: "ipvs settings",
			cmd:  "run",
			args: []string{"--marathon", "http://m", "--lb", "ipvs", "--lb-interface", "vb1", "--lb-scheduler", "rr", "--lb-drain", "5s"},
			check: func(t *testing.T, c config) {
				if c.LB != "ipvs" || c.LBInterface != "vb1" || c.LBScheduler != "rr" || c.LBDrain != 5*time.Second {
					t.Errorf("lb %q interface %q scheduler %q drain %v", c.LB, c.LBInterface, c.LBScheduler, c.LBDrain)
				}
			},
		},
		{name: "stray argument", cmd: "run", args: []string{"--marathon", "http://m", "extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.cmd, tt.args, env(tt.env), io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseConfig(%q, %q) error = %v, wantErr %v", tt.cmd, tt.args, err, tt.wantErr)
			}
			if tt.check != nil && err == nil {
				tt.check(t, c)
			}
		})
	}
}

package discovery

import (
	"net/netip"
	"testing"
)

// parseVIPTests seeds FuzzParseVIP as well. Upstream sources: dcos/dcos-net
// apps/dcos_net/test/dcos_net_mesos_listener_tests.erl (vip_labels_test),
// dcos/minuteman testdata/*.json, dcos/dcos
// packages/dcos-integration-test/extra/test_networking.py (IPv6 form).
var parseVIPTests = []struct {
	name    string
	in      string
	want    VIPSpec
	wantErr string
}{
	{name: "named with slash", in: "/foo:80", want: VIPSpec{Name: "/foo", Port: 80}},
	{name: "named without slash", in: "notnet:1234", want: VIPSpec{Name: "notnet", Port: 1234}},
	{name: "group", in: "/mygroup/myapp:10000", want: VIPSpec{Name: "/mygroup/myapp", Port: 10000}},
	{name: "dotted", in: "/api.hello-world:80", want: VIPSpec{Name: "/api.hello-world", Port: 80}},
	{name: "ipv4", in: "1.2.3.4:5000", want: VIPSpec{IP: netip.MustParseAddr("1.2.3.4"), Port: 5000}},
	{name: "ipv6 unbracketed", in: "fd01:c::5:1234", want: VIPSpec{IP: netip.MustParseAddr("fd01:c::5"), Port: 1234}},
	{name: "ipv6 upper case", in: "FD01:C::5:80", want: VIPSpec{IP: netip.MustParseAddr("fd01:c::5"), Port: 80}},
	{name: "legacy tcp ip", in: "tcp://10.22.126.1:5000", want: VIPSpec{IP: netip.MustParseAddr("10.22.126.1"), Port: 5000, Protocol: TCP}},
	{name: "legacy tcp name", in: "tcp://def:80", want: VIPSpec{Name: "def", Port: 80, Protocol: TCP}},
	{name: "legacy udp upper case", in: "UDP://jkl:53", want: VIPSpec{Name: "jkl", Port: 53, Protocol: UDP}},
	{name: "surrounding space", in: " /foo:80\n", want: VIPSpec{Name: "/foo", Port: 80}},
	{name: "max port", in: "a:65535", want: VIPSpec{Name: "a", Port: 65535}},
	{name: "leading zero port", in: "a:080", want: VIPSpec{Name: "a", Port: 80}},
	{name: "name that is not an ip", in: "1.2.3.4.5:80", want: VIPSpec{Name: "1.2.3.4.5", Port: 80}},
	{name: "missing port", in: "missing-port", wantErr: "no colon"},
	{name: "invalid port double colon", in: "invalid-port::1234", wantErr: "colon in name"},
	{name: "port zero", in: "/foo:0", wantErr: "port 0 out of range 1-65535"},
	{name: "port too large", in: "/foo:65536", wantErr: "port 65536 out of range 1-65535"},
	{name: "port huge", in: "/foo:99999999999999999999999", wantErr: "port 99999999999999999999999 out of range 1-65535"},
	{name: "port empty", in: "/foo:", wantErr: "empty port"},
	{name: "port not a number", in: "/foo:http", wantErr: `port "http" is not a number`},
	{name: "port signed", in: "/foo:+80", wantErr: `port "+80" is not a number`},
	{name: "empty name", in: ":80", wantErr: "empty name"},
	{name: "empty value", in: "", wantErr: "no colon"},
	{name: "bracketed ipv6", in: "[fd01::1]:80", wantErr: "bracketed address"},
	{name: "bracketed half", in: "fd01::1]:80", wantErr: "bracketed address"},
	{name: "zone", in: "fe80::1%eth0:80", wantErr: "address with zone"},
	{name: "only slash", in: "/:80", wantErr: "name has no letter or digit"},
	{name: "legacy empty", in: "tcp://:80", wantErr: "empty name"},
	{name: "unknown scheme", in: "http://foo:80", wantErr: "colon in name"},
}

func TestParseVIP(t *testing.T) {
	for _, tt := range parseVIPTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVIP(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseVIP(%q) = %+v, %v, want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVIP(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestVIPSpecString(t *testing.T) {
	tests := []struct {
		name string
		in   VIPSpec
		want string
	}{
		{"named", VIPSpec{Name: "/foo", Port: 80}, "/foo:80"},
		{"ipv4", VIPSpec{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}, "10.0.0.1:80"},
		{"ipv6 unbracketed", VIPSpec{IP: netip.MustParseAddr("fd01:c::5"), Port: 1234}, "fd01:c::5:1234"},
		{"legacy", VIPSpec{Name: "def", Port: 80, Protocol: UDP}, "udp://def:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsVIPKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"VIP_0", "VIP_0", true},
		{"lower vip", "vip", true},
		{"sdk uuid", "VIP_6ab6aef1-9c4a-4c8f-a2b4-2a3b7f0c8a66", true},
		{"legacy", "vip_PORT0", true},
		{"mixed case", "Vip_0", false},
		{"other", "network-scope", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsVIPKey(tt.key); got != tt.want {
				t.Errorf("IsVIPKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func FuzzParseVIP(f *testing.F) {
	for _, tt := range parseVIPTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVIP(s)
		if err != nil {
			return
		}
		if v.Port == 0 {
			t.Fatalf("ParseVIP(%q) = %+v: port 0", s, v)
		}
		if v.IP.IsValid() == (v.Name != "") {
			t.Fatalf("ParseVIP(%q) = %+v: want exactly one of name and IP", s, v)
		}
		if v.Name != "" && NormaliseName(v.Name) == "" {
			t.Fatalf("ParseVIP(%q) = %+v: name without DNS form", s, v)
		}
		back, err := ParseVIP(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip %q → %+v → %q → %+v, %v", s, v, v.String(), back, err)
		}
	})
}

package lb

import "testing"

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		cfgs    []IPVSConfig
		wantErr bool
	}{
		{name: "none", kind: "none"},
		{name: "empty is none", kind: ""},
		{name: "nftables not yet", kind: "nftables", wantErr: true},
		{name: "two ipvs configs", kind: "ipvs", cfgs: []IPVSConfig{{}, {}}, wantErr: true},
		{name: "unknown", kind: "bpf", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.kind, tt.cfgs...)
			if (err != nil) != tt.wantErr {
				t.Errorf("New(%q) error = %v, wantErr %v", tt.kind, err, tt.wantErr)
			}
		})
	}
}

package lb

import (
	"context"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

func TestNoneRecordsLastTable(t *testing.T) {
	var n None
	if n.Last() != nil {
		t.Fatalf("Last() before Apply = %v, want nil", n.Last())
	}
	t1, t2 := &discovery.Table{Generation: 1}, &discovery.Table{Generation: 2}
	for _, tb := range []*discovery.Table{t1, t2} {
		if err := n.Apply(context.Background(), tb); err != nil {
			t.Fatalf("Apply(gen %d) = %v, want nil", tb.Generation, err)
		}
	}
	if n.Last() != t2 || n.Applied() != 2 {
		t.Errorf("Last() = gen %d, Applied() = %d; want gen 2, 2", n.Last().Generation, n.Applied())
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		wantErr bool
	}{
		{name: "none", kind: "none"},
		{name: "empty is none", kind: ""},
		{name: "ipvs not yet", kind: "ipvs", wantErr: true},
		{name: "unknown", kind: "bpf", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.kind)
			if (err != nil) != tt.wantErr {
				t.Errorf("New(%q) error = %v, wantErr %v", tt.kind, err, tt.wantErr)
			}
		})
	}
}

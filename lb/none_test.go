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

package cluster

import (
	"math/rand/v2"
	"testing"

	"github.com/vipbridge/vipbridge/discovery"
)

func TestViewKeepsLastGoodGroup(t *testing.T) {
	v := newView()
	head, _, _ := encodeGroup(vipsOf(1, nil)[:1])
	v.set("vips/n/app0.marathon", head)
	v.build()
	v.set("vips/n/app0.marathon", []byte("not json"))
	v.set("vips/n/bad/s1", []byte("x"))
	v.build()
	if len(v.bad) != 1 || len(v.newBad) != 1 {
		t.Errorf("bad groups = %v, new %v; want app0's", v.bad, v.newBad)
	}
	v.set("vips/n/app0.marathon", []byte("not json"))
	v.build()
	if len(v.newBad) != 0 {
		t.Errorf("a group bad for the same reason again is new: %v", v.newBad)
	}
	tb := v.table()
	if _, ok := tb.VIP(discovery.VIPKey{Protocol: discovery.TCP, Name: "app0.marathon", Port: 80}); !ok {
		t.Errorf("a bad value dropped the group's last good vips")
	}
	if _, err := tb.Lookup("app0.marathon"); err != nil {
		t.Errorf("Lookup(app0.marathon) = %v", err)
	}
}

// The view's incrementally kept order equals a whole sort after any
// sequence of changes, bulk or one by one.
func TestViewOrderEqualsWholeBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := vipsOf(300, nil)
	v := newView()
	for step := range 400 {
		n := 1 + rng.IntN(3)
		if step%50 == 0 {
			n = 120 // a bulk build
		}
		for range n {
			x := all[rng.IntN(len(all))]
			id := groupID(x.Key)
			if rng.IntN(4) == 0 {
				v.set(relVIPs+id, nil)
				continue
			}
			x.Backends = x.Backends[:rng.IntN(len(x.Backends)+1)]
			vips := []discovery.VIP{x}
			if rng.IntN(2) == 0 && x.Key.Name != "" {
				y := x
				y.Key.Protocol = discovery.UDP
				vips = append(vips, y)
			}
			head, _, _ := encodeGroup(vips)
			v.set(relVIPs+id, head)
		}
		v.build()
		var want []discovery.VIP
		for _, g := range v.groups {
			want = append(want, g...)
		}
		if got, w := v.table().String(), discovery.NewTable(want, nil, nil).String(); got != w {
			t.Fatalf("step %d: incremental order\n%s\nwant\n%s", step, got, w)
		}
	}
}

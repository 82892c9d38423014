package cluster

import (
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

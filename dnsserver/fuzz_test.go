package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary messages to Answer: whatever unpacks must get
// a reply with the query's id that packs, and fits 512 octets once
// truncated as ServeDNS does for UDP.
func FuzzAnswer(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatalf("pack seed %v: %v", m, err)
		}
		f.Add(b)
	}
	for _, tt := range answerCases() {
		seed(tt.query())
		q := tt.query()
		q.SetEdns0(1232, true)
		seed(q)
	}
	notify := new(dns.Msg)
	notify.SetNotify(l4lb)
	seed(notify)
	badvers := new(dns.Msg)
	badvers.SetQuestion("foo.marathon."+l4lb, dns.TypeA)
	badvers.SetEdns0(512, false)
	badvers.IsEdns0().SetVersion(1)
	seed(badvers)
	big := new(dns.Msg)
	big.SetQuestion("_big._tcp.marathon."+l4lb, dns.TypeSRV)
	seed(big)
	f.Add([]byte{})
	f.Add(make([]byte, 12))

	s := newTestServer(f, testTable(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return
		}
		m := s.Answer(req)
		if m.Id != req.Id || !m.Response {
			t.Fatalf("reply id %d response %v to query id %d", m.Id, m.Response, req.Id)
		}
		if _, err := m.Pack(); err != nil {
			t.Fatalf("pack reply to %v: %v\nreply: %v", req, err, m)
		}
		m.Truncate(udpLimit(req))
		out, err := m.Pack()
		if err != nil {
			t.Fatalf("pack truncated reply to %v: %v", req, err)
		}
		if limit := udpLimit(req); len(out) > limit {
			t.Fatalf("truncated reply is %d octets, limit %d", len(out), limit)
		}
	})
}

package httpapi

// /v1/hosts and /v1/services: names resolved by asking the DNS server, so
// that every zone and every naming rule is answered exactly as DNS answers
// it, in mesos-dns's shapes (UPSTREAM.md §3.3, §3.5).

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/miekg/dns"
)

// Resolver answers a DNS query as vipbridge's DNS server does.
// *dnsserver.Server satisfies it; it must not modify req.
type Resolver interface {
	Answer(req *dns.Msg) *dns.Msg
}

// v1Host is one element of GET /v1/hosts/{host}, mesos-dns's shape.
type v1Host struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// v1Service is one element of GET /v1/services/{service}, mesos-dns's
// shape: the port is a string, IP empty when the target has no address.
type v1Service struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// v1Hosts serves GET /v1/hosts/{host}: one element per A and AAAA record
// DNS answers for the name, host being the name asked, lower case and fully
// qualified; a name without addresses gives one all-empty element, as
// mesos-dns does.
func (a *api) v1Hosts(w http.ResponseWriter, r *http.Request) {
	var out []v1Host
	if name, ok := queryName(mux.Vars(r)["host"]); ok {
		for _, qtype := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
			for _, rr := range a.ask(name, qtype).Answer {
				if ip := addrOf(rr); ip != "" {
					out = append(out, v1Host{Host: name, IP: ip})
				}
			}
		}
	}
	if len(out) == 0 {
		out = []v1Host{{}}
	}
	writeJSON(w, http.StatusOK, out)
}

// v1Services serves GET /v1/services/{service}: one element per SRV record
// DNS answers for the name, service being the name as asked, host the
// target (fully qualified) and ip the target's first IPv4 address, else
// its first IPv6 one (mesos-dns shows IPv4 only). A name without SRV
// records gives one all-empty element, as mesos-dns does.
func (a *api) v1Services(w http.ResponseWriter, r *http.Request) {
	asked := mux.Vars(r)["service"]
	var out []v1Service
	if name, ok := queryName(asked); ok {
		resp := a.ask(name, dns.TypeSRV)
		ips := map[string]string{}
		for _, rr := range resp.Answer {
			srv, ok := rr.(*dns.SRV)
			if !ok {
				continue
			}
			target := strings.ToLower(srv.Target)
			ip, seen := ips[target]
			if !seen {
				ip = a.targetAddr(target, resp.Extra)
				ips[target] = ip
			}
			out = append(out, v1Service{Service: asked, Host: srv.Target, IP: ip, Port: strconv.Itoa(int(srv.Port))})
		}
	}
	if len(out) == 0 {
		out = []v1Service{{}}
	}
	writeJSON(w, http.StatusOK, out)
}

// targetAddr returns an address of an SRV target: from the reply's
// additional section when DNS put one there, else by asking DNS; IPv4
// first. "" when the target has none.
func (a *api) targetAddr(target string, extra []dns.RR) string {
	for _, qtype := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range extra {
			if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, target) {
				return addrOf(rr)
			}
		}
	}
	for _, qtype := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range a.ask(target, qtype).Answer {
			if ip := addrOf(rr); ip != "" {
				return ip
			}
		}
	}
	return ""
}

// ask sends one recursive query for name and qtype to the resolver and
// returns the reply; a reply with an error rcode, or none, is an empty
// message.
func (a *api) ask(name string, qtype uint16) *dns.Msg {
	if a.resolver == nil {
		return &dns.Msg{}
	}
	req := new(dns.Msg)
	req.SetQuestion(name, qtype) // recursion desired: names outside our zones are forwarded
	resp := a.resolver.Answer(req)
	if resp == nil || resp.Rcode != dns.RcodeSuccess {
		return &dns.Msg{}
	}
	return resp
}

// queryName turns a path parameter into the name to ask: mesos-dns's
// clean-up (".*" wildcards removed, lower case, trailing dot added), then
// only names DNS can carry (RFC 1035 §2.3.4: labels of at most 63 octets,
// at most 255 in all).
func queryName(s string) (string, bool) {
	if len(s) > maxNameLen {
		return "", false
	}
	s = strings.ToLower(strings.ReplaceAll(s, ".*", ""))
	if !dns.IsFqdn(s) {
		s += "."
	}
	if _, ok := dns.IsDomainName(s); !ok || s == "." {
		return "", false
	}
	return s, true
}

// addrOf returns the address of an A or AAAA record, "" for other types.
func addrOf(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	}
	return ""
}

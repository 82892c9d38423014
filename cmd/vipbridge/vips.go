package main

// `vipbridge vips [NAME]`: a running daemon's VIP table in the shape of
// `ipvsadm -Ln`, read from its HTTP API (GET /records, /records/{name}).

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// vipsDoc is the part of GET /records and GET /records/{name} that
// `vipbridge vips` prints (httpapi's vipDoc).
type vipsDoc struct {
	Stale bool      `json:"stale"`
	VIPs  []vipsVIP `json:"vips"`
}

// vipsVIP is one VIP: its table side and, with a dataplane, its kernel side.
type vipsVIP struct {
	VIP       string         `json:"vip"`
	Protocol  string         `json:"protocol"`
	Addresses []string       `json:"addresses"`
	Backends  []vipsBackend  `json:"backends"`
	Dataplane *vipsDataplane `json:"dataplane"`
}

// vipsBackend is a backend as the table has it.
type vipsBackend struct {
	IP     string `json:"ip"`
	Port   uint16 `json:"port"`
	Weight int    `json:"weight"`
	TaskID string `json:"task_id"`
}

// vipsDataplane is the kernel's side of a VIP; absent with --lb none.
type vipsDataplane struct {
	Status   string        `json:"status"`
	Reason   string        `json:"reason"`
	Services []vipsService `json:"services"`
}

// vipsService is one IPVS service of a VIP (one per address).
type vipsService struct {
	Addr      netip.AddrPort      `json:"addr"`
	Scheduler string              `json:"scheduler"`
	Status    string              `json:"status"`
	Reason    string              `json:"reason"`
	Backends  []vipsKernelBackend `json:"backends"`
}

// vipsKernelBackend is a destination as the kernel has it, with IPVS's
// connection counts.
type vipsKernelBackend struct {
	Addr          netip.AddrPort `json:"addr"`
	Weight        int            `json:"weight"`
	ActiveConns   int            `json:"active_conns"`
	InactiveConns int            `json:"inactive_conns"`
	Draining      bool           `json:"draining"`
}

// runVIPs is `vipbridge vips [--http-addr ADDR] [NAME]`. NAME is a VIP
// name as an FQDN (l4lb.thisdcos.directory or the dclb alias) or in its
// short form "<name>.<framework>"; without it every VIP is printed.
func runVIPs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vips", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vipbridge vips [flags] [NAME]\n\nPrints a running daemon's VIPs as ipvsadm -Ln does; NAME is a VIP name, full (web.marathon.l4lb.thisdcos.directory) or short (web.marathon).")
		fs.PrintDefaults()
	}
	addr := fs.String("http-addr", "127.0.0.1:62080", "HTTP API address of the running daemon")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	path := "/records"
	if fs.NArg() > 0 { // flags may follow NAME too
		path += "/" + url.PathEscape(fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("vips: unexpected arguments %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	doc, err := fetchVIPs(ctx, "http://"+*addr+path)
	if err != nil {
		return err
	}
	return printVIPs(stdout, doc)
}

// fetchVIPs reads one /records document; a 404 means no VIP has the name.
func fetchVIPs(ctx context.Context, endpoint string) (vipsDoc, error) {
	var doc vipsDoc
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return doc, fmt.Errorf("vips: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return doc, fmt.Errorf("fetch vips: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return doc, fmt.Errorf("fetch vips from %s: no VIP of that name", endpoint)
	default:
		return doc, fmt.Errorf("fetch vips from %s: %s", endpoint, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return doc, fmt.Errorf("decode vips from %s: %w", endpoint, err)
	}
	return doc, nil
}

// printVIPs writes doc as ipvsadm -Ln does: one line per service (VIP
// address, port and protocol), then one per backend. Each service line
// also names its VIP and its dataplane state. With a dataplane, the
// backends are the kernel's, with IPVS's connection counts and draining
// ones marked; without (--lb none), they are the table's, and the
// scheduler and counts are "-".
func printVIPs(w io.Writer, doc vipsDoc) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "Prot LocalAddress:Port Scheduler State VIP")
	fmt.Fprintf(bw, backendFormat, "RemoteAddress:Port", "Weight", "ActiveConn", "InActConn", "Task")
	vips := slices.Clone(doc.VIPs)
	slices.SortFunc(vips, func(a, b vipsVIP) int {
		return cmp.Or(strings.Compare(a.VIP, b.VIP), strings.Compare(a.Protocol, b.Protocol))
	})
	kernel := false
	for _, v := range vips {
		kernel = kernel || v.Dataplane != nil
		for _, s := range vipServices(v) {
			printService(bw, v, s)
		}
	}
	if len(vips) > 0 && !kernel {
		fmt.Fprintln(bw, "(dataplane none: weights are the table's; no scheduler or connection counts)")
	}
	if doc.Stale {
		fmt.Fprintln(bw, "(stale: a source has not synced; this is the last known state)")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("print vips: %w", err)
	}
	return nil
}

// backendFormat is a backend line, in ipvsadm -Ln's columns.
const backendFormat = "  -> %-28s %-6v %-10v %-9v %s\n"

// vipServices returns the services of v, one per address: the kernel's
// when the dataplane reports them, else one per address of the table.
func vipServices(v vipsVIP) []vipsService {
	if v.Dataplane != nil && len(v.Dataplane.Services) > 0 {
		return v.Dataplane.Services
	}
	var port uint16
	if i := strings.LastIndexByte(v.VIP, ':'); i >= 0 {
		if p, err := strconv.ParseUint(v.VIP[i+1:], 10, 16); err == nil {
			port = uint16(p)
		}
	}
	var out []vipsService
	for _, a := range v.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		s := vipsService{Addr: netip.AddrPortFrom(ip, port), Status: "-"}
		if v.Dataplane != nil {
			s.Status, s.Reason = v.Dataplane.Status, v.Dataplane.Reason
		}
		out = append(out, s)
	}
	return out
}

// printService writes one service line and its backends' lines.
func printService(w io.Writer, v vipsVIP, s vipsService) {
	state := s.Status
	if s.Reason != "" {
		state += " (" + s.Reason + ")"
	}
	fmt.Fprintf(w, "%-4s %s %s %s %s\n", strings.ToUpper(v.Protocol), s.Addr, dash(s.Scheduler), state, v.VIP)
	tasks := map[netip.AddrPort]string{}
	for _, b := range v.Backends {
		if ip, err := netip.ParseAddr(b.IP); err == nil {
			tasks[netip.AddrPortFrom(ip, b.Port)] = b.TaskID
		}
	}
	if v.Dataplane != nil {
		for _, b := range s.Backends {
			task := dash(tasks[b.Addr])
			if b.Draining {
				task += " (draining)"
			}
			fmt.Fprintf(w, backendFormat, b.Addr, b.Weight, b.ActiveConns, b.InactiveConns, task)
		}
		return
	}
	for _, b := range v.Backends {
		ip, err := netip.ParseAddr(b.IP)
		if err != nil || ip.Unmap().Is4() != s.Addr.Addr().Unmap().Is4() {
			continue // IPVS has no IPv4 backends behind IPv6 services, nor the reverse
		}
		fmt.Fprintf(w, backendFormat, netip.AddrPortFrom(ip, b.Port), b.Weight, "-", "-", dash(b.TaskID))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

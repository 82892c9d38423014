package discovery

// The task zones' names: NamesConfig and the two entry points the Table's
// records index is built from, AppRecords and ClusterRecords, with the
// buffer a task's records are written into. The rules are mesos-dns's
// (names_mesos.go) and dcos-dns's (names_dcos.go).

import (
	"fmt"
	"net/netip"
)

// NamesConfig configures the names of the task zones.
type NamesConfig struct {
	// IPSources are mesos-dns's IPSources, in order: "host", "netinfo",
	// "docker", "mesos". Empty means host, netinfo (DC/OS's setting).
	IPSources []string
	// EnforceRFC952 normalises labels as RFC 952 (mesos-dns's
	// EnforceRFC952) instead of RFC 1123.
	EnforceRFC952 bool
	// LongestDomain is the longest domain DNS serves a task zone under,
	// without the trailing dot. A record whose name (or SRV target) would
	// not fit under it in 255 octets is skipped. Empty means
	// "mesos.thisdcos.directory".
	LongestDomain string
}

// Validate reports a configuration AppRecords cannot follow: an unknown IP
// source.
func (c NamesConfig) Validate() error {
	for _, s := range c.IPSources {
		if _, ok := parseIPSource(s); !ok {
			return fmt.Errorf("unknown IP source %q: want host, netinfo, docker or mesos", s)
		}
	}
	if c.maxName() < 1 {
		return fmt.Errorf("domain %q is too long for any name under it", c.LongestDomain)
	}
	return nil
}

// ipSource is one of mesos-dns's IPSources.
type ipSource uint8

const (
	sourceHost    ipSource = iota + 1 // the agent's address
	sourceNetinfo                     // Task.IPs: the status' network_infos
	sourceDocker                      // Task.DockerIP
	sourceMesos                       // Task.MesosIP
)

func parseIPSource(s string) (ipSource, bool) {
	switch s {
	case "host":
		return sourceHost, true
	case "netinfo":
		return sourceNetinfo, true
	case "docker":
		return sourceDocker, true
	case "mesos":
		return sourceMesos, true
	}
	return 0, false
}

// ipSources returns the configured sources (unknown ones ignored: Validate
// reports them).
func (c NamesConfig) ipSources() []ipSource {
	if len(c.IPSources) == 0 {
		return []ipSource{sourceHost, sourceNetinfo}
	}
	out := make([]ipSource, 0, len(c.IPSources))
	for _, s := range c.IPSources {
		if src, ok := parseIPSource(s); ok {
			out = append(out, src)
		}
	}
	return out
}

// maxName is the longest zone-relative name that fits under LongestDomain:
// a name n is served as n + "." + domain + ".", which takes
// len(n) + len(domain) + 3 octets on the wire (RFC 1035 section 3.1).
func (c NamesConfig) maxName() int {
	d := c.LongestDomain
	if d == "" {
		d = "mesos.thisdcos.directory"
	}
	return 255 - 3 - len(d)
}

// AppRecords returns the records the running tasks of app give the task
// zones, one TaskRecords per task that has any. known reports whether an
// agent ID is registered with the master (mesos-dns names only tasks on
// known agents); nil knows every agent.
//
// A record whose name or target is not a DNS name that can be asked (a
// label longer than 63 octets, as mesos-dns's canonical names can be; an
// empty label; a character outside a-z, 0-9, '-' and '_', as a raw
// DiscoveryInfo name can hold; a name too long for LongestDomain) is
// skipped and counted in TaskRecords.Skipped. A TaskRecords may repeat a
// record (mesos-dns's rules can make one twice); the Table drops repeats.
func (c NamesConfig) AppRecords(app *App, known func(agentID string) bool) []*TaskRecords {
	var out []*TaskRecords
	var n *appNamer
	for i := range app.Tasks {
		t := &app.Tasks[i]
		if t.State != TaskRunning || known != nil && !known(t.AgentID) {
			continue
		}
		if n == nil {
			n = newAppNamer(c, app)
		}
		if tr := n.taskRecords(t); tr != nil {
			out = append(out, tr)
		}
	}
	return out
}

// ClusterRecords returns the records of the cluster itself: leader,
// masters, frameworks and agents (ZoneMesos), leader and master (ZoneDCOS).
// A framework whose name gives no valid DNS name is left out.
func (c NamesConfig) ClusterRecords(cl *Cluster) []ZoneRecord {
	if cl == nil {
		return nil
	}
	recs := c.mesosClusterRecords(nil, cl)
	return dcosClusterRecords(recs, cl)
}

// appNamer makes the records of one app's tasks; it is made once per
// AppRecords call, holding what all the app's tasks share.
type appNamer struct {
	sources []ipSource
	rfc952  bool
	app     *App
	// fw is the framework's mesos-dns name (DomainFrag), dcosFW its
	// dcos-dns label.
	fw, dcosFW string
	// For a Marathon app: its task name (also its DiscoveryInfo name),
	// that name's mesos-dns label and its dcos-dns label.
	marathonName, marathonLabel, marathonDCOS string
	// hashTail is the scratch for "-<hash>-<agent tail>"; di for a
	// Marathon task's DiscoveryInfo ports.
	hashTail []byte
	di       []DiscoveryPort
	b        recordsBuf
}

func newAppNamer(c NamesConfig, app *App) *appNamer {
	n := &appNamer{
		sources: c.ipSources(),
		rfc952:  c.EnforceRFC952,
		app:     app,
		fw:      mesosDomainFrag(app.Framework, c.EnforceRFC952),
		dcosFW:  NormaliseLabel(app.Framework),
		// Room for a typical task's names and records, so the scratch
		// grows at most once or twice per app.
		b:        recordsBuf{maxName: c.maxName(), buf: make([]byte, 0, 1024), pending: make([]pendingRecord, 0, 48)},
		hashTail: make([]byte, 0, 128),
	}
	if !app.FromMesos {
		n.marathonName = MarathonTaskName(app.ID)
		n.marathonLabel = mesosLabel(n.marathonName, c.EnforceRFC952)
		n.marathonDCOS = NormaliseLabel(n.marathonName)
		n.di = make([]DiscoveryPort, 0, 2*len(app.Ports))
	}
	return n
}

// taskRecords returns the records of one running task on a known agent,
// or nil when it has none and skipped none.
func (n *appNamer) taskRecords(t *Task) *TaskRecords {
	p := n.parts(t)
	n.mesosRecords(t, &p)
	n.dcosRecords(t, &p)
	tr := &TaskRecords{Framework: n.app.Framework, Name: p.name, ID: t.ID}
	n.b.flush(tr)
	if len(tr.Records) == 0 && tr.Skipped == 0 {
		return nil
	}
	return tr
}

// recordsBuf collects one task's records. Their names are written into one
// byte buffer and become substrings of one string at flush, so a task's
// records cost one string whatever their number, and a name several records
// share is written once.
type recordsBuf struct {
	maxName int
	buf     []byte
	pending []pendingRecord
	skipped int
}

// span is a name written in recordsBuf.buf: buf[off:end].
type span struct{ off, end int }

type pendingRecord struct {
	zone         RecordZone
	typ          RecordType
	name, target span
	addr         netip.Addr
	port         uint16
}

// str appends s to the buffer.
func (b *recordsBuf) str(s string) { b.buf = append(b.buf, s...) }

// from returns the span written since off.
func (b *recordsBuf) from(off int) span { return span{off, len(b.buf)} }

// addAddr adds an A or AAAA record for a, if valid.
func (b *recordsBuf) addAddr(z RecordZone, name span, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if !b.valid(name) {
		b.skipped++
		return
	}
	a = a.Unmap()
	typ := TypeA
	if a.Is6() {
		typ = TypeAAAA
	}
	b.pending = append(b.pending, pendingRecord{zone: z, typ: typ, name: name, addr: a})
}

// addSRV adds an SRV record name → target:port.
func (b *recordsBuf) addSRV(z RecordZone, name, target span, port uint16) {
	if !b.valid(name) || !b.valid(target) {
		b.skipped++
		return
	}
	b.pending = append(b.pending, pendingRecord{zone: z, typ: TypeSRV, name: name, target: target, port: port})
}

// valid reports whether the name at s can be asked over DNS (validName).
func (b *recordsBuf) valid(s span) bool { return validName(b.buf[s.off:s.end], b.maxName) }

// validName reports whether a zone-relative name can be asked over DNS:
// labels of 1 to 63 octets of a-z, 0-9, '-' and '_' (a query is matched
// lower-cased), at most maxName octets in all.
func validName[S ~string | ~[]byte](name S, maxName int) bool {
	if len(name) == 0 || len(name) > maxName {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case isAlnum(c), c == '-', c == '_':
		default:
			return false
		}
		if label++; label > maxLabel {
			return false
		}
	}
	return label > 0
}

// flush moves the pending records into tr and empties the buffer.
func (b *recordsBuf) flush(tr *TaskRecords) {
	tr.Skipped = b.skipped
	if len(b.pending) > 0 {
		s := string(b.buf)
		tr.Records = make([]ZoneRecord, len(b.pending))
		for i, p := range b.pending {
			r := &tr.Records[i]
			r.Zone, r.Type, r.Addr, r.Port = p.zone, p.typ, p.addr, p.port
			r.Name = s[p.name.off:p.name.end]
			if p.typ == TypeSRV {
				r.Target = s[p.target.off:p.target.end]
			}
		}
	}
	b.buf, b.pending, b.skipped = b.buf[:0], b.pending[:0], 0
}

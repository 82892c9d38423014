package main

// The task-name query mix of scripts/bench-dns.sh: dnsperf queries for the
// names of the task zones (mesos-dns's mesos zone, its
// mesos.thisdcos.directory mirror and dcos-dns's autoip names), drawn from
// the zone files the daemon wrote (GET /v1/zone?zone=NAME).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// taskNames are the names of the task mix, each fully qualified.
type taskNames struct {
	mesosOrigin, dcosOrigin, mirrorOrigin string
	// tasks are the task labels with their framework ("app00000-load.marathon"),
	// relative to the mesos origin: each has an A name, an SRV name
	// (_<label>._tcp.<fw>) and a .slave name there.
	tasks []string
	// canonical are the SRV targets of the task SRV names: mesos-dns's
	// <label>-<hash>-<agent>.<fw>, one per task.
	canonical []string
	// autoip are dcos-dns's <label>.<fw>.autoip names.
	autoip []string
}

// readTaskNames reads the mesos zone file (its SOA names the origin), the
// dcos zone file and, if not "", the mirror zone file.
func readTaskNames(mesosFile, dcosFile, mirrorFile string) (*taskNames, error) {
	tn := &taskNames{}
	var err error
	tn.mesosOrigin, err = eachRecord(mesosFile, func(origin string, rr dns.RR) {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			return
		}
		// _<label>._tcp.<fw>.<origin>: a task's SRV name (not .slave's).
		labels := dns.SplitDomainName(strings.TrimSuffix(srv.Hdr.Name, "."+origin))
		if len(labels) != 3 || labels[1] != "_tcp" || !strings.HasPrefix(labels[0], "_") {
			return
		}
		if len(tn.tasks) == 0 || tn.tasks[len(tn.tasks)-1] != labels[0][1:]+"."+labels[2] {
			tn.tasks = append(tn.tasks, labels[0][1:]+"."+labels[2])
		}
		tn.canonical = append(tn.canonical, strings.TrimSuffix(srv.Target, "."+origin))
	})
	if err != nil {
		return nil, err
	}
	tn.dcosOrigin, err = eachRecord(dcosFile, func(origin string, rr dns.RR) {
		if rr.Header().Rrtype != dns.TypeA {
			return
		}
		rel := strings.TrimSuffix(rr.Header().Name, "."+origin)
		if labels := dns.SplitDomainName(rel); len(labels) == 3 && labels[2] == "autoip" &&
			(len(tn.autoip) == 0 || tn.autoip[len(tn.autoip)-1] != rel) {
			tn.autoip = append(tn.autoip, rel)
		}
	})
	if err != nil {
		return nil, err
	}
	if mirrorFile != "" {
		if tn.mirrorOrigin, err = eachRecord(mirrorFile, func(string, dns.RR) {}); err != nil {
			return nil, err
		}
	}
	if len(tn.tasks) == 0 || len(tn.autoip) == 0 {
		return nil, fmt.Errorf("%s, %s: %d task SRV names, %d autoip names; want some of each", mesosFile, dcosFile, len(tn.tasks), len(tn.autoip))
	}
	return tn, nil
}

// eachRecord calls fn with every record of a zone file and the zone's
// origin (the SOA's owner, with its trailing dot), which it returns.
// Records come in file order: a name's records are together.
func eachRecord(file string, fn func(origin string, rr dns.RR)) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var origin string
	zp := dns.NewZoneParser(bufio.NewReaderSize(f, 1<<20), "", file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeSOA {
			origin = rr.Header().Name
			continue
		}
		if origin == "" {
			return "", fmt.Errorf("%s: a record before the SOA", file)
		}
		fn(origin, rr)
	}
	if err := zp.Err(); err != nil {
		return "", fmt.Errorf("parse %s: %w", file, err)
	}
	if origin == "" {
		return "", errors.New(file + ": no SOA")
	}
	return origin, nil
}

// writeTaskQueries writes n dnsperf queries, names drawn with a fixed seed,
// in 20 slots:
//
//	7 (35 %)  A    <task>.<fw>.mesos
//	3 (15 %)  SRV  _<task>._tcp.<fw>.mesos
//	4 (20 %)  A    <task>.<fw>.autoip.dcos.thisdcos.directory
//	2 (10 %)  A    <task>-<hash>-<agent>.<fw>.mesos (canonical)
//	1  (5 %)  A    <task>.<fw>.slave.mesos
//	1  (5 %)  A    <task>.<fw>.mesos.thisdcos.directory (mirror; else .mesos)
//	2 (10 %)  A    a name that does not exist, in .mesos and in autoip (NXDOMAIN)
func writeTaskQueries(w io.Writer, tn *taskNames, n int) error {
	rng := rand.New(rand.NewPCG(3, 4))
	bw := bufio.NewWriter(w)
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	mirror := tn.mirrorOrigin
	if mirror == "" {
		mirror = tn.mesosOrigin
	}
	for i := range n {
		switch r := i % 20; {
		case r < 7:
			fmt.Fprintf(bw, "%s.%s A\n", pick(tn.tasks), tn.mesosOrigin)
		case r < 10:
			fmt.Fprintf(bw, "_%s.%s SRV\n", strings.Replace(pick(tn.tasks), ".", "._tcp.", 1), tn.mesosOrigin)
		case r < 14:
			fmt.Fprintf(bw, "%s.%s A\n", pick(tn.autoip), tn.dcosOrigin)
		case r < 16:
			fmt.Fprintf(bw, "%s.%s A\n", pick(tn.canonical), tn.mesosOrigin)
		case r == 16:
			fmt.Fprintf(bw, "%s.slave.%s A\n", pick(tn.tasks), tn.mesosOrigin)
		case r == 17:
			fmt.Fprintf(bw, "%s.%s A\n", pick(tn.tasks), mirror)
		case r == 18:
			fmt.Fprintf(bw, "missing%06d.marathon.%s A\n", rng.IntN(1000000), tn.mesosOrigin)
		default:
			fmt.Fprintf(bw, "missing%06d.marathon.autoip.%s A\n", rng.IntN(1000000), tn.dcosOrigin)
		}
	}
	return bw.Flush()
}

// taskQueries is `benchzone taskqueries`: the task mix from the zone
// files into out; it reports the names it drew from on stderr.
func taskQueries(mesosFile, dcosFile, mirrorFile string, n int, out string) error {
	tn, err := readTaskNames(mesosFile, dcosFile, mirrorFile)
	if err != nil {
		return err
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := writeTaskQueries(w, tn, n); err != nil {
		w.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "task mix from %d task names (A, SRV, .slave), %d canonical names, %d autoip names\n",
		len(tn.tasks), len(tn.canonical), len(tn.autoip))
	return w.Close()
}

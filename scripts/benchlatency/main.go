// Command benchlatency is the helper of scripts/bench-forward.sh: it asks
// a DNS server the queries of a dnsperf query file one at a time over one
// UDP socket, so that the server is never loaded, and prints the
// percentiles of the round trip:
//
//	benchlatency -server 127.0.0.1:5300 -queries FILE -n 5000
//	→ "p50_us=41.2 p90_us=55.0 p99_us=80.3 answered=5000 lost=0"
//
// The difference between a forwarder's p50 and its upstream's is the
// latency the forwarder adds.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchlatency:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchlatency", flag.ContinueOnError)
	server := fs.String("server", "", "server address, host:port")
	file := fs.String("queries", "", "dnsperf query file: 'name TYPE' per line")
	n := fs.Int("n", 5000, "queries to ask (the file is read round)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || *file == "" {
		return errors.New("-server and -queries are required")
	}
	qs, err := readQueries(*file)
	if err != nil {
		return err
	}
	conn, err := net.Dial("udp", *server)
	if err != nil {
		return err
	}
	defer conn.Close()
	rtts, lost := measure(conn, qs, *n)
	if len(rtts) == 0 {
		return fmt.Errorf("no answer from %s", *server)
	}
	slices.Sort(rtts)
	pct := func(p float64) float64 {
		return float64(rtts[min(len(rtts)-1, int(p*float64(len(rtts))))].Nanoseconds()) / 1e3
	}
	fmt.Printf("p50_us=%.1f p90_us=%.1f p99_us=%.1f answered=%d lost=%d\n", pct(0.5), pct(0.9), pct(0.99), len(rtts), lost)
	return nil
}

// measure asks n queries of qs in turn and returns the round trips of
// those answered within a second.
func measure(conn net.Conn, qs [][]byte, n int) ([]time.Duration, int) {
	var rtts []time.Duration
	lost := 0
	buf := make([]byte, 65535)
	for i := range n {
		q := qs[i%len(qs)]
		id := uint16(i)
		q[0], q[1] = byte(id>>8), byte(id)
		start := time.Now()
		if _, err := conn.Write(q); err != nil {
			lost++
			continue
		}
		_ = conn.SetReadDeadline(start.Add(time.Second))
		for {
			k, err := conn.Read(buf)
			if err != nil {
				lost++
				break
			}
			if k >= 2 && uint16(buf[0])<<8|uint16(buf[1]) == id {
				rtts = append(rtts, time.Since(start))
				break
			}
		}
	}
	return rtts, lost
}

// readQueries packs the queries of a dnsperf query file.
func readQueries(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var qs [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		qtype, ok := dns.StringToType[strings.ToUpper(fields[1])]
		if !ok {
			continue
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(fields[0]), qtype)
		b, err := m.Pack()
		if err != nil {
			return nil, err
		}
		qs = append(qs, b)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return qs, sc.Err()
}

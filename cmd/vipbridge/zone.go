package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// runZone is `vipbridge zone [--zone NAME]`: it prints a zone a running
// daemon serves (the VIP zone unless --zone names another), as an RFC 1035
// master file, from its HTTP API (GET /v1/zone?zone=NAME).
// It asks the daemon rather than opening the data dir because the daemon
// holds the bbolt lock while it runs, and because the served zone is the
// published table, not what the store holds.
func runZone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("zone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:62080", "HTTP API address of the running daemon")
	zone := fs.String("zone", "", "zone to print: l4lb.thisdcos.directory (the default), the mesos domain, mesos.thisdcos.directory or dcos.thisdcos.directory")
	out := fs.String("o", "", "write the zone to this file instead of standard output")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("zone: unexpected arguments %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	endpoint := "http://" + *addr + "/v1/zone"
	if *zone != "" {
		endpoint += "?zone=" + url.QueryEscape(*zone)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return fmt.Errorf("zone: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch zone: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch zone from %s: %s", endpoint, resp.Status)
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("zone: %w", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("fetch zone from %s: %w", endpoint, err)
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		return f.Sync()
	}
	return nil
}

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// summarize appends one row to the file VIPBRIDGE_BENCH_SUMMARY names
// (set by `make bench`, which prints every row in one table at the end:
// scripts/bench-summary.sh), and does nothing when it is unset. A row is
// what was measured, vipbridge's figure, the peer's in the same run (or
// "-"), the goal and whether the figure meets it.
func summarize(tb testing.TB, area, measure, value, peer, goal string, met bool) {
	path := os.Getenv("VIPBRIDGE_BENCH_SUMMARY")
	if path == "" {
		return
	}
	verdict := "not met"
	if met {
		verdict = "met"
	}
	row := strings.Join([]string{area, measure, value, peer, goal, verdict}, "\t")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Errorf("bench summary: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, row); err != nil {
		tb.Errorf("bench summary: %v", err)
	}
}

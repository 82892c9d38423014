package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// control is the loopback HTTP API through which TestBenchPropagation
// drives the simulator in this process (POST only, JSON answers):
//
//	POST /flip?app=ID          marathontest FlipTask(ID):
//	                           {"running": bool, "t0": UnixNano}
//	POST /steady/start?rate=N  EmitSteady(N per second) in the background
//	POST /steady/stop          stops it: {"sent": n}
//	POST /status?n=N           EmitStatus(N), answered once all are queued:
//	                           {"sent": n}
//
// t0 is the wall clock read just before FlipTask writes the flip's events
// to the streams: the instant the benchmark measures from, as it did with
// the simulator in its own process. Processes on one machine share the
// wall clock (CLOCK_REALTIME), so the test subtracts t0 from its own
// time.Now(); only a clock step during a flip would skew that sample.
type control struct {
	sim *marathontest.Server
	ctx context.Context // ends the steady load with the process
	url string
	srv *http.Server

	mu     sync.Mutex
	steady *steadyRun // nil when no steady load runs
}

type steadyRun struct {
	cancel context.CancelFunc
	sent   chan int
}

// startControl serves the control API on addr, which must be a loopback
// address (port 0 picks one); url is where it listens.
func startControl(ctx context.Context, sim *marathontest.Server, addr string) (*control, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("control address %q: not a loopback IP", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	c := &control{sim: sim, ctx: ctx, url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /flip", c.flip)
	mux.HandleFunc("POST /steady/start", c.steadyStart)
	mux.HandleFunc("POST /steady/stop", c.steadyStop)
	mux.HandleFunc("POST /status", c.status)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(ln) //nolint:errcheck // ends with close
	return c, nil
}

// close stops the steady load and the API.
func (c *control) close() {
	c.stopSteady()
	c.srv.Close()
}

func (c *control) flip(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	t0 := time.Now().UnixNano() // wall clock, shared with the test process
	running, err := c.sim.FlipTask(app)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	answer(w, map[string]any{"running": running, "t0": t0})
}

func (c *control) steadyStart(w http.ResponseWriter, r *http.Request) {
	rate, err := positive(r, "rate")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.steady != nil {
		http.Error(w, "steady load already runs", http.StatusConflict)
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	run := &steadyRun{cancel: cancel, sent: make(chan int, 1)}
	go func() { run.sent <- c.sim.EmitSteady(ctx, rate) }()
	c.steady = run
	answer(w, map[string]any{"rate": rate})
}

func (c *control) steadyStop(w http.ResponseWriter, _ *http.Request) {
	answer(w, map[string]any{"sent": c.stopSteady()})
}

// stopSteady ends the steady load, if any, and returns how many updates it
// sent.
func (c *control) stopSteady() int {
	c.mu.Lock()
	run := c.steady
	c.steady = nil
	c.mu.Unlock()
	if run == nil {
		return 0
	}
	run.cancel()
	return <-run.sent
}

func (c *control) status(w http.ResponseWriter, r *http.Request) {
	n, err := positive(r, "n")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer(w, map[string]any{"sent": c.sim.EmitStatus(n)})
}

// positive is the query parameter key as an integer > 0.
func positive(r *http.Request, key string) (int, error) {
	n, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	if n <= 0 {
		return 0, errors.New(key + ": want > 0")
	}
	return n, nil
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a short body
}

// systemd.go: the daemon under systemd's Type=notify (sd_notify(3)):
// READY=1 once the first table is served, STATUS= lines with the VIP count
// and each source's freshness, WATCHDOG=1 from the reconciler's loop and
// STOPPING=1 on the way out. Without NOTIFY_SOCKET it sends nothing.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"

	"github.com/vipbridge/vipbridge/discovery"
)

// statusEvery is how often STATUS= is refreshed between publishes, so that
// "synced 40s ago" does not stand still in `systemctl status`; once ready,
// publishes refresh it at most every statusGap (an event flood publishes
// many tables a second).
const (
	statusEvery = 5 * time.Second
	statusGap   = time.Second
)

// freshness is what the notifier reads of the reconciler.
type freshness interface {
	Table() *discovery.Table
	Status() discovery.Status
	Subscribe() (<-chan struct{}, func())
}

// systemd sends the daemon's state to systemd's notification socket.
type systemd struct {
	log *slog.Logger
	// enabled: NOTIFY_SOCKET is set (systemd started us as Type=notify).
	enabled bool
	// watchdog is WATCHDOG_USEC when systemd expects WATCHDOG=1 from this
	// process, else 0.
	watchdog time.Duration
	now      func() time.Time
}

// newSystemd reads the notify protocol's environment (NOTIFY_SOCKET,
// WATCHDOG_USEC and WATCHDOG_PID).
func newSystemd(log *slog.Logger) *systemd {
	sd := &systemd{log: log.With("component", "systemd"), enabled: os.Getenv("NOTIFY_SOCKET") != "", now: time.Now}
	if !sd.enabled {
		return sd
	}
	wd, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil {
		sd.log.Warn("watchdog settings ignored", "err", err)
	}
	sd.watchdog = wd
	return sd
}

// heartbeat is discovery.Config.Heartbeat: nil without a watchdog, else
// one WATCHDOG=1 per call, which the reconciler's loop makes every
// heartbeatEvery while it is free.
func (sd *systemd) heartbeat() func() {
	if sd.watchdog <= 0 {
		return nil
	}
	return func() { sd.notify(sdnotify.SdNotifyWatchdog) }
}

// heartbeatEvery is half the watchdog timeout, as sd_watchdog_enabled(3)
// advises (0 without a watchdog).
func (sd *systemd) heartbeatEvery() time.Duration { return sd.watchdog / 2 }

// notify sends state; a failure is logged (systemd then acts on the
// missing message: start timeout, watchdog), never fatal.
func (sd *systemd) notify(state string) {
	if _, err := sdnotify.SdNotify(false, state); err != nil {
		sd.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// run sends READY=1 once the servers listen (started closes) and the
// published table holds real state (from the store or a sync of every
// source), STATUS= after publishes (at most every statusGap once ready)
// and every statusEvery, and STOPPING=1 when ctx ends. It returns nil at once when not under systemd.
func (sd *systemd) run(ctx context.Context, rec freshness, started <-chan struct{}) error {
	if !sd.enabled {
		return nil
	}
	published, unsubscribe := rec.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	select {
	case <-started:
	case <-ctx.Done():
		return nil
	}
	ready, last := false, ""
	pub := published // nil while a publish waits out statusGap
	var gap <-chan time.Time
	for {
		st := rec.Status()
		msg := "STATUS=" + sd.statusLine(rec.Table(), st)
		if !ready && st.Loaded {
			ready = true
			msg = sdnotify.SdNotifyReady + "\n" + msg
			sd.log.Info("told systemd ready", "generation", st.Generation)
		}
		if msg != last {
			sd.notify(msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			sd.notify(sdnotify.SdNotifyStopping + "\nSTATUS=stopping")
			return nil
		case <-pub:
			if ready {
				pub, gap = nil, time.After(statusGap)
			}
		case <-gap: // a publish meanwhile is still in published
			pub, gap = published, nil
		case <-tick.C:
		}
	}
}

// statusLine is what `systemctl status` shows: the VIPs served, and each
// source's freshness, e.g.
//
//	serving 12 VIPs (generation 40); marathon synced 3s ago; mesos stale, synced 2m0s ago: fetch state: EOF
func (sd *systemd) statusLine(t *discovery.Table, st discovery.Status) string {
	var b strings.Builder
	switch {
	case st.Loaded:
		fmt.Fprintf(&b, "serving %d VIPs (generation %d)", t.VIPs.Len(), st.Generation)
	default:
		b.WriteString("waiting for the first sync (nothing stored)")
	}
	var names []string
	for name := range st.LastSync {
		names = append(names, name)
	}
	for _, name := range st.StaleSources {
		if _, ok := st.LastSync[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		b.WriteString("; " + name)
		if slices.Contains(st.StaleSources, name) {
			b.WriteString(" stale")
			if _, ok := st.LastSync[name]; ok {
				b.WriteString(",")
			}
		}
		if at, ok := st.LastSync[name]; ok {
			fmt.Fprintf(&b, " synced %s ago", sd.now().Sub(at).Round(time.Second))
		}
		if e := st.LastError[name]; e != "" {
			b.WriteString(": " + oneLine(e, 120))
		}
	}
	return b.String()
}

// oneLine cuts s to its first line and at most n bytes: STATUS= is one line.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

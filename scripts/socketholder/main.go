// Command socketholder plays systemd's part for scripts/bench-restart.sh:
// it holds a service's sockets (as vipbridge.socket does: DNS over UDP and
// TCP on one address, the HTTP API on another), starts the daemon with
// them as descriptors 3, 4 and 5 and LISTEN_FDS set, waits for its READY=1
// on a NOTIFY_SOCKET of its own, and restarts it (SIGTERM, wait, start) as
// `systemctl restart` does, -restarts times, -every apart. With -inherit=false
// it holds nothing: the daemon binds the addresses itself, as without the
// socket unit, for comparison.
//
//	socketholder -dns 127.0.0.1:5353 -http 127.0.0.1:62080 -restarts 5 -every 5s \
//	    -ready FILE -- vipbridge run --marathon ... --dns-addr 127.0.0.1:5353 --http-addr 127.0.0.1:62080
//
// It writes FILE once the first process is ready, prints one line per
// restart (how long the old process took to stop, the new one to be ready)
// and, after the last, keeps the daemon until SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "socketholder:", err)
		os.Exit(1)
	}
}

type options struct {
	dns, http string
	inherit   bool
	restarts  int
	every     time.Duration
	rcvbuf    int
	ready     string
	command   []string
}

func run() error {
	var o options
	flag.StringVar(&o.dns, "dns", "", "DNS address (UDP and TCP) to hold")
	flag.StringVar(&o.http, "http", "", "HTTP API address to hold")
	flag.BoolVar(&o.inherit, "inherit", true, "hold the sockets and pass them (false: the daemon binds them itself)")
	flag.IntVar(&o.restarts, "restarts", 5, "restarts after the first start")
	flag.DurationVar(&o.every, "every", 5*time.Second, "time between restarts (from ready to the next SIGTERM)")
	flag.IntVar(&o.rcvbuf, "rcvbuf", 4<<20, "UDP receive buffer, as vipbridge.socket's ReceiveBuffer= (SO_RCVBUFFORCE)")
	flag.StringVar(&o.ready, "ready", "", "file written once the first process is ready")
	flag.Parse()
	o.command = flag.Args()
	if o.dns == "" || o.http == "" || len(o.command) == 0 {
		return errors.New("usage: socketholder -dns ADDR -http ADDR [flags] -- command args")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var files []*os.File
	if o.inherit {
		var err error
		if files, err = hold(o.dns, o.http, o.rcvbuf); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "socketholder-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		return err
	}
	defer notify.Close()
	msgs := make(chan string, 64)
	go readNotify(notify, msgs)

	for i := 0; ; i++ {
		t0 := time.Now()
		cmd, err := start(o.command, files, notify.LocalAddr().String())
		if err != nil {
			return err
		}
		if err := waitReady(ctx, msgs); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return err
		}
		ready := time.Since(t0)
		if i == 0 {
			fmt.Printf("started, ready in %v\n", ready.Round(time.Millisecond))
			if o.ready != "" {
				if err := os.WriteFile(o.ready, []byte("ready\n"), 0o644); err != nil {
					return err
				}
			}
		} else {
			fmt.Printf("restart %d: ready %v after the old process was gone\n", i, ready.Round(time.Millisecond))
		}
		wait := o.every
		if i == o.restarts {
			wait = 24 * time.Hour // the last one runs until we are told to stop
		}
		select {
		case <-ctx.Done():
			return stopProcess(cmd, nil)
		case <-time.After(wait):
		}
		if err := stopProcess(cmd, msgs); err != nil {
			return err
		}
	}
}

// hold binds UDP and TCP on dns and TCP on http, and returns their
// descriptors in the order the daemon takes them.
func hold(dns, http string, rcvbuf int) ([]*os.File, error) {
	udp, err := net.ListenPacket("udp", dns)
	if err != nil {
		return nil, err
	}
	uf, err := udp.(*net.UDPConn).File()
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(int(uf.Fd()), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		return nil, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	files := []*os.File{uf}
	for _, addr := range []string{dns, http} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// start runs command with files as descriptors 3 and on. LISTEN_PID must
// be the daemon's own PID, which only the child knows: a shell sets it and
// execs the daemon, as systemd sets it between fork and exec.
func start(command []string, files []*os.File, notify string) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	env := append(os.Environ(), "NOTIFY_SOCKET="+notify)
	if len(files) > 0 {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`}, command...)...)
		env = append(env, fmt.Sprintf("LISTEN_FDS=%d", len(files)))
		cmd.ExtraFiles = files
	} else {
		cmd = exec.Command(command[0], command[1:]...)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", command[0], err)
	}
	return cmd, nil
}

func readNotify(c *net.UnixConn, msgs chan<- string) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			close(msgs)
			return
		}
		msgs <- string(buf[:n])
	}
}

// waitReady waits for READY=1, as systemd does for Type=notify.
func waitReady(ctx context.Context, msgs <-chan string) error {
	timeout := time.After(90 * time.Second) // systemd's default TimeoutStartSec
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return errors.New("notify socket closed")
			}
			if strings.Contains(m, "READY=1") {
				return nil
			}
		case <-timeout:
			return errors.New("no READY=1 within 90 s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopProcess sends SIGTERM and waits for the exit, then drops the
// messages the old process left (its STOPPING=1).
func stopProcess(cmd *exec.Cmd, msgs <-chan string) error {
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err := cmd.Wait()
	fmt.Printf("stopped in %v\n", time.Since(t0).Round(time.Millisecond))
	for drained := false; !drained && msgs != nil; {
		select {
		case <-msgs:
		default:
			drained = true
		}
	}
	return err
}

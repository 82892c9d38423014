package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server limits. The API is read-only and answers from memory, so requests
// are small and quick; the write timeout leaves room for a large /records.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
	// drainTimeout bounds how long Run waits for requests in flight
	// after its context ends before closing their connections.
	drainTimeout = 5 * time.Second
)

// Server serves a handler on a listener until its context ends.
//
// It takes a net.Listener rather than an address so that the caller binds
// first: a port already in use fails before anything else starts, and with
// ":0" the caller knows the port (ln.Addr()) before Run.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// NewServer returns a Server for h on ln; log may be nil. Run closes ln.
func NewServer(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "http")
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			// Malformed requests and broken connections are the
			// client's problem: Debug.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
}

// Run serves until ctx ends, then shuts down gracefully: it stops
// accepting, waits up to 5s for requests in flight, closes what remains and
// returns nil. It returns an error only if serving fails. Run may be
// called once.
func (s *Server) Run(ctx context.Context) error {
	addr := s.ln.Addr().String()
	s.log.Info("serving http api", "addr", addr)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", addr, err)
	case <-ctx.Done():
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := s.srv.Shutdown(drain); err != nil {
		s.log.Warn("http api shutdown incomplete, closing connections", "err", err)
		_ = s.srv.Close() // Close reports only listener errors, already seen by Shutdown
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", addr, err)
	}
	return nil
}

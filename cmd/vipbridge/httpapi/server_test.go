package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

func TestServerRunAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, New(Config{Tables: &fakeTables{t: testTable(t)}}), nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	url := "http://" + ln.Addr().String() + "/healthz"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET %s = %d %q, want 200 \"ok\\n\"", url, resp.StatusCode, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("listener still accepts after Run returned")
	}
}

func TestServerRunClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	s := NewServer(ln, http.NotFoundHandler(), nil)
	if err := s.Run(t.Context()); err == nil {
		t.Errorf("Run on a closed listener = nil, want an error")
	}
}

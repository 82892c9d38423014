package marathontest

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// discardWriter is an http.ResponseWriter that drops the body: the
// benchmarks below measure rendering, not a connection.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

var (
	bench10kOnce sync.Once
	bench10k     *Server
	bench10kErr  error
)

// server10k is one simulator with 10,000 apps and 100,000 tasks, shared by
// the benchmarks (starting it takes seconds); it is never closed, the
// process ends with the benchmark run.
func server10k(b *testing.B) *Server {
	bench10kOnce.Do(func() { bench10k, bench10kErr = Start(SizedScenario(10000, 10)) })
	if bench10kErr != nil {
		b.Fatal(bench10kErr)
	}
	return bench10k
}

// benchHandler serves path through the Marathon handler into a discarding
// writer, reporting the body size.
func benchHandler(b *testing.B, s *Server, path string) {
	h := s.marathonHandler(s.nodes[0])
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	var n countWriter
	n.h = http.Header{}
	h.ServeHTTP(&n, req)
	b.SetBytes(n.n)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	}
}

type countWriter struct {
	discardWriter
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkRenderApps10k: GET /v2/apps?embed=apps.tasks for 10,000 apps /
// 100,000 tasks through the HTTP handler (snapshot, render, encode) into
// io.Discard.
func BenchmarkRenderApps10k(b *testing.B) {
	benchHandler(b, server10k(b), "/v2/apps?embed=apps.tasks")
}

// BenchmarkRenderTasks10k: GET /v2/tasks for 100,000 tasks.
func BenchmarkRenderTasks10k(b *testing.B) {
	benchHandler(b, server10k(b), "/v2/tasks")
}

// BenchmarkRenderEvents: building each kind of event payload for a task of
// the demo scenario.
func BenchmarkRenderEvents(b *testing.B) {
	sc, err := LoadScenario("demo")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Start(sc)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := s.c.sortedApps()[0]
	t := a.tasks[0]
	if t.healthy == nil {
		h := true
		t.healthy = &h
	}
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name   string
		render func()
	}{
		{name: "status_update_event", render: func() { s.c.statusUpdateEvent(t, now) }},
		{name: "instance_changed_event", render: func() { s.c.instanceChangedEvent(t, now) }},
		{name: "health events", render: func() { s.c.healthEvents(t, now) }},
		{name: "api_post_event", render: func() { s.c.apiPostEvent(a, "/v2/apps", now) }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tt.render()
			}
		})
	}
}

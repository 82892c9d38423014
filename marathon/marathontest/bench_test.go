package marathontest_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// BenchmarkEmitStatus measures how fast the simulator streams
// status_update_events to one reader that only counts frames: the ceiling
// for benchmarks of the client's event path. The time includes delivery
// of every frame: b.Loop stops the timer when it returns false, and the
// timer runs again until the reader has seen a sentinel sent after them.
func BenchmarkEmitStatus(b *testing.B) {
	sc, err := marathontest.LoadScenario("demo")
	if err != nil {
		b.Fatal(err)
	}
	s := marathontest.NewServer(sc)
	defer s.Close()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v2/events?event_type=status_update_event", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	frames := make(chan int, 1)
	go func() {
		n := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"sentinel"`) {
				break
			}
			if strings.HasPrefix(sc.Text(), "event: ") {
				n++
			}
		}
		frames <- n
	}()
	b.ReportAllocs()
	sent := 0
	for b.Loop() {
		sent += s.EmitStatus(1)
	}
	b.StartTimer() // the frames still queued are part of the work
	s.Emit("status_update_event", []byte(`{"sentinel":true}`))
	got := <-frames - 1 // the sentinel's event line
	b.StopTimer()
	if got != sent {
		b.Errorf("reader saw %d frames, sent %d", got, sent)
	}
}

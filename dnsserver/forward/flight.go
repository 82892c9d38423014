// flight.go: the queries in flight: their bound, the sharing of one
// upstream exchange among identical questions, and loop detection.
package forward

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/miekg/dns"
)

// flightKey identifies the queries that can share one exchange: the cache
// key and the transport (a UDP answer may be truncated, a TCP client must
// get the whole).
type flightKey struct {
	cacheKey
	tcp bool
}

// flight is one upstream exchange in progress; r is set before done
// closes.
type flight struct {
	id   uint16 // the id of the query sent upstream
	done chan struct{}
	r    *dns.Msg
}

// flights are the exchanges in progress.
type flights struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

// do returns the answer of the exchange for k: it joins the one in
// progress, or runs exchange (with the id it must send upstream) and
// shares its answer. loop is true, and nothing is run, when the query with
// id clientID is the query of the exchange in progress come back.
func (fs *flights) do(ctx context.Context, k flightKey, clientID uint16, exchange func(id uint16) *dns.Msg) (r *dns.Msg, loop bool) {
	fs.mu.Lock()
	if fl, ok := fs.m[k]; ok {
		fs.mu.Unlock()
		if fl.id == clientID {
			return nil, true
		}
		select {
		case <-fl.done:
			return fl.r, false
		case <-ctx.Done():
			return nil, false
		}
	}
	fl := &flight{id: uint16(rand.Uint32()), done: make(chan struct{})} // ChaCha8: unpredictable, no system call
	fs.m[k] = fl
	fs.mu.Unlock()

	defer func() {
		fs.mu.Lock()
		delete(fs.m, k)
		fs.mu.Unlock()
		close(fl.done)
	}()
	fl.r = exchange(fl.id)
	return fl.r, false
}

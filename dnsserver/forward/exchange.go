// exchange.go: one query to one upstream over UDP or TCP with miekg/dns's
// client, the check of its answer, and the race of the upstreams dispatch
// picked.
package forward

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Results of one upstream exchange, the result label of the upstream
// metric.
const (
	resultOK        = "ok"        // a good answer
	resultTruncated = "truncated" // a good answer with TC (UDP)
	resultRcode     = "rcode"     // SERVFAIL, REFUSED, ...: the upstream could not answer
	resultBogus     = "bogus"     // not an answer to our query
	resultTimeout   = "timeout"
	resultError     = "error" // network errors
	resultCancelled = "cancelled"
)

// dialer is the part of *dns.Client that exchangeConn uses.
type dialer interface {
	DialContext(ctx context.Context, addr string) (*dns.Conn, error)
	ExchangeWithConnContext(ctx context.Context, m *dns.Msg, co *dns.Conn) (*dns.Msg, time.Duration, error)
}

// exchangeConn is miekg/dns's Client.ExchangeContext, except that
// cancelling ctx ends a read in progress too (miekg/dns only sets the
// deadline of ctx when it starts), so that the upstreams that lost a race
// stop at once.
func exchangeConn(ctx context.Context, c dialer, m *dns.Msg, addr string) (*dns.Msg, error) {
	co, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { _ = co.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	return r, err
}

// exchange asks u the query q (packed: its wire form, shared, read only)
// and classifies the outcome; r is the answer when the result is
// resultOK or resultTruncated. UDP goes through u's shared sockets (a
// socket of its own when the id is taken there), TCP through a connection
// of its own.
func (f *Forwarder) exchange(ctx context.Context, u *upstream, q *dns.Msg, packed []byte, tcp bool) (*dns.Msg, string) {
	r, err := f.send(ctx, u, q, packed, tcp)
	var ne net.Error
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errRaceWon):
		return nil, resultCancelled
	case ctx.Err() != nil || isTimeout(err):
		return nil, resultTimeout
	case errors.As(err, &ne):
		return nil, resultError
	default:
		return nil, resultBogus // a message came but did not parse or answer us
	}
	if !answers(r, q) {
		return nil, resultBogus
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, resultRcode
	}
	if r.Truncated {
		return r, resultTruncated
	}
	return r, resultOK
}

// send is one exchange with u.
func (f *Forwarder) send(ctx context.Context, u *upstream, q *dns.Msg, packed []byte, tcp bool) (*dns.Msg, error) {
	if tcp {
		return exchangeConn(ctx, f.tcp, q.Copy(), u.label) // packing writes to the OPT record
	}
	mc, err := u.mux.conn(ctx)
	if err != nil {
		return nil, err
	}
	b, err := mc.exchange(ctx, packed)
	if errors.Is(err, errIDTaken) {
		return exchangeConn(ctx, f.udp, q.Copy(), u.label)
	}
	if err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, err
	}
	return r, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// answers reports whether r is a response to q: same id, opcode and
// question (name compared without case).
func answers(r, q *dns.Msg) bool {
	if !r.Response || r.Id != q.Id || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// errRaceWon cancels the exchanges that lost the race.
var errRaceWon = errors.New("another upstream answered")

type raceResult struct {
	u      *upstream
	r      *dns.Msg
	result string
}

// race asks every upstream of ups q in parallel and returns the first good
// answer, or nil when all failed. Failures count against their upstream;
// every outcome is counted in the metrics.
func (f *Forwarder) race(ctx context.Context, ups []*upstream, q *dns.Msg, tcp bool) *dns.Msg {
	packed, err := q.Pack() // before any goroutine: packing writes to the OPT record
	if err != nil {
		return nil // the client's question does not pack: nothing to ask
	}
	if len(ups) == 1 {
		res := raceResult{u: ups[0]}
		res.r, res.result = f.exchange(ctx, ups[0], q, packed, tcp)
		return f.score(res)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errRaceWon)
	results := make(chan raceResult, len(ups))
	for _, u := range ups {
		go func() {
			r, result := f.exchange(ctx, u, q, packed, tcp)
			results <- raceResult{u: u, r: r, result: result}
		}()
	}
	var won *dns.Msg
	for range ups {
		if r := f.score(<-results); r != nil && won == nil {
			won = r
			cancel(errRaceWon)
		}
	}
	return won
}

// score counts the outcome of one exchange and returns its answer if good.
func (f *Forwarder) score(res raceResult) *dns.Msg {
	f.metrics.upstream.WithLabelValues(res.u.label, res.result).Inc()
	switch res.result {
	case resultOK, resultTruncated:
		return res.r
	case resultCancelled:
	default:
		res.u.failed(f.now())
	}
	return nil
}

package backend

import (
	"bytes"
	"context"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// flights coalesces identical read-only calls in flight at the same time: the first caller starts an
// upstream call (with retries) in its own goroutine, and every caller, the first included, waits for
// its result or for its own context to end. The shared call runs under a flightCtx: it carries the
// first caller's values (call class, trace) but none of its cancellation, its deadline is the latest
// of every waiter's, and it is canceled only when every waiter has gone. So no caller's cancellation
// or shorter deadline cuts the call short for the others, and a call nobody waits for stops.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one shared upstream call.
type flight struct {
	ctx      *flightCtx
	done     chan struct{} // closed when body, attempts and err are set
	body     []byte
	attempts int
	err      error
	waiters  int // guarded by flights.mu
}

// sendFunc makes the upstream attempts of a call; it returns the body, the number of attempts and the error.
type sendFunc func(context.Context) ([]byte, int, error)

// result is what one caller gets from flights.do.
type result struct {
	body     []byte // the caller's own copy
	attempts int    // upstream attempts made for this caller (0 when it shared another's)
	err      error
	shared   bool // the caller joined another caller's call: one upstream call saved
	left     bool // ctx ended before the result; body and err are unset
}

// do runs fn once for all concurrent callers with the same key.
func (g *flights) do(ctx context.Context, key string, fn sendFunc) (r result) {
	g.mu.Lock()
	f := g.m[key]
	if f != nil && f.ctx.join(ctx) {
		r.shared = true
	} else {
		f = &flight{ctx: newFlightCtx(ctx), done: make(chan struct{})}
		if g.m == nil {
			g.m = map[string]*flight{}
		}
		g.m[key] = f
		go g.run(key, f, fn)
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		r.body, r.err = bytes.Clone(f.body), f.err
		if !r.shared {
			r.attempts = f.attempts
		}
	case <-ctx.Done():
		g.leave(key, f)
		r.left = true
	}
	return r
}

// run makes the shared call and publishes its result.
func (g *flights) run(key string, f *flight, fn sendFunc) {
	body, attempts, err := fn(f.ctx)
	g.mu.Lock()
	if g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
	f.body, f.attempts, f.err = body, attempts, err
	close(f.done)
	f.ctx.cancel(context.Canceled) // stops the deadline timer
}

// leave drops a waiter whose context ended; the last one cancels the shared call.
func (g *flights) leave(key string, f *flight) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	if g.m[key] == f {
		delete(g.m, key)
	}
	f.ctx.cancel(context.Canceled)
}

// flightCtx is the context of a shared call: the values of the first caller, a deadline that moves
// to the latest deadline of any waiter (none if any waiter has none), and cancellation only by cancel.
// Deadline is read at each attempt, so a later joiner's longer deadline extends the retries too.
type flightCtx struct {
	values context.Context
	done   chan struct{}

	mu       sync.Mutex
	deadline time.Time // zero: none
	timer    *time.Timer
	err      error
}

func newFlightCtx(ctx context.Context) *flightCtx {
	f := &flightCtx{values: context.WithoutCancel(ctx), done: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		f.deadline = dl
		f.timer = time.AfterFunc(time.Until(dl), f.expire)
	}
	return f
}

// join extends the deadline to cover ctx's; it reports false when the shared call already ended.
func (f *flightCtx) join(ctx context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false
	}
	dl, ok := ctx.Deadline()
	switch {
	case f.deadline.IsZero():
	case !ok:
		f.deadline = time.Time{}
		f.timer.Stop()
	case dl.After(f.deadline):
		f.deadline = dl
		f.timer.Reset(time.Until(dl))
	}
	return true
}

// expire ends the context at its deadline, unless the deadline moved meanwhile.
func (f *flightCtx) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Checked and canceled under one lock: a waiter joining with a later deadline in between would
	// otherwise see the call canceled for a deadline that no longer holds.
	if f.deadline.IsZero() || time.Now().Before(f.deadline) {
		return
	}
	f.cancelLocked(context.DeadlineExceeded)
}

func (f *flightCtx) cancel(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelLocked(err)
}

// cancelLocked ends the shared call with err; the caller holds f.mu.
func (f *flightCtx) cancelLocked(err error) {
	if f.err != nil {
		return
	}
	f.err = err
	if f.timer != nil {
		f.timer.Stop()
	}
	close(f.done)
}

// Deadline returns the latest deadline of the waiters.
func (f *flightCtx) Deadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deadline, !f.deadline.IsZero()
}

// Done is closed when the deadline passes or every waiter has gone.
func (f *flightCtx) Done() <-chan struct{} { return f.done }

// Err returns context.DeadlineExceeded or context.Canceled once Done is closed.
func (f *flightCtx) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Value returns the first caller's values.
func (f *flightCtx) Value(key any) any { return f.values.Value(key) }

// flightKey identifies identical calls: access key, call class (each spends its own budget share),
// method, and the parameters (action included) in a canonical order.
func flightKey(accessKeyID, class string, post bool, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(url.QueryEscape(accessKeyID))
	b.WriteByte(' ')
	b.WriteString(class)
	if post {
		b.WriteString(" POST ")
	} else {
		b.WriteString(" GET ")
	}
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(params[k]))
	}
	return b.String()
}

package watch

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

// targetKey names one watched id: kind is "" for jobs, else a Kind name.
type targetKey struct{ kind, id string }

// target is one watched id with its watchers and the last state the poller saw.
type target struct {
	key        targetKey
	kind       *Kind // nil for jobs
	watchers   map[*watcher]struct{}
	seen       bool      // described at least once
	lastPolled time.Time // when a Describe answer last covered it
	job        *iaasv1.JobEvent
	res        *resourceState
}

// poller polls every id watched in one account and zone, for all their watchers.
type poller struct {
	h    *Hub
	key  pollerKey
	up   tenant.Caller
	wake chan struct{} // capacity 1: new ids to look at, or the last watcher left

	mu           sync.Mutex
	targets      map[targetKey]*target
	watchers     map[*watcher]struct{}
	interval     time.Duration      // current interval between full rounds
	next         time.Time          // when the next full round starts
	blockedUntil time.Time          // after a failed poll: no calls before then
	failures     int                // consecutive failed rounds
	notice       *iaasv1.PollNotice // while backing off: the notice new watchers get too

	sh        *shared     // nil without Options.Shared
	recording bool        // this round's changes are published (the poller owns the shared lease)
	outbox    []wireState // changes to publish at the end of the round
}

func newPoller(h *Hub, key pollerKey, up tenant.Caller) *poller {
	p := &poller{
		h: h, key: key, up: up, wake: make(chan struct{}, 1),
		targets: map[targetKey]*target{}, watchers: map[*watcher]struct{}{},
		interval: h.opts.MinInterval, next: h.opts.Clock.Now().Add(h.opts.MinInterval),
	}
	if h.opts.Shared != nil {
		p.sh = newShared(p, *h.opts.Shared)
	}
	return p
}

// poke wakes the poll loop without blocking.
func (p *poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the poll loop: a quick look at new ids shortly after they arrive, and full rounds on the
// adaptive schedule. It ends when the Hub closes or the last watcher leaves.
func (p *poller) run() {
	defer p.h.wg.Done()
	if p.sh != nil {
		go p.sh.run()
		defer p.sh.close()
	}
	clock := p.h.opts.Clock
	timer := clock.NewTimer(p.h.opts.MinInterval)
	defer timer.Stop()
	for {
		select {
		case <-p.h.done:
			return
		case <-p.wake:
			if p.h.retire(p) {
				return
			}
			if !p.sleep(p.h.opts.FirstPollDelay) {
				return
			}
			p.mu.Lock()
			blocked := clock.Now().Before(p.blockedUntil)
			p.mu.Unlock()
			if !blocked {
				p.round(true)
			}
		case <-timer.C():
			p.round(false)
		}
		if p.h.retire(p) {
			return
		}
		p.mu.Lock()
		d := p.next.Sub(clock.Now())
		p.mu.Unlock()
		timer.Reset(max(d, 0))
	}
}

// sleep waits d; false when the Hub closed meanwhile.
func (p *poller) sleep(d time.Duration) bool {
	t := p.h.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-p.h.done:
		return false
	}
}

// subscribe registers w: ids already known get their current state at once, new ids trigger a quick
// first look. The caller holds h.mu.
func (p *poller) subscribe(w *watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.p = p
	p.watchers[w] = struct{}{}
	kindName := ""
	if w.kind != nil {
		kindName = w.kind.Name
	}
	fresh := false
	for _, id := range w.ids {
		k := targetKey{kindName, id}
		t := p.targets[k]
		if t == nil {
			t = &target{key: k, kind: w.kind, watchers: map[*watcher]struct{}{}}
			p.targets[k] = t
			fresh = true
		}
		t.watchers[w] = struct{}{}
		if t.seen {
			p.emit(t, w)
		}
	}
	if p.notice != nil && w.remaining > 0 {
		w.deliver(noticeKey, p.notice)
	}
	if fresh {
		p.poke()
	}
}

// unsubscribe releases w's ids; an id nobody watches leaves the batches at once.
func (p *poller) unsubscribe(w *watcher) {
	p.mu.Lock()
	p.detach(w)
	empty := len(p.watchers) == 0
	p.mu.Unlock()
	if empty {
		p.poke()
	}
}

// detach removes w from its targets (dropping targets nobody watches) and from the poller; p.mu is held.
func (p *poller) detach(w *watcher) {
	kindName := ""
	if w.kind != nil {
		kindName = w.kind.Name
	}
	for _, id := range w.ids {
		k := targetKey{kindName, id}
		if t := p.targets[k]; t != nil {
			delete(t.watchers, w)
			if len(t.watchers) == 0 {
				delete(p.targets, k)
			}
		}
	}
	delete(p.watchers, w)
}

// fail ends w with err and detaches it; p.mu is held.
func (p *poller) fail(w *watcher, err error) {
	w.finish(err)
	p.detach(w)
}

// shutdown ends every watch with err and forgets all ids.
func (p *poller) shutdown(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.watchers {
		w.finish(err)
	}
	clear(p.watchers)
	clear(p.targets)
}

// emit queues t's current state to w, and ends w's interest in t when the state is final for it
// (a terminal job; a resource settled in w's target status, or gone). p.mu is held.
func (p *poller) emit(t *target, w *watcher) {
	final := false
	if t.kind == nil {
		w.deliver(t.key.id, t.job)
		final = t.job.GetTerminal()
	} else {
		settled, gone := t.kind.evaluate(t.res, w.target)
		w.deliver(t.key.id, t.kind.event(t.key.id, t.res, settled, gone))
		final = settled || gone
	}
	p.h.stats.events.Add(1)
	if !final {
		return
	}
	delete(t.watchers, w)
	if len(t.watchers) == 0 {
		delete(p.targets, t.key)
	}
	w.remaining--
	if w.remaining <= 0 {
		w.finish(io.EOF)
		delete(p.watchers, w)
	}
}

// batch is one upstream Describe call: up to BatchSize ids of one kind.
type batch struct {
	kind   *Kind // nil for jobs
	ids    []string
	oldest time.Time
}

func (b batch) action() string {
	if b.kind == nil {
		return "DescribeJobs"
	}
	return b.kind.Action
}

// plan groups the targets to poll (only never-seen ones when fresh) into batches, the ids polled
// longest ago first, so that a round cut short by quota serves the starved ids next time.
func (p *poller) plan(fresh bool) []batch {
	groups := map[string][]*target{}
	for k, t := range p.targets {
		if fresh && t.seen {
			continue
		}
		groups[k.kind] = append(groups[k.kind], t)
	}
	var out []batch
	for _, ts := range groups {
		slices.SortFunc(ts, func(a, b *target) int {
			if c := a.lastPolled.Compare(b.lastPolled); c != 0 {
				return c
			}
			return strings.Compare(a.key.id, b.key.id)
		})
		for i := 0; i < len(ts); i += BatchSize {
			chunk := ts[i:min(i+BatchSize, len(ts))]
			ids := make([]string, len(chunk))
			for j, t := range chunk {
				ids[j] = t.key.id
			}
			out = append(out, batch{kind: chunk[0].kind, ids: ids, oldest: chunk[0].lastPolled})
		}
	}
	slices.SortStableFunc(out, func(a, b batch) int {
		if c := a.oldest.Compare(b.oldest); c != 0 {
			return c
		}
		return strings.Compare(a.action(), b.action())
	})
	return out
}

// round polls the planned batches, Concurrency at a time, stopping early on a transient failure, and
// then schedules the next round: back off after a failure (and tell the watchers), otherwise reset to
// MinInterval after changes or grow the interval towards MaxInterval.
func (p *poller) round(fresh bool) {
	var token int64 // the shared lease's token while this replica owns it
	if p.sh != nil {
		alone, owner, tok := p.sh.polling()
		switch {
		case alone: // Redis is down: poll this replica's ids
		case owner:
			token = tok
			if err := p.sh.refreshUnion(); err != nil {
				p.h.opts.Logger.Warn("watch: polling this replica's ids only this round", "zone", p.key.zone, "error", err)
			}
		default: // another replica polls: take the states it published
			if err := p.sh.readStates(!fresh); err != nil {
				p.h.opts.Logger.Warn("watch: reading published states failed; retrying next round", "zone", p.key.zone, "error", err)
			}
			if !fresh {
				p.schedule(false, false, nil)
			}
			return
		}
	}
	p.mu.Lock()
	p.recording, p.outbox = token != 0, nil
	batches := p.plan(fresh)
	naive := p.naiveCalls(batches)
	p.mu.Unlock()
	if len(batches) == 0 {
		if !fresh {
			p.schedule(false, false, nil)
		}
		return
	}
	var (
		stop    atomic.Bool
		calls   atomic.Int64
		changed atomic.Bool
		errMu   sync.Mutex
		roundEr error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, p.h.opts.Concurrency)
	for _, b := range batches {
		sem <- struct{}{}
		if stop.Load() {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ch, n, err := p.poll(b)
			calls.Add(int64(n))
			if ch {
				changed.Store(true)
			}
			if err != nil {
				stop.Store(true)
				errMu.Lock()
				if roundEr == nil || status.Code(err) == codes.ResourceExhausted {
					roundEr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if token != 0 {
		p.mu.Lock()
		out := p.outbox
		p.recording, p.outbox = false, nil
		p.mu.Unlock()
		if len(out) > 0 {
			if err := p.sh.publish(token, out); err != nil {
				p.h.opts.Logger.Warn("watch: states not published to the other replicas", "zone", p.key.zone, "error", err)
			}
		}
	}
	n := calls.Load()
	if saved := naive - n; saved > 0 {
		p.h.stats.saved.Add(saved)
	}
	if fresh {
		p.h.stats.freshRounds.Add(1)
	} else {
		p.h.stats.rounds.Add(1)
		p.h.stats.lastRoundCalls.Store(n)
		for {
			m := p.h.stats.maxRoundCalls.Load()
			if n <= m || p.h.stats.maxRoundCalls.CompareAndSwap(m, n) {
				break
			}
		}
	}
	p.schedule(fresh, changed.Load(), roundEr)
}

// naiveCalls is what the round's batches would cost if every watcher polled its own ids, one call per
// BatchSize ids per watcher, as the SDKs' wait helpers do; the difference from the calls made is the
// batching saving reported in Stats.Saved. Callers hold p.mu.
func (p *poller) naiveCalls(batches []batch) int64 {
	perWatcher := map[*watcher]int{}
	for _, b := range batches {
		kind := ""
		if b.kind != nil {
			kind = b.kind.Name
		}
		for _, id := range b.ids {
			if t := p.targets[targetKey{kind: kind, id: id}]; t != nil {
				for w := range t.watchers {
					perWatcher[w]++
				}
			}
		}
	}
	var n int64
	for _, ids := range perWatcher {
		n += int64((ids + BatchSize - 1) / BatchSize)
	}
	return n
}

// schedule sets the next full round after a round (see round).
func (p *poller) schedule(fresh, changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := &p.h.opts
	now := o.Clock.Now()
	if err != nil {
		if p.h.ctx.Err() != nil {
			return // closing
		}
		p.failures++
		delay := min(o.MaxBackoff, p.jitter(max(o.MinInterval, time.Second)<<min(p.failures-1, 20)))
		if d := retryDelay(err); d > delay {
			delay = min(d, o.MaxBackoff)
		}
		p.next = now.Add(delay)
		p.blockedUntil = p.next
		p.interval = o.MinInterval
		p.notice = &iaasv1.PollNotice{NextPollTime: timestamppb.New(p.next), Reason: noticeReason(err)}
		for w := range p.watchers {
			w.deliver(noticeKey, p.notice)
		}
		p.h.stats.events.Add(int64(len(p.watchers)))
		p.h.opts.Logger.Warn("watch: poll failed; backing off", "zone", p.key.zone, "error", err,
			"failures", p.failures, "next_poll", p.next)
		return
	}
	p.failures, p.notice = 0, nil
	switch {
	case fresh:
		p.interval = o.MinInterval
		p.next = minTime(p.next, now.Add(p.jitter(o.MinInterval)))
	case changed:
		p.interval = o.MinInterval
		p.next = now.Add(p.jitter(p.interval))
	default:
		p.interval = min(o.MaxInterval, time.Duration(float64(p.interval)*o.Growth))
		p.next = now.Add(p.jitter(p.interval))
	}
}

// jitter spreads d uniformly by ±Jitter.
func (p *poller) jitter(d time.Duration) time.Duration {
	j := p.h.opts.Jitter
	if j <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - j + 2*j*rand.Float64()))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// retryDelay returns the RetryInfo delay of err, or 0.
func retryDelay(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// noticeReason says why polling slowed down.
func noticeReason(err error) string {
	st := status.Convert(err)
	msg := clipN(st.Message(), 200)
	switch st.Code() {
	case codes.ResourceExhausted:
		return "quota budget exhausted; polling slowed down: " + msg
	case codes.Unavailable:
		return "upstream unavailable; retrying with backoff: " + msg
	case codes.DeadlineExceeded:
		return "upstream too slow; retrying with backoff: " + msg
	}
	return fmt.Sprintf("upstream error (%s); retrying with backoff: %s", st.Code(), msg)
}

// transient reports whether a poll failure is retried (streams stay open) rather than ending the
// watches of its ids.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal,
		codes.Unknown, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// poll describes one batch and applies the answer. It returns whether any state changed, the number
// of upstream calls, and a transient error that should cut the round short. A batch refused as a
// whole with NOT_FOUND or INVALID_ARGUMENT (one bad id poisons a QingCloud batch) is split in halves
// until the bad ids are alone; other permanent errors end the watches of the batch's ids.
func (p *poller) poll(b batch) (changed bool, calls int, err error) {
	params := map[string]string{"zone": p.key.zone, "limit": strconv.Itoa(BatchSize)}
	name := "jobs"
	if b.kind != nil {
		name = b.kind.IDParam
	} else {
		params["verbose"] = "0" // the only value DescribeJobs supports
	}
	for i, id := range b.ids {
		params[name+"."+strconv.Itoa(i+1)] = id
	}
	data, err := p.call(b.action(), params)
	calls = 1
	if err != nil {
		if transient(err) {
			return false, calls, err
		}
		code := status.Code(err)
		if (code == codes.NotFound || code == codes.InvalidArgument) && len(b.ids) > 1 {
			half := len(b.ids) / 2
			for _, part := range [][]string{b.ids[:half], b.ids[half:]} {
				ch, n, err := p.poll(batch{kind: b.kind, ids: part, oldest: b.oldest})
				changed, calls = changed || ch, calls+n
				if err != nil {
					return changed, calls, err
				}
			}
			return changed, calls, nil
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if code == codes.NotFound {
			p.applyMissing(b, p.h.opts.Clock.Now())
		} else {
			p.failIDs(b, err)
		}
		return true, calls, nil
	}
	now := p.h.opts.Clock.Now()
	if b.kind == nil {
		evs, derr := parseJobs(data)
		if derr != nil {
			return false, calls, status.Error(codes.Unavailable, derr.Error())
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.applyJobs(b, evs, now), calls, nil
	}
	states, derr := b.kind.parseResources(data)
	if derr != nil {
		return false, calls, status.Error(codes.Unavailable, derr.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applyResources(b, states, now), calls, nil
}

// call sends one poll call with the Hub's poll context (call class Poll) and CallTimeout.
func (p *poller) call(action string, params map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(p.h.ctx, p.h.opts.CallTimeout)
	defer cancel()
	p.h.stats.calls.Add(1)
	data, err := p.up.Call(ctx, action, params, false)
	if err != nil {
		p.h.stats.failures.Add(1)
		if p.h.ctx.Err() != nil {
			return nil, status.Error(codes.Canceled, "watch: hub closed")
		}
		if _, ok := status.FromError(err); !ok {
			err = status.Error(codes.Unavailable, err.Error())
		}
	}
	return data, err
}

// applyJobs records a DescribeJobs answer for the ids of b; p.mu is held.
func (p *poller) applyJobs(b batch, evs map[string]*iaasv1.JobEvent, now time.Time) bool {
	changed := false
	for _, id := range b.ids {
		t := p.targets[targetKey{"", id}]
		if t == nil {
			continue // nobody watches it any more
		}
		ev := evs[id]
		if ev == nil {
			p.missingJob(t)
			changed = true
			continue
		}
		t.lastPolled = now
		if t.seen && !jobChanged(t.job.GetJob(), ev.GetJob()) {
			continue
		}
		t.job, t.seen, changed = ev, true, true
		p.record(t, nil)
		for w := range t.watchers {
			p.emit(t, w)
		}
	}
	return changed
}

// applyResources records a Describe answer for the resource ids of b; p.mu is held. An id missing
// from the answer is absent (gone, unless a deletion was awaited).
func (p *poller) applyResources(b batch, states map[string]*resourceState, now time.Time) bool {
	changed := false
	for _, id := range b.ids {
		t := p.targets[targetKey{b.kind.Name, id}]
		if t == nil {
			continue
		}
		s := states[id]
		if s == nil {
			s = &resourceState{}
		}
		t.lastPolled = now
		if t.seen && s.same(t.res) {
			continue
		}
		t.res, t.seen, changed = s, true, true
		p.record(t, nil)
		for w := range t.watchers {
			p.emit(t, w)
		}
	}
	return changed
}

// applyMissing handles a batch of one id refused with NOT_FOUND; p.mu is held.
func (p *poller) applyMissing(b batch, now time.Time) {
	if b.kind == nil {
		for _, id := range b.ids {
			if t := p.targets[targetKey{"", id}]; t != nil {
				p.missingJob(t)
			}
		}
		return
	}
	p.applyResources(b, nil, now)
}

// missingJob ends the watches of a job DescribeJobs does not know; p.mu is held.
func (p *poller) missingJob(t *target) {
	msg := fmt.Sprintf("job %s not found in zone %s: check the job id and the zone", t.key.id, p.key.zone)
	if t.seen {
		msg = fmt.Sprintf("job %s is no longer listed by DescribeJobs in zone %s", t.key.id, p.key.zone)
	}
	err := errNotFound(msg, t.key.id, p.key.zone)
	p.record(t, err)
	for w := range t.watchers {
		p.fail(w, err)
	}
	delete(p.targets, t.key)
}

// failIDs ends the watches of b's ids with a permanent upstream error; p.mu is held.
func (p *poller) failIDs(b batch, err error) {
	kindName := ""
	if b.kind != nil {
		kindName = b.kind.Name
	}
	for _, id := range b.ids {
		if t := p.targets[targetKey{kindName, id}]; t != nil {
			p.record(t, err)
			for w := range t.watchers {
				p.fail(w, err)
			}
		}
	}
}

// record queues t's new state (or err, which ends its watches) for the other replicas, while this
// poller owns the shared lease; p.mu is held.
func (p *poller) record(t *target, err error) {
	if !p.recording {
		return
	}
	if err != nil {
		st := status.Convert(err)
		p.outbox = append(p.outbox, wireState{Kind: t.key.kind, ID: t.key.id, Code: int(st.Code()), Message: st.Message()})
		return
	}
	ws, e := encodeState(t)
	if e != nil {
		p.h.opts.Logger.Warn("watch: a state could not be encoded for the other replicas", "error", e)
		return
	}
	p.outbox = append(p.outbox, ws)
}

// errNotFound is NOT_FOUND naming the job, with an ErrorInfo.
func errNotFound(msg, id, zone string) error {
	return qcerr.New(codes.NotFound, "JOB_NOT_FOUND", msg, map[string]string{"job_id": id, "zone": zone})
}

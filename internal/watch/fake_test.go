package watch

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// fakeUpstream is a scripted DescribeJobs / DescribeVolumes upstream for unit tests.
type fakeUpstream struct {
	mu sync.Mutex
	// jobs maps a job id to its status; absent ids are unknown.
	jobs map[string]string
	// volumes maps a volume id to "status/transition".
	volumes map[string]string
	// rejectUnknown answers NOT_FOUND for a whole batch that names an unknown id (as the
	// QingCloud docs say DescribeJobs does).
	rejectUnknown bool
	// fail, when set, may fail a call before it is answered.
	fail func(n int) error
	// calls records each call: its time and the ids it named.
	calls []fakeCall
	// now is the clock of the call times; nil means time.Now.
	now func() time.Time
}

type fakeCall struct {
	at     time.Time
	action string
	ids    []string
	class  callclass.Class
}

func newFake() *fakeUpstream {
	return &fakeUpstream{jobs: map[string]string{}, volumes: map[string]string{}}
}

func (f *fakeUpstream) set(id, st string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(id, "j-") {
		f.jobs[id] = st
	} else {
		f.volumes[id] = st
	}
}

func (f *fakeUpstream) callLog() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// Call implements Upstream.
func (f *fakeUpstream) Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prefix := map[string]string{"DescribeJobs": "jobs", "DescribeVolumes": "volumes"}[action]
	if prefix == "" {
		return nil, status.Error(codes.Unimplemented, "fake: "+action)
	}
	var ids []string
	for i := 1; ; i++ {
		id, ok := params[prefix+"."+strconv.Itoa(i)]
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	f.calls = append(f.calls, fakeCall{now(), action, ids, callclass.From(ctx)})
	if f.fail != nil {
		if err := f.fail(len(f.calls)); err != nil {
			return nil, err
		}
	}
	if action == "DescribeVolumes" {
		set := []map[string]any{}
		for _, id := range ids {
			if st, ok := f.volumes[id]; ok {
				s, tr, _ := strings.Cut(st, "/")
				set = append(set, map[string]any{"volume_id": id, "status": s, "transition_status": tr, "size": 10})
			}
		}
		return json.Marshal(map[string]any{"action": "DescribeVolumesResponse", "ret_code": 0, "volume_set": set, "total_count": len(set)})
	}
	set := []map[string]any{}
	for _, id := range ids {
		st, ok := f.jobs[id]
		if !ok {
			if f.rejectUnknown {
				return nil, status.Errorf(codes.NotFound, "ResourceNotFound, resource [%s] not found", id)
			}
			continue
		}
		j := map[string]any{"job_id": id, "job_action": "RunInstances", "status": st, "resource_ids": "i-aaaaaaaa i-bbbbbbbb",
			"create_time": "2024-01-02T03:04:05Z", "status_time": "2024-01-02T03:04:06Z"}
		if st == JobFailed || st == JobDoneWithFailure {
			j["error_codes"] = "5000"
		}
		set = append(set, j)
	}
	return json.Marshal(map[string]any{"action": "DescribeJobsResponse", "ret_code": 0, "job_set": set, "total_count": len(set)})
}

// fakeClock is a Clock for tests that cannot run in a synctest bubble: its time stands still while
// no timer is pending, and jumps to the earliest pending timer as soon as there is one (as a bubble's
// clock does once every goroutine is blocked, but without knowing whether they are, so a test may
// only assert what holds whatever the goroutines were doing when the clock jumped).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending map[*fakeTimer]struct{}
	kick    chan struct{} // capacity 1: a timer was armed
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, pending: map[*fakeTimer]struct{}{}, kick: make(chan struct{}, 1)}
}

// Now implements Clock.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements Clock.
func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// run moves the clock from timer to timer until ctx ends.
func (c *fakeClock) run(ctx context.Context) {
	for {
		c.mu.Lock()
		var next *fakeTimer
		for t := range c.pending {
			if next == nil || t.when.Before(next.when) {
				next = t
			}
		}
		if next == nil {
			c.mu.Unlock()
			select {
			case <-c.kick:
				continue
			case <-ctx.Done():
				return
			}
		}
		delete(c.pending, next)
		if next.when.After(c.now) {
			c.now = next.when
		}
		next.ch <- c.now // never blocks: Reset and Stop empty the channel, and a timer fires once per arming
		c.mu.Unlock()
	}
}

// fakeTimer is a Timer of a fakeClock.
type fakeTimer struct {
	c    *fakeClock
	ch   chan time.Time
	when time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.pending[t]
	delete(t.c.pending, t)
	t.drain()
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.pending[t]
	t.drain()
	t.when = t.c.now.Add(d)
	t.c.pending[t] = struct{}{}
	select {
	case t.c.kick <- struct{}{}:
	default:
	}
	return armed
}

// drain discards a time not yet received; t.c.mu is held.
func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

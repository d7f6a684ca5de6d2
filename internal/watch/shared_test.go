package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// sharedHubs starts n Hubs sharing srv, each with its own Redis client, over one upstream (one
// QingCloud account).
func sharedHubs(t *testing.T, srv *redistest.Server, up *fakeUpstream, n int) []*Hub {
	t.Helper()
	var hubs []*Hub
	for i := range n {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		opts := Options{MinInterval: 100 * time.Millisecond, MaxInterval: 300 * time.Millisecond, Jitter: -1,
			Shared: &Shared{Client: c, Replica: fmt.Sprintf("replica-%d", i), LeaseTTL: 3 * time.Second, Timeout: 2 * time.Second}}
		h := NewSingle(up, "pek3a", opts)
		t.Cleanup(h.Close)
		hubs = append(hubs, h)
	}
	return hubs
}

// waitUntil polls cond (an observable state), failing after a generous bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain reads a job watch to its end, recording the statuses seen per job; it returns the final error.
func drain(ctx context.Context, w *Watch[*iaasv1.WatchJobsResponse], seen func(id, st string)) error {
	for {
		m, err := w.Recv(ctx)
		if err != nil {
			return err
		}
		if ev := m.GetJob(); ev != nil {
			seen(ev.GetJob().GetJobId(), ev.GetJob().GetStatus())
		}
	}
}

// TestSharedOnePoller runs three replicas whose watchers follow 300 jobs between them: one replica
// polls the union, ceil(300/100) = 3 DescribeJobs calls per round, and every watcher on every
// replica gets the first state and the terminal one.
func TestSharedOnePoller(t *testing.T) {
	srv := redistest.Start(t)
	up := newFake()
	for i := range 300 {
		up.set(fmt.Sprintf("j-%05d", i), JobWorking)
	}
	hubs := sharedHubs(t, srv, up, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 60 watches per replica of 10 jobs each; replica r covers jobs [100r, 100r+200) mod 300, so
	// every job is watched on two replicas and the union is all 300.
	var (
		mu       sync.Mutex
		first    = map[string]int{}
		terminal = map[string]int{}
		wg       sync.WaitGroup
		errs     = make(chan error, 180)
	)
	for r, h := range hubs {
		for k := range 20 {
			ids := make([]string, 10)
			for j := range ids {
				ids[j] = fmt.Sprintf("j-%05d", (100*r+10*k+j)%300)
			}
			w, err := h.Jobs(ctx, "", ids)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				errs <- drain(ctx, w, func(id, st string) {
					mu.Lock()
					defer mu.Unlock()
					if st == JobWorking {
						first[id]++
					}
					if st == JobSuccessful {
						terminal[id]++
					}
				})
			})
		}
	}
	waitUntil(t, "every watch's first states", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range first {
			n += c
		}
		return n == 600
	})
	// One owner polls; the others make no upstream call.
	var owner *Hub
	waitUntil(t, "an owner's full round of the whole union", func() bool {
		for _, h := range hubs {
			if st := h.Stats(); st.Calls > 0 && st.LastRoundCalls == 3 && st.Jobs == 300 {
				owner = h
				return true
			}
		}
		return false
	})
	before := owner.Stats().Rounds
	waitUntil(t, "two more rounds", func() bool { return owner.Stats().Rounds >= before+2 })
	callsBefore := len(up.callLog())
	waitUntil(t, "one more round", func() bool { return owner.Stats().Rounds >= before+3 })
	for _, h := range hubs {
		st := h.Stats()
		if h != owner && st.Calls != 0 {
			t.Fatalf("a replica that does not own the lease made %d upstream calls", st.Calls)
		}
		if h == owner && (st.LastRoundCalls != 3 || st.MaxRoundCalls > 3) {
			t.Fatalf("owner's rounds: last %d, max %d calls; want 3 (300 jobs / 100)", st.LastRoundCalls, st.MaxRoundCalls)
		}
	}
	// What Redis holds per watched id (docs/scale-out.md quotes this log line).
	rc := srv.Client()
	keys, _ := rc.Keys(ctx, "qcg:*").Result()
	var mem int64
	for _, k := range keys {
		n, _ := rc.MemoryUsage(ctx, k).Result()
		mem += n
	}
	t.Logf("Redis memory: %d keys, %d bytes for 300 jobs watched on 3 replicas (%d bytes per job)", len(keys), mem, mem/300)
	for _, c := range up.callLog()[callsBefore:] {
		if len(c.ids) > BatchSize {
			t.Fatalf("a call named %d ids", len(c.ids))
		}
	}
	for i := range 300 {
		up.set(fmt.Sprintf("j-%05d", i), JobSuccessful)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, io.EOF) {
			t.Fatalf("a watch ended with %v; want io.EOF after every terminal event", err)
		}
	}
	for i := range 300 {
		if id := fmt.Sprintf("j-%05d", i); terminal[id] != 2 {
			t.Fatalf("job %s: %d terminal events, want 2 (one per watching replica)", id, terminal[id])
		}
	}
}

// TestSharedFailover closes the owner: another replica takes the lease and its watchers still get
// every terminal event.
func TestSharedFailover(t *testing.T) {
	srv := redistest.Start(t)
	up := newFake()
	ids := []string{"j-00001", "j-00002", "j-00003"}
	for _, id := range ids {
		up.set(id, JobWorking)
	}
	hubs := sharedHubs(t, srv, up, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ws []*Watch[*iaasv1.WatchJobsResponse]
	for _, h := range hubs {
		w, err := h.Jobs(ctx, "", ids)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
		for range ids {
			if m, err := w.Recv(ctx); err != nil || m.GetJob().GetJob().GetStatus() != JobWorking {
				t.Fatalf("first state: %v, %v", m, err)
			}
		}
	}
	var owner, other int
	waitUntil(t, "an owner", func() bool {
		for i, h := range hubs {
			if h.Stats().Calls > 0 {
				owner, other = i, 1-i
				return true
			}
		}
		return false
	})
	hubs[owner].Close()
	callsBefore := hubs[other].Stats().Calls
	for _, id := range ids {
		up.set(id, JobSuccessful)
	}
	terminal := 0
	for {
		m, err := ws[other].Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the other replica's watch ended with %v", err)
		}
		if m.GetJob().GetJob().GetStatus() == JobSuccessful {
			terminal++
		}
	}
	if terminal != 3 || hubs[other].Stats().Calls == callsBefore {
		t.Fatalf("after the owner left: %d terminal events, calls %d -> %d; want 3 and the survivor polling", terminal, callsBefore, hubs[other].Stats().Calls)
	}
}

// TestSharedRedisDown kills Redis under two replicas: each polls its own ids, the watches go on and
// end normally; the fallback is reported and ends when Redis returns.
func TestSharedRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	up := newFake()
	up.set("j-00001", JobWorking)
	fb := &countingFallback{}
	hubs := sharedHubs(t, srv, up, 2)
	for _, h := range hubs {
		h.opts.Shared.Fallback = fb
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ws []*Watch[*iaasv1.WatchJobsResponse]
	for _, h := range hubs {
		w, err := h.Jobs(ctx, "", []string{"j-00001"})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := w.Recv(ctx); err != nil || m.GetJob().GetJob().GetStatus() != JobWorking {
			t.Fatalf("first state: %v, %v", m, err)
		}
		ws = append(ws, w)
	}
	srv.Kill()
	waitUntil(t, "both replicas polling alone", func() bool { return fb.downs() == 2 })
	before := [2]int64{hubs[0].Stats().Calls, hubs[1].Stats().Calls}
	waitUntil(t, "both replicas polling", func() bool {
		return hubs[0].Stats().Calls > before[0] && hubs[1].Stats().Calls > before[1]
	})
	srv.Restart()
	waitUntil(t, "both replicas rejoining", func() bool { return fb.ups() == 2 })
	up.set("j-00001", JobSuccessful)
	for i, w := range ws {
		m, err := w.Recv(ctx)
		if err != nil || m.GetJob().GetJob().GetStatus() != JobSuccessful {
			t.Fatalf("replica %d: %v, %v; want the terminal state", i, m, err)
		}
		if _, err := w.Recv(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("replica %d: %v, want io.EOF", i, err)
		}
	}
}

// TestSharedFencing checks that an owner whose lease passed to another replica cannot publish.
func TestSharedFencing(t *testing.T) {
	srv := redistest.Start(t)
	hubs := sharedHubs(t, srv, newFake(), 1)
	p := newPoller(hubs[0], pollerKey{"default", "pek3a"}, newFake())
	s := p.sh
	if err := s.lease(); err != nil {
		t.Fatal(err)
	}
	_, owner, token := s.polling()
	if !owner || token <= 0 {
		t.Fatalf("the first replica did not take the lease: owner %v token %d", owner, token)
	}
	// The lease expires (the owner paused) and another replica takes it.
	c := srv.Client()
	if err := c.Del(context.Background(), s.keys.lease).Err(); err != nil {
		t.Fatal(err)
	}
	if tok, err := acquireScript.Run(context.Background(), c, []string{s.keys.lease, s.keys.fence}, "replica-other", 5000).Int64(); err != nil || tok != token+1 {
		t.Fatalf("another replica's token = %d, %v; want %d", tok, err, token+1)
	}
	err := s.publish(token, []wireState{{ID: "j-00001", Code: 5, Message: "x"}})
	if err == nil {
		t.Fatal("a fenced-off owner published")
	}
	if n, _ := c.HLen(context.Background(), s.keys.state).Result(); n != 0 {
		t.Fatalf("the fenced-off owner wrote %d states", n)
	}
	if _, owner, _ := s.polling(); owner {
		t.Fatal("the fenced-off owner still thinks it owns the lease")
	}
}

// FuzzDecodeStates checks that a published message never panics the decoder and that what it accepts
// names valid ids and kinds.
func FuzzDecodeStates(f *testing.F) {
	f.Add([]byte(`[{"i":"j-1","j":"CgA="}]`))
	f.Add([]byte(`{"k":"volume","i":"vol-1","p":true,"s":"available"}`))
	f.Add([]byte(`[{"k":"nope","i":"x"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		states, err := decodeStates(data)
		if err != nil {
			return
		}
		for _, s := range states {
			if !validID(s.ID) || (s.Kind != "" && kindByName[s.Kind] == nil) {
				t.Fatalf("accepted %+v", s)
			}
		}
	})
}

type countingFallback struct {
	mu       sync.Mutex
	down, up int
}

func (c *countingFallback) Down(error) { c.mu.Lock(); c.down++; c.mu.Unlock() }
func (c *countingFallback) Up()        { c.mu.Lock(); c.up++; c.mu.Unlock() }
func (c *countingFallback) downs() int { c.mu.Lock(); defer c.mu.Unlock(); return c.down }
func (c *countingFallback) ups() int   { c.mu.Lock(); defer c.mu.Unlock(); return c.up }

package budget_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// fallback is a budget.Fallback with a fixed share that counts its reports.
type fallback struct {
	share    float64
	down, up atomic.Int32
}

func (f *fallback) Share() float64 { return f.share }
func (f *fallback) Down(error)     { f.down.Add(1) }
func (f *fallback) Up()            { f.up.Add(1) }

// replica makes the budget one replica would have: its own Redis client, the shared key.
func replica(t *testing.T, srv *redistest.Server, cfg budget.Config, fb budget.Fallback, now func() time.Time) *budget.Budget {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	cfg.Shared = &budget.Shared{Client: c, Key: "QYACCESSKEYIDEXAMPLE", Timeout: 5 * time.Second, Fallback: fb}
	cfg.Now = now
	return mustNew(t, cfg)
}

// TestSharedBudgetsAdmitTheLimitOnce floods three replicas' budgets of one key concurrently, with both
// call classes: together they admit exactly the limit, each class within its maximum.
func TestSharedBudgetsAdmitTheLimitOnce(t *testing.T) {
	srv := redistest.Start(t)
	cfg := budget.Config{Limit: 60, Window: time.Minute}
	var budgets []*budget.Budget
	for range 3 {
		budgets = append(budgets, replica(t, srv, cfg, nil, nil))
	}
	var admitted [2]atomic.Int32
	var badWait atomic.Value
	var wg sync.WaitGroup
	for _, b := range budgets {
		for k, class := range []callclass.Class{callclass.User, callclass.Poll} {
			for range 4 {
				wg.Go(func() {
					for range 50 {
						ok, wait := b.Take(class)
						if ok {
							admitted[k].Add(1)
						} else if wait <= 0 || wait > time.Minute+time.Second {
							badWait.Store(wait)
						}
					}
				})
			}
		}
	}
	wg.Wait()
	u, p := int(admitted[0].Load()), int(admitted[1].Load())
	if u+p != 60 || u > 54 || p > 15 {
		t.Fatalf("admitted %d user + %d poll; want 60 in all, at most 54 user and 15 poll", u, p)
	}
	if w := badWait.Load(); w != nil {
		t.Fatalf("a refusal said to retry after %v; want within the window (1m1s)", w)
	}
	st := budgets[0].Stats()
	if !st.Shared || st.Fallback || st.Limit != 60 {
		t.Fatalf("stats %+v; want a shared budget of 60, not in fallback", st)
	}
	// Whatever replica answers last saw the whole log: one more take anywhere is refused and sees 60.
	if ok, _ := budgets[1].Take(callclass.Poll); ok {
		t.Fatal("a 61st request was admitted")
	}
	if st := budgets[1].Stats(); st.Used != 60 || st.Remaining != 0 {
		t.Fatalf("stats after the flood: used %d remaining %d; want 60 and 0", st.Used, st.Remaining)
	}
}

// TestSharedRetryAfter checks the wait of a refusal: the time until the oldest request leaves the
// window, by Redis's clock.
func TestSharedRetryAfter(t *testing.T) {
	srv := redistest.Start(t)
	b := replica(t, srv, budget.Config{Limit: 3, Window: 10 * time.Second, PollReserve: -1, Slack: -1}, nil, nil)
	if n, _ := take(b, callclass.User, 3); n != 3 {
		t.Fatalf("admitted %d of 3", n)
	}
	ok, wait := b.Take(callclass.User)
	if ok || wait <= 8*time.Second || wait > 10*time.Second {
		t.Fatalf("4th take = %v, retry after %v; want refused, about 10 s", ok, wait)
	}
	// The limit binds poll calls too, though they spent nothing.
	if ok, _ := b.Take(callclass.Poll); ok {
		t.Fatal("a poll call was admitted past the limit")
	}
}

// TestSharedKeysNameNoSecret checks what a shared budget stores: two sorted sets under the key's hash
// tag, with an expiry, and nothing naming the access key.
func TestSharedKeysNameNoSecret(t *testing.T) {
	srv := redistest.Start(t)
	b := replica(t, srv, budget.Config{Limit: 10, Window: time.Minute}, nil, nil)
	take(b, callclass.User, 2)
	take(b, callclass.Poll, 1)
	c := srv.Client()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	tag := budget.RedisKeyTag("QYACCESSKEYIDEXAMPLE")
	want := map[string]int64{"qcg:" + tag + ":budget:user": 2, "qcg:" + tag + ":budget:poll": 1}
	if len(keys) != len(want) {
		t.Fatalf("keys %v; want %v", keys, want)
	}
	for k, n := range want {
		if got, _ := c.ZCard(ctx, k).Result(); got != n {
			t.Errorf("ZCARD %s = %d, want %d", k, got, n)
		}
		if ttl, _ := c.PTTL(ctx, k).Result(); ttl <= 0 || ttl > time.Minute+time.Second {
			t.Errorf("PTTL %s = %v; want within the window and its slack", k, ttl)
		}
		if strings.Contains(k, "QYACCESSKEYIDEXAMPLE") {
			t.Errorf("key %s names the access key", k)
		}
	}
}

// TestSharedFallbackAndRejoin kills Redis under three replicas: each falls back to its third of the
// limit (counting what it had admitted through Redis), reports it once, and when Redis returns empty
// copies its requests back, so the shared log again holds the whole window.
func TestSharedFallbackAndRejoin(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	cfg := budget.Config{Limit: 60, Window: time.Minute, PollReserve: -1}
	var fbs []*fallback
	var budgets []*budget.Budget
	for range 3 {
		fb := &fallback{share: 1.0 / 3}
		fbs = append(fbs, fb)
		budgets = append(budgets, replica(t, srv, cfg, fb, clk.Now))
	}
	// Unevenly: 15, 5 and 0 requests through Redis.
	for i, n := range []int{15, 5, 0} {
		if got, _ := take(budgets[i], callclass.User, n); got != n {
			t.Fatalf("replica %d admitted %d of %d", i, got, n)
		}
	}
	srv.Kill()
	// Each replica now admits up to 20 of its own in the window: 5, 15 and 20 more.
	for i, want := range []int{5, 15, 20} {
		got, wait := take(budgets[i], callclass.User, 30)
		if got != want || wait <= 0 {
			t.Fatalf("replica %d in fallback admitted %d (wait %v), want %d", i, got, wait, want)
		}
		if st := budgets[i].Stats(); !st.Fallback || st.Used != 20 {
			t.Fatalf("replica %d stats in fallback %+v; want fallback, 20 used", i, st)
		}
		if d, u := fbs[i].down.Load(), fbs[i].up.Load(); d != 1 || u != 0 {
			t.Fatalf("replica %d reported down %d, up %d times; want 1 and 0", i, d, u)
		}
	}
	srv.Restart()
	// Until Retry passes, replica 2 does not try Redis on a call (the background probe may).
	if ok, _ := budgets[2].Take(callclass.User); ok {
		t.Fatal("replica 2 admitted past its share before trying Redis again")
	}
	// Replica 0 rejoins on a call; replicas 1 and 2, which get none, rejoin in the background.
	clk.Advance(budget.DefaultRedisRetry)
	if ok, _ := budgets[0].Take(callclass.User); ok {
		t.Fatal("replica 0 admitted a request past its share right after rejoining")
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, fb := range fbs {
		for fb.up.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polls an observable event, bounded
		}
		if d, u := fb.down.Load(), fb.up.Load(); d != 1 || u != 1 {
			t.Fatalf("replica %d reported down %d, up %d times; want 1 and 1", i, d, u)
		}
	}
	// Past the settling time, only the shared log decides: it holds the whole window.
	clk.Advance(2 * budget.DefaultRedisRetry)
	for i, b := range budgets {
		if ok, _ := b.Take(callclass.User); ok {
			t.Fatalf("replica %d admitted a request after rejoining a full window", i)
		}
	}
	if st := budgets[2].Stats(); st.Fallback || st.Used != 60 {
		t.Fatalf("stats after rejoining: %+v; want the shared log's 60", st)
	}
	// What Redis holds per request in the window (docs/scale-out.md quotes this log line).
	rc := srv.Client()
	var mem int64
	for _, k := range []string{"user", "poll"} {
		n, _ := rc.MemoryUsage(context.Background(), "qcg:"+budget.RedisKeyTag("QYACCESSKEYIDEXAMPLE")+":budget:"+k).Result()
		mem += n
	}
	t.Logf("Redis memory: %d bytes for a window of 60 requests (%d per request)", mem, mem/60)
	// Copying again adds nothing: the members are the same.
	n, err := srv.Client().ZCard(context.Background(), "qcg:"+budget.RedisKeyTag("QYACCESSKEYIDEXAMPLE")+":budget:user").Result()
	if err != nil || n != 60 {
		t.Fatalf("shared log holds %d, %v; want 60", n, err)
	}
}

// TestSharedUnreachableRedisDoesNotHang checks that a Budget whose Redis never answers decides within
// its timeout.
func TestSharedUnreachableRedisDoesNotHang(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	fb := &fallback{share: 0.5}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	b := mustNew(t, budget.Config{Limit: 4, Window: time.Minute, PollReserve: -1,
		Shared: &budget.Shared{Client: c, Key: "k", Timeout: 100 * time.Millisecond, Fallback: fb}})
	if n, _ := take(b, callclass.User, 5); n != 2 {
		t.Fatalf("admitted %d with Redis down and a share of 1/2 of 4; want 2", n)
	}
	if fb.down.Load() != 1 {
		t.Fatalf("reported down %d times, want 1", fb.down.Load())
	}
}

func TestSharedConfigErrors(t *testing.T) {
	if err := (budget.Config{Shared: &budget.Shared{}}).Validate(); err == nil || !strings.Contains(err.Error(), "Client") {
		t.Fatalf("Validate without a client = %v", err)
	}
}

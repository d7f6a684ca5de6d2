package budget_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// newClock returns a manual clock for the budget's Now.
func newClock() *testutil.ManualClock {
	return testutil.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

func mustNew(t *testing.T, cfg budget.Config) *budget.Budget {
	t.Helper()
	b, err := budget.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// take spends n requests of class c and returns how many were admitted and the last refusal's wait.
func take(b *budget.Budget, c callclass.Class, n int) (int, time.Duration) {
	ok := 0
	var wait time.Duration
	for range n {
		if admitted, w := b.Take(c); admitted {
			ok++
		} else {
			wait = w
		}
	}
	return ok, wait
}

func TestDefaults(t *testing.T) {
	b := mustNew(t, budget.Config{})
	if b.Limit() != 2000 || b.Window() != time.Hour {
		t.Fatalf("limit %d window %v, want QingCloud's 2000 per 3600 s", b.Limit(), b.Window())
	}
	if u, p := b.ClassMax(callclass.User), b.ClassMax(callclass.Poll); u != 1800 || p != 500 {
		t.Fatalf("class max user %d poll %d, want 1800 (10 %% reserved for polls) and 500 (25 %%)", u, p)
	}
}

func TestUserFloodLeavesPollReserve(t *testing.T) {
	clk := newClock()
	b := mustNew(t, budget.Config{Limit: 20, Window: time.Minute, Slack: -1, Now: clk.Now})
	// 20 per minute: polls may use 5, user calls 18 (2 reserved for polls).
	if n, wait := take(b, callclass.User, 200); n != 18 || wait != time.Minute {
		t.Fatalf("user flood admitted %d (wait %v), want 18 and a full minute", n, wait)
	}
	if n, _ := take(b, callclass.Poll, 10); n != 2 {
		t.Fatalf("polls after a user flood admitted %d, want the 2 reserved", n)
	}
	st := b.Stats()
	if st.Used != 20 || st.Remaining != 0 || st.Classes["user"].Refused != 182 || st.Classes["poll"].Refused != 8 {
		t.Fatalf("stats %+v", st)
	}
	// The window slides: after 30 s nothing has left; after 60 s everything has.
	clk.Advance(30 * time.Second)
	if ok, wait := b.Take(callclass.User); ok || wait != 30*time.Second {
		t.Fatalf("at 30 s: ok=%v wait=%v, want a refusal for 30 s", ok, wait)
	}
	clk.Advance(30 * time.Second)
	if n, _ := take(b, callclass.User, 100); n != 18 {
		t.Fatalf("after the window admitted %d user calls, want 18", n)
	}
}

func TestPollFloodLeavesUserShare(t *testing.T) {
	clk := newClock()
	b := mustNew(t, budget.Config{Limit: 20, Window: time.Minute, Slack: -1, Now: clk.Now})
	if n, wait := take(b, callclass.Poll, 100); n != 5 || wait != time.Minute {
		t.Fatalf("poll flood admitted %d (wait %v), want 5 (25 %%)", n, wait)
	}
	if n, _ := take(b, callclass.User, 100); n != 15 {
		t.Fatalf("user calls after a poll flood admitted %d, want the remaining 15", n)
	}
	st := b.Stats()
	if st.Classes["user"].Remaining != 0 || st.Classes["poll"].Remaining != 0 || st.Remaining != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlidingWindowNeverExceedsLimit(t *testing.T) {
	// Requests arrive steadily faster than the limit; in no window may more than Limit be admitted.
	clk := newClock()
	const limit, window = 50, 10 * time.Second
	b := mustNew(t, budget.Config{Limit: limit, Window: window, PollMax: 1, PollReserve: -1, Slack: -1, Now: clk.Now})
	var admitted []time.Time
	for i := 0; i < 5000; i++ {
		clk.Advance(37 * time.Millisecond)
		if ok, _ := b.Take(callclass.User); ok {
			admitted = append(admitted, clk.Now())
		}
	}
	for i := range admitted {
		j := i
		for j < len(admitted) && admitted[j].Sub(admitted[i]) < window {
			j++
		}
		if j-i > limit {
			t.Fatalf("%d requests admitted in the window starting %v", j-i, admitted[i])
		}
	}
	// And the budget is used fully: about limit per window over 185 s.
	if want := int(185*time.Second/window) * limit; len(admitted) < want-limit {
		t.Fatalf("admitted %d, want about %d", len(admitted), want)
	}
}

func TestRetryAfterIsExact(t *testing.T) {
	clk := newClock()
	b := mustNew(t, budget.Config{Limit: 4, Window: time.Minute, PollMax: 1, PollReserve: -1, Slack: -1, Now: clk.Now})
	for i := range 4 {
		if ok, _ := b.Take(callclass.User); !ok {
			t.Fatalf("request %d refused", i)
		}
		clk.Advance(10 * time.Second)
	}
	// Requests at 0, 10, 20, 30 s; now 40 s: the first leaves at 60 s.
	ok, wait := b.Take(callclass.User)
	if ok || wait != 20*time.Second {
		t.Fatalf("ok=%v wait=%v, want a refusal for 20 s", ok, wait)
	}
	clk.Advance(wait - time.Millisecond)
	if ok, _ := b.Take(callclass.User); ok {
		t.Fatal("admitted before the wait was over")
	}
	clk.Advance(time.Millisecond)
	if ok, _ := b.Take(callclass.User); !ok {
		t.Fatal("refused after the wait")
	}
}

func TestSlackHoldsSlotsLonger(t *testing.T) {
	clk := newClock()
	b := mustNew(t, budget.Config{Limit: 1, Window: time.Minute, PollMax: 1, PollReserve: -1, Now: clk.Now})
	b.Take(callclass.User)
	clk.Advance(time.Minute)
	if ok, wait := b.Take(callclass.User); ok || wait != time.Second {
		t.Fatalf("ok=%v wait=%v: the slot must stay taken for the 1 s slack", ok, wait)
	}
}

func TestUnlimited(t *testing.T) {
	b := budget.Unlimited()
	if n, _ := take(b, callclass.User, 10000); n != 10000 {
		t.Fatalf("admitted %d", n)
	}
	st := b.Stats()
	if st.Limit != -1 || st.Remaining != -1 || st.Classes["user"].Spent != 10000 || st.Classes["poll"].Max != -1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  budget.Config
		want string
	}{
		{budget.Config{Window: -time.Second}, "Window"},
		{budget.Config{PollMax: 1.5}, "PollMax"},
		{budget.Config{PollMax: -0.1}, "PollMax"},
		{budget.Config{PollMax: 0.2, PollReserve: 0.3}, "PollReserve"},
	} {
		if _, err := budget.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
		if _, err := budget.NewRegistry(tc.cfg); err == nil {
			t.Errorf("NewRegistry(%+v) accepted", tc.cfg)
		}
	}
}

func TestRegistrySharesPerKey(t *testing.T) {
	r, err := budget.NewRegistry(budget.Config{Limit: 10, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.For("A") != r.For("A") || r.For("A") == r.For("B") {
		t.Fatal("For must return one Budget per key")
	}
	take(r.For("A"), callclass.User, 3)
	st := r.Stats()
	if st["A"].Used != 3 || st["B"].Used != 0 || len(st) != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentTakeNeverOverspends(t *testing.T) {
	b := mustNew(t, budget.Config{Limit: 100, Window: time.Hour})
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := callclass.User
			if g%4 == 0 {
				c = callclass.Poll
			}
			n, _ := take(b, c, 50)
			mu.Lock()
			admitted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	st := b.Stats()
	if admitted != 100 || st.Used != 100 || st.Classes["poll"].Used > 25 || st.Classes["user"].Used > 90 {
		t.Fatalf("admitted %d, stats %+v", admitted, st)
	}
}

func BenchmarkTake(b *testing.B) {
	bud, _ := budget.New(budget.Config{Limit: -1})
	limited, _ := budget.New(budget.Config{})
	b.Run("unlimited", func(b *testing.B) {
		for b.Loop() {
			bud.Take(callclass.User)
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			limited.Take(callclass.User)
		}
	})
}

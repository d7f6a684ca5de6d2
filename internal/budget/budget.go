// Package budget keeps a client-side budget of QingCloud API requests per access key, so that the
// facade refuses a call itself (RESOURCE_EXHAUSTED with RetryInfo) instead of spending the account's
// quota into upstream ret_code 2500 errors.
//
// QingCloud allows each access key a number of API requests per sliding window (2000 per 3600 s for a
// new account, qingcloud-protocol.md §9). A [Budget] models exactly that window: it remembers when
// each of the last Limit requests started and admits a new one only while fewer than Limit started
// within the window. A token bucket (golang.org/x/time/rate) does not fit: a bucket of size Limit that
// refills Limit per window admits up to twice Limit requests in one window (a full burst, then the
// refill), which QingCloud would answer with 2500; a bucket small enough to be safe forbids the bursts
// the real quota allows. The log costs 16 bytes per admitted request (32 KiB at 2000).
//
// Two kinds of calls share one key (package callclass): calls clients ask for (User) and calls the
// server makes to follow jobs and resources for watchers (Poll). Each keeps a share the other cannot
// take:
//
//   - Poll calls may use at most PollMax of the limit (default 25 %), so user calls always keep at
//     least the rest (75 %).
//   - User calls may use at most the limit minus PollReserve (default 10 %), so polling always keeps
//     at least that much, and watchers keep seeing progress while clients flood the budget.
//
// Between those guarantees, either kind uses what the other leaves.
package budget

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// Defaults applied to zero Config fields.
const (
	// DefaultLimit is QingCloud's API quota of a new account: requests per DefaultWindow.
	DefaultLimit = 2000
	// DefaultWindow is the sliding window of QingCloud's API quota.
	DefaultWindow = 3600 * time.Second
	// DefaultPollMax is the largest share of the limit poll calls may use.
	DefaultPollMax = 0.25
	// DefaultPollReserve is the share of the limit user calls leave for poll calls.
	DefaultPollReserve = 0.10
	// DefaultSlack is how long a request's slot is held beyond the window.
	DefaultSlack = time.Second
)

// Config configures a Budget. The zero value is QingCloud's default quota with the default shares.
type Config struct {
	// Limit is the number of requests per Window; 0 means DefaultLimit (2000), a negative value
	// means no limit (nothing is refused; usage is still counted).
	Limit int
	// Window is the sliding window; 0 means DefaultWindow (3600 s).
	Window time.Duration
	// PollMax is the largest share of Limit that poll calls may use, in (0, 1]; 0 means
	// DefaultPollMax (0.25).
	PollMax float64
	// PollReserve is the share of Limit that user calls may not use, kept for poll calls, in
	// [0, PollMax]; 0 means DefaultPollReserve (0.10), a negative value means no reserve.
	PollReserve float64
	// Slack is how long a slot stays taken beyond Window, to cover the time a request takes to
	// reach QingCloud (whose window starts when the request arrives, ours when it is sent);
	// 0 means DefaultSlack (1 s), a negative value means none.
	Slack time.Duration
	// Now is the clock; nil means time.Now. A shared Budget takes its window from Redis's clock and
	// uses Now only for its fallback.
	Now func() time.Time
	// Shared, when set, keeps the window log in Redis, shared by every replica (see [Shared]); nil
	// keeps it in this process only.
	Shared *Shared
}

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	switch {
	case c.Window < 0:
		return c, fmt.Errorf("budget: Window %v is negative", c.Window)
	case c.Window == 0:
		c.Window = DefaultWindow
	}
	switch {
	case c.PollMax == 0:
		c.PollMax = DefaultPollMax
	case !(c.PollMax > 0 && c.PollMax <= 1):
		return c, fmt.Errorf("budget: PollMax %v is not in (0, 1]", c.PollMax)
	}
	switch {
	case c.PollReserve == 0:
		c.PollReserve = min(DefaultPollReserve, c.PollMax)
	case c.PollReserve < 0:
		c.PollReserve = 0
	case c.PollReserve > c.PollMax || math.IsNaN(c.PollReserve):
		return c, fmt.Errorf("budget: PollReserve %v is not in [0, PollMax %v]", c.PollReserve, c.PollMax)
	}
	switch {
	case c.Slack == 0:
		c.Slack = DefaultSlack
	case c.Slack < 0:
		c.Slack = 0
	}
	if c.Shared != nil {
		if err := c.Shared.validate(); err != nil {
			return c, err
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Validate reports a Config that New would refuse.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// class indexes.
const (
	user = iota
	poll
	nClasses
)

var classNames = [nClasses]string{user: callclass.User.String(), poll: callclass.Poll.String()}

func index(c callclass.Class) int {
	if c == callclass.Poll {
		return poll
	}
	return user
}

// Budget is the request budget of one access key. It is safe for concurrent use.
type Budget struct {
	cfg   Config
	hold  time.Duration // Window + Slack
	max   [nClasses]int // per class; meaningless when unlimited
	epoch time.Time

	shared *shared // nil: the log is local only

	mu      sync.Mutex
	logs    [nClasses]ring // the requests this process admitted in the window, oldest first
	spent   [nClasses]int64
	refused [nClasses]int64
}

// New returns a Budget for cfg. Errors name the setting at fault.
func New(cfg Config) (*Budget, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Budget{cfg: cfg, hold: cfg.Window + cfg.Slack, epoch: cfg.Now()}
	if cfg.Limit > 0 {
		pollMax := max(1, int(math.Floor(float64(cfg.Limit)*cfg.PollMax)))
		reserve := min(pollMax, int(math.Floor(float64(cfg.Limit)*cfg.PollReserve)))
		b.max[poll] = min(pollMax, cfg.Limit)
		b.max[user] = max(1, cfg.Limit-reserve)
	}
	if cfg.Shared != nil {
		b.shared = newShared(*cfg.Shared)
	}
	return b, nil
}

// Unlimited returns a Budget that refuses nothing and only counts.
func Unlimited() *Budget {
	b, _ := New(Config{Limit: -1})
	return b
}

// Limit returns the number of requests per window; negative when unlimited.
func (b *Budget) Limit() int { return b.cfg.Limit }

// Window returns the sliding window.
func (b *Budget) Window() time.Duration { return b.cfg.Window }

// ClassMax returns the most requests calls of class c may make per window; negative when unlimited.
func (b *Budget) ClassMax(c callclass.Class) int {
	if b.cfg.Limit < 0 {
		return -1
	}
	return b.max[index(c)]
}

// Take spends one request for a call of class c. When the budget allows none, it spends nothing and
// returns false with how long until a request of class c would be admitted (if no one else spends
// meanwhile).
func (b *Budget) Take(c callclass.Class) (ok bool, retryAfter time.Duration) {
	i := index(c)
	if b.shared != nil && b.cfg.Limit >= 0 {
		return b.takeShared(i)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now().Sub(b.epoch)
	if b.cfg.Limit < 0 {
		b.spent[i]++
		return true, 0
	}
	return b.takeLocal(i, now, b.cfg.Limit, b.max, 0)
}

// takeLocal admits a request of class i against the local log, under limit and the class maxima;
// b.mu is held.
func (b *Budget) takeLocal(i int, now time.Duration, limit int, classMax [nClasses]int, seq uint64) (bool, time.Duration) {
	if ok, wait := b.checkLocal(i, now, limit, classMax); !ok {
		b.refused[i]++
		return false, wait
	}
	b.logs[i].push(entry{t: now, seq: seq})
	b.spent[i]++
	return true, 0
}

// checkLocal reports whether the local log admits a request of class i under limit and the class
// maxima, and if not, how long until it would; b.mu is held.
func (b *Budget) checkLocal(i int, now time.Duration, limit int, classMax [nClasses]int) (bool, time.Duration) {
	b.expire(now)
	total := b.logs[user].n + b.logs[poll].n
	if total < limit && b.logs[i].n < classMax[i] {
		return true, 0
	}
	var wait time.Duration
	if total >= limit && limit > 0 {
		wait = b.kthOldest(total-limit+1) + b.hold - now
	}
	if n := b.logs[i].n; n >= classMax[i] && classMax[i] > 0 {
		wait = max(wait, b.logs[i].at(n-classMax[i])+b.hold-now)
	}
	if wait <= 0 { // a limit of 0 (a fallback share too small for one request): no request leaves
		wait = b.hold
	}
	return false, max(wait, time.Millisecond)
}

// expire drops the requests that left the window; b.mu is held.
func (b *Budget) expire(now time.Duration) {
	for i := range b.logs {
		l := &b.logs[i]
		for l.n > 0 && l.at(0) <= now-b.hold {
			l.pop()
		}
	}
}

// kthOldest returns the start of the k-th oldest request (1-based) across all classes; b.mu is held.
func (b *Budget) kthOldest(k int) time.Duration {
	u, p := &b.logs[user], &b.logs[poll]
	i, j := 0, 0
	var t time.Duration
	for ; k > 0; k-- {
		switch {
		case j >= p.n || (i < u.n && u.at(i) <= p.at(j)):
			t = u.at(i)
			i++
		default:
			t = p.at(j)
			j++
		}
	}
	return t
}

// ClassStats is the usage of one call class.
type ClassStats struct {
	// Max is the most requests the class may make per window; -1 when unlimited.
	Max int `json:"max"`
	// Used is the number of requests of the class in the current window.
	Used int `json:"used"`
	// Remaining is how many more requests of the class would be admitted now; -1 when unlimited.
	Remaining int `json:"remaining"`
	// Spent counts every admitted request of the class since the Budget was made.
	Spent int64 `json:"spent"`
	// Refused counts the requests of the class refused since the Budget was made.
	Refused int64 `json:"refused"`
}

// Stats is a snapshot of a Budget, for metrics.
type Stats struct {
	// Limit is the number of requests per window; -1 when unlimited.
	Limit int `json:"limit"`
	// Window is the sliding window.
	Window time.Duration `json:"window"`
	// Used is the number of requests in the current window.
	Used int `json:"used"`
	// Remaining is Limit - Used; -1 when unlimited.
	Remaining int `json:"remaining"`
	// Classes holds the usage per call class, by name ("user", "poll").
	Classes map[string]ClassStats `json:"classes"`
	// Shared says the window log is in Redis (Config.Shared); Used is then the shared log's usage at
	// the last answer from Redis, by every replica.
	Shared bool `json:"shared,omitempty"`
	// Fallback says a shared Budget cannot reach Redis and admits alone, within its fallback share;
	// Used then counts this process's requests.
	Fallback bool `json:"fallback,omitempty"`
}

// Stats returns the current usage.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now().Sub(b.epoch)
	out := Stats{Limit: b.cfg.Limit, Window: b.cfg.Window, Remaining: -1, Classes: make(map[string]ClassStats, nClasses)}
	if b.cfg.Limit < 0 {
		out.Limit = -1
		for i, name := range classNames {
			out.Classes[name] = ClassStats{Max: -1, Remaining: -1, Spent: b.spent[i], Refused: b.refused[i]}
		}
		return out
	}
	b.expire(now)
	used := [nClasses]int{b.logs[user].n, b.logs[poll].n}
	var down bool
	if out.Shared, down, used = b.sharedState(); !out.Shared || down {
		out.Fallback = down
		used = [nClasses]int{b.logs[user].n, b.logs[poll].n}
	}
	out.Used = used[user] + used[poll]
	out.Remaining = max(0, b.cfg.Limit-out.Used)
	for i, name := range classNames {
		out.Classes[name] = ClassStats{
			Max:       b.max[i],
			Used:      used[i],
			Remaining: max(0, min(b.max[i]-used[i], out.Remaining)),
			Spent:     b.spent[i],
			Refused:   b.refused[i],
		}
	}
	return out
}

// Registry hands out one Budget per access key, all with the same Config, so that every Client using
// a key (tenants, the watch poller) shares that key's budget. It is safe for concurrent use.
type Registry struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*Budget
}

// NewRegistry validates cfg and returns an empty Registry.
func NewRegistry(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Registry{cfg: cfg, m: map[string]*Budget{}}, nil
}

// For returns the Budget of accessKeyID, made on first use.
func (r *Registry) For(accessKeyID string) *Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.m[accessKeyID]; b != nil {
		return b
	}
	cfg := r.cfg
	if cfg.Shared != nil {
		sh := *cfg.Shared
		sh.Key = accessKeyID
		cfg.Shared = &sh
	}
	b, err := New(cfg)
	if err != nil {
		panic(errors.New("budget: Registry config became invalid: " + err.Error())) // validated in NewRegistry
	}
	r.m[accessKeyID] = b
	return b
}

// Stats returns the usage of every key's Budget, by access key id.
func (r *Registry) Stats() map[string]Stats {
	r.mu.Lock()
	budgets := make(map[string]*Budget, len(r.m))
	for k, b := range r.m {
		budgets[k] = b
	}
	r.mu.Unlock()
	out := make(map[string]Stats, len(budgets))
	for k, b := range budgets {
		out[k] = b.Stats()
	}
	return out
}

// entry is one admitted request: its start (offset from the Budget's epoch) and, for a shared
// Budget, its sequence number (its member name in Redis); 0 otherwise.
type entry struct {
	t   time.Duration
	seq uint64
}

// ring is a growable FIFO of entries.
type ring struct {
	buf     []entry
	head, n int
}

// at returns the start of the i-th oldest entry.
func (r *ring) at(i int) time.Duration { return r.buf[(r.head+i)%len(r.buf)].t }

// entry returns the i-th oldest entry.
func (r *ring) entry(i int) entry { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) pop() {
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		nb := make([]entry, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			nb[i] = r.entry(i)
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

// Package watch follows QingCloud jobs and resources for any number of watchers at the cost of one
// poller per upstream account and zone.
//
// A [Hub] serves WatchService (WatchJobs, WaitJobs, WatchResources). Every watcher of an account and
// zone shares one poller that batches all watched job ids into DescribeJobs calls of up to 100 ids,
// and all watched resources into one Describe call per kind and 100 ids, so W watchers of J distinct
// jobs cost ceil(J/100) upstream calls per poll round whatever W is. Rounds start fast and back off
// to a cap with jitter while nothing changes; an id nobody watches leaves the batches at once. Poll
// calls are marked [callclass.Poll] so the quota budget keeps them within their own share; when a
// poll is refused for quota (RESOURCE_EXHAUSTED) or fails transiently (UNAVAILABLE, ...), the poller
// backs off, keeps every stream open and tells the watchers when it polls next (a PollNotice).
//
// Watchers never slow the poller down: each has a mailbox that holds at most the latest message per
// id, so a slow reader skips intermediate states but never misses a final one.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	zoneid "github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// Options configure a Hub. Zero fields take the defaults listed.
type Options struct {
	// Tenants picks each caller's tenant, once per watch, with the caller's context: watchers of the
	// same profile and zone share a poller, which calls the tenant's Upstream with the Hub's own
	// context (so the Upstream must carry its credentials itself), and the tenant's zone is the
	// default zone. An error ends the watch before it starts (a gRPC status, e.g. UNAUTHENTICATED).
	// Required by New; NewSingle serves every caller from one upstream instead.
	Tenants tenant.Resolver
	// MinInterval is the first poll interval, used again whenever something changes or new ids
	// arrive. Default 500ms.
	MinInterval time.Duration
	// MaxInterval caps the interval while nothing changes. Default 10s.
	MaxInterval time.Duration
	// Growth multiplies the interval after each round without changes. Default 1.5.
	Growth float64
	// Jitter spreads each wait uniformly by ±Jitter of itself. Default 0.2; negative disables.
	Jitter float64
	// FirstPollDelay gathers the ids of watches that start together before their first look.
	// Default 20ms.
	FirstPollDelay time.Duration
	// MaxBackoff caps the wait after failed polls, including a RetryInfo delay. Default 5m.
	MaxBackoff time.Duration
	// CallTimeout bounds one upstream call. Default 30s.
	CallTimeout time.Duration
	// Concurrency is the number of batch calls of one round in flight at once. Default 4.
	Concurrency int
	// MaxIDs bounds the ids of one watch. Default 1000.
	MaxIDs int
	// Logger receives poll failures (never credentials). nil discards.
	Logger *slog.Logger
	// Clock times the polls. nil means the real clock.
	Clock Clock
	// Shared, when set, keeps one poller per account and zone across the replicas that use the same
	// Redis (see [Shared]); nil polls for this process alone.
	Shared *Shared
}

// Defaults of Options.
const (
	DefaultMinInterval    = 500 * time.Millisecond
	DefaultMaxInterval    = 10 * time.Second
	DefaultGrowth         = 1.5
	DefaultJitter         = 0.2
	DefaultFirstPollDelay = 20 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultCallTimeout    = 30 * time.Second
	DefaultConcurrency    = 4
	DefaultMaxIDs         = 1000
	// BatchSize is the most ids of one Describe call (QingCloud's largest limit).
	BatchSize = 100
)

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinInterval, DefaultMinInterval)
	def(&o.MaxInterval, DefaultMaxInterval)
	def(&o.FirstPollDelay, DefaultFirstPollDelay)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.CallTimeout, DefaultCallTimeout)
	if o.MaxInterval < o.MinInterval {
		o.MaxInterval = o.MinInterval
	}
	if o.Growth <= 1 {
		o.Growth = DefaultGrowth
	}
	if o.Jitter == 0 {
		o.Jitter = DefaultJitter
	} else if o.Jitter < 0 {
		o.Jitter = 0
	}
	o.Jitter = min(o.Jitter, 0.9)
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxIDs <= 0 {
		o.MaxIDs = DefaultMaxIDs
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
}

// Hub owns the pollers and serves WatchService. Create it with New or NewSingle and end it with Close.
type Hub struct {
	iaasv1.UnimplementedWatchServiceServer

	opts    Options
	account func(context.Context) (key string, up tenant.Caller, defaultZone string, err error)
	ctx     context.Context // poll calls: callclass.Poll, canceled by Close
	cancel  context.CancelFunc
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pollers map[pollerKey]*poller

	closeOnce sync.Once
	stats     counters
}

type pollerKey struct{ account, zone string }

// counters are the cumulative Stats.
type counters struct {
	rounds, freshRounds, calls, failures, events, saved atomic.Int64
	lastRoundCalls, maxRoundCalls                       atomic.Int64
}

// New returns a Hub that picks each caller's tenant with opts.Tenants.
func New(opts Options) (*Hub, error) {
	if opts.Tenants == nil {
		return nil, errors.New("watch: Options.Tenants is required")
	}
	tenants := opts.Tenants
	return newHub(opts, func(ctx context.Context) (string, tenant.Caller, string, error) {
		t, err := tenants.Lookup(ctx)
		if err != nil {
			return "", nil, "", err
		}
		return t.Profile, t.Upstream, t.Zone, nil
	}), nil
}

// NewSingle returns a Hub serving every caller from one upstream, with defaultZone for watches that
// name no zone (opts.Tenants is ignored).
func NewSingle(up tenant.Caller, defaultZone string, opts Options) *Hub {
	return newHub(opts, func(context.Context) (string, tenant.Caller, string, error) { return "default", up, defaultZone, nil })
}

func newHub(opts Options, account func(context.Context) (string, tenant.Caller, string, error)) *Hub {
	opts.defaults()
	ctx, cancel := context.WithCancel(callclass.With(context.Background(), callclass.Poll))
	return &Hub{opts: opts, account: account, ctx: ctx, cancel: cancel, done: make(chan struct{}), pollers: map[pollerKey]*poller{}}
}

// Service returns the WatchService implementation, for server.Config.Watch.
func (h *Hub) Service() iaasv1.WatchServiceServer { return h }

// Close ends every watch with UNAVAILABLE ("server shutting down; resume the watch"), stops the
// pollers (canceling their calls) and waits for them. Later watches fail with UNAVAILABLE too.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		close(h.done)
		pollers := make([]*poller, 0, len(h.pollers))
		for _, p := range h.pollers {
			pollers = append(pollers, p)
		}
		clear(h.pollers)
		h.mu.Unlock()
		err := errShutdown()
		for _, p := range pollers {
			p.shutdown(err)
		}
		h.cancel()
		h.wg.Wait()
	})
}

// Stats describe a Hub's pollers and their upstream calls.
type Stats struct {
	// Pollers, Watches, Jobs and Resources are the current numbers of pollers, open watches and
	// distinct watched job and resource ids.
	Pollers, Watches, Jobs, Resources int
	// Rounds counts full poll rounds; FreshRounds the quick first looks at newly watched ids.
	Rounds, FreshRounds int64
	// Calls counts upstream Describe calls; Failures those that failed.
	Calls, Failures int64
	// Saved counts the upstream calls batching saved: per round, the calls that every watcher polling
	// its own ids (one call per 100 ids, as the SDKs' wait helpers do) would have made, less Calls.
	Saved int64
	// Events counts messages queued to watchers.
	Events int64
	// LastRoundCalls and MaxRoundCalls are the calls of the latest full round and the most of any
	// full round of any poller.
	LastRoundCalls, MaxRoundCalls int64
}

// Stats returns a snapshot of the Hub's counters.
func (h *Hub) Stats() Stats {
	s := Stats{
		Rounds: h.stats.rounds.Load(), FreshRounds: h.stats.freshRounds.Load(),
		Calls: h.stats.calls.Load(), Failures: h.stats.failures.Load(), Events: h.stats.events.Load(),
		Saved:          h.stats.saved.Load(),
		LastRoundCalls: h.stats.lastRoundCalls.Load(), MaxRoundCalls: h.stats.maxRoundCalls.Load(),
	}
	h.mu.Lock()
	pollers := make([]*poller, 0, len(h.pollers))
	for _, p := range h.pollers {
		pollers = append(pollers, p)
	}
	h.mu.Unlock()
	s.Pollers = len(pollers)
	for _, p := range pollers {
		p.mu.Lock()
		s.Watches += len(p.watchers)
		for k := range p.targets {
			if k.kind == "" {
				s.Jobs++
			} else {
				s.Resources++
			}
		}
		p.mu.Unlock()
	}
	return s
}

// Jobs starts a watch of jobs in zone ("" = the account's default zone). The first message of each
// job is its current state; then one on every change of status, status time, action or resource
// ids; Recv returns io.EOF once every job is terminal.
func (h *Hub) Jobs(ctx context.Context, zone string, jobIDs []string) (*Watch[*iaasv1.WatchJobsResponse], error) {
	ids, err := h.checkIDs("job_ids", jobIDs)
	if err != nil {
		return nil, err
	}
	w := newWatcher(nil, "", ids)
	if err := h.subscribe(ctx, zone, w); err != nil {
		return nil, err
	}
	return &Watch[*iaasv1.WatchJobsResponse]{w: w, wrap: wrapJob}, nil
}

// Resources starts a watch of resources of kind (a name of [Kinds]) in zone ("" = the account's
// default zone) until each is settled in target ("" = any idle status) or gone. The first message of
// each resource is its current state; then one on every change of status, transition_status, private
// IP or applied flag; Recv returns io.EOF once every resource is settled or gone.
func (h *Hub) Resources(ctx context.Context, zone, kind string, ids []string, target string) (*Watch[*iaasv1.WatchResourcesResponse], error) {
	k := kindByName[strings.TrimSpace(kind)]
	if k == nil {
		return nil, qcerr.BadRequest(qcerr.Violation("kind", fmt.Sprintf("kind %q is not one of %s", clip(kind), strings.Join(KindNames(), ", "))))
	}
	target = strings.ToLower(strings.TrimSpace(target)) // QingCloud statuses are lower-case, like zones
	if target != "" && !k.HasStatus {
		return nil, qcerr.BadRequest(qcerr.Violation("target_status", fmt.Sprintf("kind %s has no status; leave target_status unset", k.Name)))
	}
	ids, err := h.checkIDs("resource_ids", ids)
	if err != nil {
		return nil, err
	}
	w := newWatcher(k, target, ids)
	if err := h.subscribe(ctx, zone, w); err != nil {
		return nil, err
	}
	return &Watch[*iaasv1.WatchResourcesResponse]{w: w, wrap: wrapResource}, nil
}

// checkIDs validates and deduplicates ids, keeping their order.
func (h *Hub) checkIDs(field string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, qcerr.BadRequest(qcerr.Violation(field, field+" is required: name at least one id"))
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !validID(id) {
			return nil, qcerr.BadRequest(qcerr.Violation(field, fmt.Sprintf("%q is not a QingCloud id (letters, digits, '-', '_' and '.', at most 64)", clip(id))))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > h.opts.MaxIDs {
		return nil, qcerr.BadRequest(qcerr.Violation(field, fmt.Sprintf("%d ids in one watch; at most %d (split them over several watches)", len(out), h.opts.MaxIDs)))
	}
	return out, nil
}

// validID accepts QingCloud-shaped ids: 1 to 64 of [A-Za-z0-9_.-].
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// subscribe resolves the caller's account and zone and registers w with their poller.
func (h *Hub) subscribe(ctx context.Context, zone string, w *watcher) error {
	if err := ctx.Err(); err != nil {
		return ctxError(ctx)
	}
	key, up, defZone, err := h.account(ctx)
	if err != nil {
		return err
	}
	if up == nil {
		return status.Error(codes.Internal, "watch: no upstream for this account")
	}
	zone = zoneid.Resolve(zone, defZone)
	if v := zoneid.Violation(zone); v != nil {
		return qcerr.BadRequest(v)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errShutdown()
	}
	pk := pollerKey{key, zone}
	p := h.pollers[pk]
	if p == nil {
		p = newPoller(h, pk, up)
		h.pollers[pk] = p
		h.wg.Add(1)
		go p.run()
	}
	p.subscribe(w)
	return nil
}

// retire removes p from the Hub if it has no watchers left; it reports whether it did.
func (h *Hub) retire(p *poller) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.watchers) > 0 {
		return false
	}
	if h.pollers[p.key] == p {
		delete(h.pollers, p.key)
	}
	return true
}

// errShutdown is the error of watches ended by Close.
func errShutdown() error {
	return qcerr.New(codes.Unavailable, qcerr.ReasonShuttingDown, "server shutting down; resume the watch", nil)
}

// clip shortens user input quoted in messages to about 64 bytes.
func clip(s string) string { return clipN(s, 64) }

// clipN shortens s to at most n bytes (plus "..."), without splitting a UTF-8 sequence.
func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

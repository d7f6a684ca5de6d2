package idempotency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every replica through Redis, so that a retry that lands on another
// replica gets the same outcome. Each key is one Redis hash, "qcg:idem:<sha256 of tenant and key>",
// with fields fp (the request's fingerprint), state ("running" or "done") and out ("r" or "s" and the
// outcome's bytes), expiring after the claim's TTL while running and after the retention once done. No
// request parameters, tokens or caller keys are stored: only the hash, the fingerprint and the
// outcome (the answer or error the caller gets).
//
// Every command has a short deadline. While Redis is unreachable, Begin claims keys in a process-local
// Memory store instead (logged once per outage): retries on the same replica stay safe, retries on
// another replica may run again. A key claimed locally is finished locally.
type Redis struct {
	rdb       redis.UniversalClient
	retention time.Duration
	timeout   time.Duration
	poll      time.Duration
	log       *slog.Logger
	fallback  interface {
		Down(error)
		Up()
	}
	local *Memory

	mu      sync.Mutex
	isLocal map[string]bool // keys claimed in local while Redis was unreachable
	down    bool
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// Retention is how long a finished outcome is kept. Default DefaultRetention.
	Retention time.Duration
	// CommandTimeout bounds each Redis command. Default 500ms.
	CommandTimeout time.Duration
	// PollInterval is the longest wait between looks at a key another call is running. Default 200ms.
	PollInterval time.Duration
	// Fallback, when set, is told when this store stops reaching Redis (Down) and reaches it again
	// (Up), for metrics, health and logs (coord.Component implements it); when nil the store logs.
	Fallback interface {
		Down(error)
		Up()
	}
	// Logger receives the outage and recovery lines when Fallback is nil. nil discards.
	Logger *slog.Logger
}

// NewRedis returns a Store on rdb.
func NewRedis(rdb redis.UniversalClient, o RedisOptions) *Redis {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 500 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Redis{rdb: rdb, retention: o.Retention, timeout: o.CommandTimeout, poll: o.PollInterval, log: o.Logger, fallback: o.Fallback,
		local: NewMemory(MemoryOptions{Retention: o.Retention}), isLocal: map[string]bool{}}
}

// beginScript claims KEYS[1] for fingerprint ARGV[1] for ARGV[2] ms (Redis's clock), or reports what
// holds it: {"run"}, {"conflict"}, {"running"} or {"done", out}. A claim past its deadline (its server
// stopped while the call ran) becomes the interrupted outcome ARGV[3], kept ARGV[4] ms.
var beginScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fp = redis.call('HGET', KEYS[1], 'fp')
if not fp then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running', 'deadline', now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[4]))
  return {'run'}
end
if fp ~= ARGV[1] then return {'conflict'} end
if redis.call('HGET', KEYS[1], 'state') == 'done' then
  return {'done', redis.call('HGET', KEYS[1], 'out')}
end
if now > tonumber(redis.call('HGET', KEYS[1], 'deadline')) then
  redis.call('HSET', KEYS[1], 'state', 'done', 'out', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'done', ARGV[3]}
end
return {'running'}
`)

// finishScript records ARGV[2] as the outcome of KEYS[1] when it is still running (not yet declared
// interrupted), kept ARGV[3] ms.
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'out', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// abandonScript frees KEYS[1] when it is still running.
var abandonScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') == 'running' then return redis.call('DEL', KEYS[1]) end
return 0
`)

func redisKey(key string) string { return "qcg:idem:" + key }

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, key, fp string, claimTTL time.Duration) (*Outcome, error) {
	wait := 10 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		res, err := beginScript.Run(cctx, r.rdb, []string{redisKey(key)}, fp, claimTTL.Milliseconds(),
			encodeOutcome(interrupted()), r.retention.Milliseconds()).StringSlice()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.outage(err)
			return r.beginLocal(ctx, key, fp, claimTTL)
		}
		r.recovered()
		switch res[0] {
		case "run":
			return nil, nil
		case "conflict":
			return nil, ErrConflict
		case "done":
			if len(res) < 2 {
				return nil, errors.New("idempotency: a finished key in Redis has no outcome")
			}
			return decodeOutcome(res[1])
		}
		// Another call (perhaps on another replica) runs it: look again soon.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		wait = min(wait*2, r.poll)
	}
}

// beginLocal claims key in the local store while Redis is unreachable.
func (r *Redis) beginLocal(ctx context.Context, key, fp string, claimTTL time.Duration) (*Outcome, error) {
	o, err := r.local.Begin(ctx, key, fp, claimTTL)
	if err == nil && o == nil {
		r.mu.Lock()
		r.isLocal[key] = true
		r.mu.Unlock()
	}
	return o, err
}

// takeLocal reports whether key was claimed locally, and forgets it.
func (r *Redis) takeLocal(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isLocal[key] {
		delete(r.isLocal, key)
		return true
	}
	return false
}

// Finish implements Store.
func (r *Redis) Finish(ctx context.Context, key string, o *Outcome) error {
	if r.takeLocal(key) {
		return r.local.Finish(ctx, key, o)
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// The fingerprint was checked by Begin; finish only a key still running.
	if err := finishScript.Run(cctx, r.rdb, []string{redisKey(key)}, "", encodeOutcome(o), r.retention.Milliseconds()).Err(); err != nil {
		r.outage(err)
		return fmt.Errorf("idempotency: record the outcome in Redis: %w", err)
	}
	return nil
}

// Abandon implements Store.
func (r *Redis) Abandon(ctx context.Context, key string) error {
	if r.takeLocal(key) {
		return r.local.Abandon(ctx, key)
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := abandonScript.Run(cctx, r.rdb, []string{redisKey(key)}).Err(); err != nil {
		r.outage(err)
		return fmt.Errorf("idempotency: free the key in Redis: %w", err)
	}
	return nil
}

// outage logs the first failure of an outage.
func (r *Redis) outage(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return
	}
	r.down = true
	if r.fallback != nil {
		r.fallback.Down(err)
		return
	}
	r.log.Warn("idempotency store: Redis unreachable; keys are kept in this process until it returns", "error", err)
}

// recovered logs the end of an outage.
func (r *Redis) recovered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down {
		return
	}
	r.down = false
	if r.fallback != nil {
		r.fallback.Up()
		return
	}
	r.log.Info("idempotency store: Redis reachable again")
}

// encodeOutcome is "r" + response bytes or "s" + status bytes.
func encodeOutcome(o *Outcome) string {
	if o.Status != nil {
		return "s" + string(o.Status)
	}
	return "r" + string(o.Response)
}

func decodeOutcome(s string) (*Outcome, error) {
	switch {
	case len(s) > 0 && s[0] == 's':
		return &Outcome{Status: []byte(s[1:])}, nil
	case len(s) > 0 && s[0] == 'r':
		return &Outcome{Response: []byte(s[1:])}, nil
	}
	return nil, errors.New("idempotency: a recorded outcome in Redis is malformed")
}

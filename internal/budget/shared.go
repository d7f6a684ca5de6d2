package budget

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of a shared Budget.
const (
	// DefaultRedisTimeout bounds each Redis command of a shared Budget: a call never waits longer on
	// Redis before the Budget decides locally.
	DefaultRedisTimeout = 250 * time.Millisecond
	// DefaultRedisRetry is how often a Budget that fell back to its local share tries Redis again.
	DefaultRedisRetry = time.Second
)

// Shared makes a Budget keep its window log in Redis, so that every replica of the server using the
// same Redis admits against one log per access key: N replicas together never admit more than the
// limit in any window.
//
// One Lua script admits a request atomically (it reads the window, checks the limit and the class
// maxima, and records the request), with Redis's TIME as the clock, so the replicas' clocks do not
// matter. Each access key has two sorted sets (user and poll requests; member: a random per-Budget
// id and a sequence number; score: Redis time in microseconds) named
// "qcg:{ak:<first 16 hex digits of SHA-256(access key id)>}:budget:user" and ":poll": the hash tag
// keeps both in one Cluster slot, and neither the access key id nor anything secret is stored. The
// sets expire one window after their last request.
//
// If Redis does not answer within Timeout, the Budget falls back to a local budget of
// Fallback.Share() of the limit (and of each class's maximum), counting the requests this process
// admitted in the last window, those admitted through Redis included. It tries Redis again at most
// every Retry, and when Redis answers it first copies the requests it admitted meanwhile into the
// shared log (ages kept, by Redis's clock; requests already there are not added twice), so a Redis
// that restarted empty still sees them. It does so in the background too, so a replica that gets no
// calls copies its requests back all the same; and for 2×Retry after rejoining it keeps to its local
// share as well, the time the other replicas need to copy theirs.
type Shared struct {
	// Client is the Redis client (standalone, Sentinel or Cluster).
	Client redis.UniversalClient
	// Key is the access key id; Registry.For sets it. Only its hash reaches Redis.
	Key string
	// Timeout bounds each Redis command; 0 means DefaultRedisTimeout.
	Timeout time.Duration
	// Retry is how often a Budget in fallback tries Redis again; 0 means DefaultRedisRetry.
	Retry time.Duration
	// Fallback gives the local share and hears when Redis fails and answers again; nil means a share
	// of 1 (the whole limit) and no reports.
	Fallback Fallback
}

// Fallback is told when a shared Budget cannot reach Redis, and says how much of the limit the
// Budget may then use alone.
type Fallback interface {
	// Share is the part of the limit, in (0, 1], this replica may admit alone while Redis is
	// unreachable (typically 1 / the number of replicas last seen alive).
	Share() float64
	// Down says a Budget stopped reaching Redis (err says why); Up says it reaches Redis again.
	// Each Budget calls them alternately, starting with Down.
	Down(err error)
	Up()
}

func (s *Shared) validate() error {
	if s.Client == nil {
		return errors.New("budget: Shared.Client is nil")
	}
	if s.Timeout < 0 || s.Retry < 0 {
		return fmt.Errorf("budget: Shared.Timeout %v or Retry %v is negative", s.Timeout, s.Retry)
	}
	return nil
}

// RedisKeyTag returns the hash tag of an access key's Redis keys, "{ak:<16 hex digits>}": the start of
// the SHA-256 of the access key id, so keys name the account without naming its key.
func RedisKeyTag(accessKeyID string) string {
	h := sha256.Sum256([]byte(accessKeyID))
	return "{ak:" + hex.EncodeToString(h[:8]) + "}"
}

// shared is the Redis side of a Budget.
type shared struct {
	cfg    Shared
	keys   []string // user, poll sorted sets
	member string   // prefix of this Budget's members
	seq    atomic.Uint64

	// guarded by Budget.mu
	down        bool          // in fallback
	probing     bool          // one caller is trying Redis while down
	lastTry     time.Duration // when Redis last failed (Budget offsets)
	settleUntil time.Duration // after a rejoin, the local share applies too until then
	used        [nClasses]int // shared log's usage after the last answer
}

func newShared(cfg Shared) *shared {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRedisRetry
	}
	tag := "qcg:" + RedisKeyTag(cfg.Key) + ":budget:"
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &shared{cfg: cfg, keys: []string{tag + "user", tag + "poll"}, member: hex.EncodeToString(id[:]) + ":"}
}

// admitScript admits one request of class ARGV[1] (1 user, 2 poll) if the window (Redis TIME, in µs,
// ARGV[5] long) holds fewer than ARGV[2] requests in all and fewer than ARGV[3] user / ARGV[4] poll
// requests; it records member ARGV[6]. It returns {admitted, wait µs, user used, poll used}.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hold = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - hold)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - hold)
local n = {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
local i = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cmax = tonumber(ARGV[2 + i])
local total = n[1] + n[2]
if total < limit and n[i] < cmax then
  redis.call('ZADD', KEYS[i], now, ARGV[6])
  local ttl = math.ceil(hold / 1000)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  n[i] = n[i] + 1
  return {1, 0, n[1], n[2]}
end
local wait = 0
if total >= limit and limit > 0 then
  -- the (total-limit+1)-th oldest request of both classes leaves the window first
  local k = total - limit + 1
  local a = redis.call('ZRANGE', KEYS[1], 0, k - 1, 'WITHSCORES')
  local b = redis.call('ZRANGE', KEYS[2], 0, k - 1, 'WITHSCORES')
  local ia, ib, at = 2, 2, 0
  for _ = 1, k do
    local sa, sb = tonumber(a[ia]), tonumber(b[ib])
    if sb == nil or (sa ~= nil and sa <= sb) then at = sa; ia = ia + 2 else at = sb; ib = ib + 2 end
  end
  wait = at + hold - now
end
if n[i] >= cmax and cmax > 0 then
  local e = redis.call('ZRANGE', KEYS[i], n[i] - cmax, n[i] - cmax, 'WITHSCORES')
  wait = math.max(wait, tonumber(e[2]) + hold - now)
end
return {0, wait, n[1], n[2]}
`)

// replayScript adds requests admitted while Redis was unreachable: ARGV[1] is the window in µs, then
// triples of class (1, 2), age in µs and member. Members already present keep their time (NX). It
// returns the usage {user, poll}.
var replayScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hold = tonumber(ARGV[1])
for j = 2, #ARGV, 3 do
  local at = now - tonumber(ARGV[j + 1])
  if at > now - hold then
    redis.call('ZADD', KEYS[tonumber(ARGV[j])], 'NX', at, ARGV[j + 2])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - hold)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - hold)
local ttl = math.ceil(hold / 1000)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
`)

// takeShared admits a request of class i against the shared log, or the local share in fallback.
func (b *Budget) takeShared(i int) (bool, time.Duration) {
	sh := b.shared
	b.mu.Lock()
	now := b.cfg.Now().Sub(b.epoch)
	if sh.down {
		if sh.probing || now-sh.lastTry < sh.cfg.Retry {
			defer b.mu.Unlock()
			return b.takeFallback(i, now)
		}
		if !b.rejoinLocked() {
			defer b.mu.Unlock()
			return b.takeFallback(i, now)
		}
		now = b.cfg.Now().Sub(b.epoch)
	}
	if now < sh.settleUntil {
		// Just rejoined: other replicas may not have copied their outage's requests back yet, so
		// the local share still applies.
		limit, cmax := b.fallbackLimits()
		if ok, wait := b.checkLocal(i, now, limit, cmax); !ok {
			b.refused[i]++
			b.mu.Unlock()
			return false, wait
		}
	}
	b.mu.Unlock()

	seq := sh.seq.Add(1)
	res, err := b.admitRedis(i, seq)

	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.cfg.Now().Sub(b.epoch)
	if err != nil {
		b.fallDownLocked(now, err)
		return b.takeFallback(i, now)
	}
	sh.used = [nClasses]int{int(res[2]), int(res[3])}
	b.expire(now)
	if res[0] == 1 {
		b.logs[i].push(entry{t: now, seq: seq})
		b.spent[i]++
		return true, 0
	}
	b.refused[i]++
	return false, max(time.Duration(res[1])*time.Microsecond, time.Millisecond)
}

// fallDownLocked records that Redis failed; on the change it reports it and starts trying Redis
// again in the background (so a replica that gets no calls still copies its requests back); b.mu is
// held.
func (b *Budget) fallDownLocked(now time.Duration, err error) {
	sh := b.shared
	sh.lastTry = now
	if sh.down {
		return
	}
	sh.down = true
	if sh.cfg.Fallback != nil {
		sh.cfg.Fallback.Down(err)
	}
	b.probeLater()
}

// probeLater tries to rejoin Redis after Retry, and again until it succeeds.
func (b *Budget) probeLater() {
	time.AfterFunc(b.shared.cfg.Retry, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.shared.down && !b.shared.probing && !b.rejoinLocked() {
			b.probeLater()
		}
	})
}

// rejoinLocked copies this process's requests in the window to Redis and, when that works, leaves the
// fallback. It releases b.mu during the Redis call (another caller meanwhile keeps to the fallback);
// b.mu is held on entry and on return.
func (b *Budget) rejoinLocked() bool {
	sh := b.shared
	sh.probing = true
	args := b.replayArgs(b.cfg.Now().Sub(b.epoch))
	b.mu.Unlock()
	used, err := b.replayRedis(args)
	b.mu.Lock()
	sh.probing = false
	now := b.cfg.Now().Sub(b.epoch)
	if err != nil {
		sh.lastTry = now
		return false
	}
	sh.down = false
	sh.used = used
	sh.settleUntil = now + 2*sh.cfg.Retry
	if sh.cfg.Fallback != nil {
		sh.cfg.Fallback.Up()
	}
	return true
}

// admitRedis runs the admission script within the Redis timeout.
func (b *Budget) admitRedis(i int, seq uint64) ([]int64, error) {
	sh := b.shared
	ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
	defer cancel()
	v, err := admitScript.Run(ctx, sh.cfg.Client, sh.keys,
		i+1, b.cfg.Limit, b.max[user], b.max[poll], b.hold.Microseconds(), sh.member+strconv.FormatUint(seq, 10)).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("budget: admit in Redis: %w", err)
	}
	if len(v) != 4 {
		return nil, fmt.Errorf("budget: admit in Redis: %d results, want 4", len(v))
	}
	return v, nil
}

// replayRedis runs the replay script within the Redis timeout and returns the shared log's usage.
func (b *Budget) replayRedis(args []any) ([nClasses]int, error) {
	sh := b.shared
	ctx, cancel := context.WithTimeout(context.Background(), sh.cfg.Timeout)
	defer cancel()
	v, err := replayScript.Run(ctx, sh.cfg.Client, sh.keys, append([]any{b.hold.Microseconds()}, args...)...).Int64Slice()
	if err != nil {
		return [nClasses]int{}, fmt.Errorf("budget: copy the requests admitted during a Redis outage: %w", err)
	}
	if len(v) != 2 {
		return [nClasses]int{}, fmt.Errorf("budget: copy to Redis: %d results, want 2", len(v))
	}
	return [nClasses]int{int(v[0]), int(v[1])}, nil
}

// replayArgs lists this process's requests in the window for replayScript; b.mu is held.
func (b *Budget) replayArgs(now time.Duration) []any {
	b.expire(now)
	args := make([]any, 0, 3*(b.logs[user].n+b.logs[poll].n))
	for c := range b.logs {
		l := &b.logs[c]
		for j := 0; j < l.n; j++ {
			e := l.entry(j)
			args = append(args, c+1, (now - e.t).Microseconds(), b.shared.member+strconv.FormatUint(e.seq, 10))
		}
	}
	return args
}

// takeFallback admits against this process's own requests in the window, under the fallback share of
// the limit and of each class's maximum; b.mu is held.
func (b *Budget) takeFallback(i int, now time.Duration) (bool, time.Duration) {
	limit, cmax := b.fallbackLimits()
	return b.takeLocal(i, now, limit, cmax, b.shared.seq.Add(1))
}

// fallbackLimits returns the fallback share of the limit and of each class's maximum.
func (b *Budget) fallbackLimits() (int, [nClasses]int) {
	share := 1.0
	if f := b.shared.cfg.Fallback; f != nil {
		share = f.Share()
	}
	if !(share > 0 && share <= 1) {
		share = 1
	}
	var cmax [nClasses]int
	for c := range cmax {
		cmax[c] = int(float64(b.max[c]) * share)
	}
	return int(float64(b.cfg.Limit) * share), cmax
}

// sharedState reports whether the Budget is shared, whether it is in fallback, and the shared
// log's last known usage.
func (b *Budget) sharedState() (isShared, down bool, used [nClasses]int) {
	if b.shared == nil {
		return false, false, used
	}
	return true, b.shared.down, b.shared.used
}

package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// Shared makes the Hubs of several replicas keep one poller per account and zone between them,
// through Redis (Options.Shared).
//
// For each account and zone that has watchers on a replica, that replica registers the ids its
// watchers follow in Redis and renews them with heartbeats (the ids of a replica that dies expire).
// One of those replicas holds a lease (SET NX PX, renewed; each new holder gets a fencing token from
// a counter): the owner polls the union of every replica's ids, in batches of 100 on the usual
// adaptive schedule, and publishes every change of state, with a script that first checks the lease
// still names its token, so a paused ex-owner cannot publish. Every replica hears the changes on a
// Pub/Sub channel and hands them to its watchers; the latest state of each id is also kept in a hash,
// which a replica reads for ids its watchers start to follow (so a late watcher gets the current
// state first) and once per round (so a lost message costs a round, not a state). When the owner
// leaves or dies, another replica with watchers takes the lease within LeaseTTL and a third of it.
//
// When Redis is unreachable for two beats in a row a replica polls its own watchers' ids alone
// (Fallback.Down), and rejoins when Redis answers again (Fallback.Up); no watch ends because of Redis.
//
// Keys, all under the hash tag of the account and zone (so the scripts work on Redis Cluster),
// "qcg:{w:<16 hex digits of SHA-256(account "/" zone)>}:" followed by lease, fence, replicas (sorted
// set of replica ids by heartbeat), ids:<replica> (set of "kind|id"), state (hash of "kind|id" to the
// latest state, as JSON), and the channel events. Account names are profile names; no key, token or
// request parameter is stored.
type Shared struct {
	// Client is the Redis client.
	Client redis.UniversalClient
	// Replica names this replica (unique among the replicas).
	Replica string
	// LeaseTTL is how long a lease lasts without renewal; it is renewed every third of it. 0 means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Timeout bounds each Redis command; 0 means 250ms.
	Timeout time.Duration
	// Fallback hears when a poller stops reaching Redis (and polls alone) and when it rejoins; nil
	// means no reports.
	Fallback interface {
		Down(error)
		Up()
	}
}

// DefaultLeaseTTL is the default Shared.LeaseTTL: an owner that dies is replaced within about
// 4/3 of it.
const DefaultLeaseTTL = 3 * time.Second

// wireState is one id's state as published: a job event, a resource state, or a failure that ends
// the watches of the id.
type wireState struct {
	Kind       string `json:"k,omitempty"`
	ID         string `json:"i"`
	Job        []byte `json:"j,omitempty"` // iaasv1.JobEvent, protobuf
	Present    bool   `json:"p,omitempty"`
	Status     string `json:"s,omitempty"`
	Transition string `json:"t,omitempty"`
	PrivateIP  string `json:"ip,omitempty"`
	IPPending  bool   `json:"ipp,omitempty"`
	Applied    bool   `json:"a,omitempty"`
	Obj        []byte `json:"o,omitempty"` // structpb.Struct, protobuf
	Code       int    `json:"c,omitempty"` // failure: gRPC code
	Message    string `json:"m,omitempty"` // failure: message
}

func (s wireState) field() string { return s.Kind + "|" + s.ID }

// encodeState makes the wire form of t's state; p.mu is held.
func encodeState(t *target) (wireState, error) {
	ws := wireState{Kind: t.key.kind, ID: t.key.id}
	var err error
	if t.kind == nil {
		ws.Job, err = proto.Marshal(t.job)
	} else if r := t.res; r != nil {
		ws.Present, ws.Status, ws.Transition, ws.PrivateIP, ws.IPPending, ws.Applied = r.present, r.status, r.transition, r.privateIP, r.ipPending, r.applied
		if r.obj != nil {
			ws.Obj, err = proto.Marshal(r.obj)
		}
	}
	return ws, err
}

// decodeStates parses a published message (a JSON array) or a hash value (one object).
func decodeStates(data []byte) ([]wireState, error) {
	var out []wireState
	if len(data) > 0 && data[0] == '{' {
		var one wireState
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, err
		}
		out = []wireState{one}
	} else if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	for _, s := range out {
		if s.Kind != "" && kindByName[s.Kind] == nil {
			return nil, fmt.Errorf("unknown kind %q", s.Kind)
		}
		if !validID(s.ID) {
			return nil, fmt.Errorf("invalid id %q", clip(s.ID))
		}
	}
	return out, nil
}

// shared is the Redis side of one poller.
type shared struct {
	p    *poller
	cfg  Shared
	keys struct{ lease, fence, replicas, ids, state, events string }
	// idsPrefix is the prefix of every replica's id set.
	idsPrefix string

	mu      sync.Mutex
	owner   bool
	token   int64
	down    bool
	failed  int    // consecutive failed beats
	lastIDs string // signature of the ids last registered

	stop chan struct{}
	done chan struct{}
}

func newShared(p *poller, cfg Shared) *shared {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	h := sha256.Sum256([]byte(p.key.account + "/" + p.key.zone))
	pre := "qcg:{w:" + hex.EncodeToString(h[:8]) + "}:"
	s := &shared{p: p, cfg: cfg, idsPrefix: pre + "ids:", stop: make(chan struct{}), done: make(chan struct{})}
	s.keys.lease, s.keys.fence, s.keys.replicas = pre+"lease", pre+"fence", pre+"replicas"
	s.keys.ids, s.keys.state, s.keys.events = pre+"ids:"+cfg.Replica, pre+"state", pre+"events"
	return s
}

func (s *shared) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// leaseValue is the lease's value while this replica holds it with token.
func (s *shared) leaseValue(token int64) string {
	return s.cfg.Replica + ":" + strconv.FormatInt(token, 10)
}

// polling reports how the poller's round should go: alone (Redis down: poll the local ids),
// owner (poll the union and publish), or neither (read the states the owner published).
func (s *shared) polling() (alone, owner bool, token int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down, s.owner, s.token
}

// run keeps the registration and the lease, and hands published states to the poller, until stop.
func (s *shared) run() {
	defer close(s.done)
	sub := s.cfg.Client.Subscribe(context.Background(), s.keys.events)
	defer sub.Close()
	msgs := sub.Channel(redis.WithChannelHealthCheckInterval(s.cfg.LeaseTTL))
	tick := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	s.beat()
	for {
		select {
		case <-s.stop:
			s.leave()
			return
		case m := <-msgs:
			if m == nil {
				continue
			}
			if m.Payload == "wake" {
				if _, owner, _ := s.polling(); owner {
					s.p.poke()
				}
				continue
			}
			states, err := decodeStates([]byte(m.Payload))
			if err != nil {
				s.p.h.opts.Logger.Warn("watch: ignored a malformed published state", "error", err)
				continue
			}
			if _, owner, _ := s.polling(); !owner {
				s.p.applyWire(states)
			}
		case <-tick.C:
			s.beat()
		}
	}
}

// beat registers this replica's ids (when they changed), renews its heartbeat, and renews or tries
// to take the lease. A Redis failure turns the poller to polling alone.
func (s *shared) beat() {
	err := s.register(false)
	if err == nil {
		err = s.lease()
	}
	s.mu.Lock()
	wasDown, wasOwner := s.down, s.owner
	if err != nil {
		s.failed++
	}
	switch {
	case err == nil:
		s.down, s.failed = false, 0
	case s.failed < 2 && !wasDown:
		// One slow or failed beat is a blink: the lease (3 beats long) still holds; try again.
		s.mu.Unlock()
		return
	default:
		s.down, s.owner = true, false
	}
	becameOwner := !wasOwner && s.owner
	s.mu.Unlock()
	switch {
	case err != nil && !wasDown:
		s.dropRemote()
		s.p.h.opts.Logger.Warn("watch: Redis unreachable; polling this replica's watches alone", "zone", s.p.key.zone, "error", err)
		if s.cfg.Fallback != nil {
			s.cfg.Fallback.Down(err)
		}
	case err == nil && wasDown:
		s.p.h.opts.Logger.Info("watch: Redis reachable again; rejoined the shared poller", "zone", s.p.key.zone)
		s.dropRemote()
		if s.cfg.Fallback != nil {
			s.cfg.Fallback.Up()
		}
	}
	if becameOwner {
		s.p.poke() // look at every replica's ids now
	}
}

// localIDs returns the "kind|id" of every id this replica's watchers follow, sorted.
func (s *shared) localIDs() []string {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.targets))
	for k, t := range p.targets {
		if len(t.watchers) > 0 {
			out = append(out, k.kind+"|"+k.id)
		}
	}
	slices.Sort(out)
	return out
}

// registerScript replaces the set KEYS[2] with ARGV[4...] (when ARGV[3] is "1"), keeps it ARGV[2] ms,
// and renews replica ARGV[1] in the sorted set KEYS[1] at Redis's time, dropping replicas older than
// ARGV[2] ms.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  for i = 4, #ARGV, 1000 do
    redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return 0
`)

// register writes this replica's ids when they changed (or always, when force) and renews them.
func (s *shared) register(force bool) error {
	ids := s.localIDs()
	sig := strconv.Itoa(len(ids)) + ":" + strings.Join(ids, ",")
	s.mu.Lock()
	write := force || s.down || sig != s.lastIDs
	s.mu.Unlock()
	args := []any{s.cfg.Replica, (3 * s.cfg.LeaseTTL).Milliseconds(), "0"}
	if write {
		args[2] = "1"
		for _, id := range ids {
			args = append(args, id)
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := registerScript.Run(ctx, s.cfg.Client, []string{s.keys.replicas, s.keys.ids}, args...).Err(); err != nil {
		return fmt.Errorf("watch: register ids in Redis: %w", err)
	}
	if write {
		s.mu.Lock()
		s.lastIDs = sig
		s.mu.Unlock()
	}
	return nil
}

// acquireScript takes the lease KEYS[1] for ARGV[1] (ARGV[2] ms) when nobody holds it, with a new
// fencing token from KEYS[2]; it returns the token, or 0.
var acquireScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. tok, 'PX', ARGV[2])
return tok
`)

// renewScript extends the lease KEYS[1] by ARGV[2] ms if it still holds ARGV[1]; 1 if it did.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// releaseScript deletes the lease KEYS[1] if it still holds ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// lease renews the lease while this replica owns it, else tries to take it.
func (s *shared) lease() error {
	s.mu.Lock()
	owner, token := s.owner, s.token
	s.mu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	ttl := s.cfg.LeaseTTL.Milliseconds()
	if owner {
		ok, err := renewScript.Run(ctx, s.cfg.Client, []string{s.keys.lease}, s.leaseValue(token), ttl).Int()
		if err != nil {
			return fmt.Errorf("watch: renew the poller lease: %w", err)
		}
		if ok == 1 {
			return nil
		}
		s.mu.Lock()
		s.owner = false
		s.mu.Unlock()
		s.dropRemote()
	}
	tok, err := acquireScript.Run(ctx, s.cfg.Client, []string{s.keys.lease, s.keys.fence}, s.cfg.Replica, ttl).Int64()
	if err != nil {
		return fmt.Errorf("watch: take the poller lease: %w", err)
	}
	if tok > 0 {
		s.mu.Lock()
		s.owner, s.token = true, tok
		s.mu.Unlock()
	}
	return nil
}

// leave gives the lease up and removes this replica's ids (best effort): the poller retired.
func (s *shared) leave() {
	_, owner, token := s.polling()
	ctx, cancel := s.ctx()
	defer cancel()
	if owner {
		_ = releaseScript.Run(ctx, s.cfg.Client, []string{s.keys.lease}, s.leaseValue(token)).Err()
	}
	_ = s.cfg.Client.Del(ctx, s.keys.ids).Err()
	_ = s.cfg.Client.ZRem(ctx, s.keys.replicas, s.cfg.Replica).Err()
}

// close stops run and waits for it.
func (s *shared) close() {
	close(s.stop)
	<-s.done
}

// unionScript returns the ids of every replica seen within ARGV[1] ms (their sets are KEYS[2] plus the
// replica id).
var unionScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local reps = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
local keys = {}
for i, r in ipairs(reps) do keys[i] = KEYS[2] .. r end
if #keys == 0 then return {} end
return redis.call('SUNION', unpack(keys))
`)

// refreshUnion makes the owner's targets the union of every replica's ids: ids of other replicas are
// added (unseen, so the next round looks at them) and ids nobody follows any more are dropped, their
// states deleted from Redis.
func (s *shared) refreshUnion() error {
	ctx, cancel := s.ctx()
	defer cancel()
	union, err := unionScript.Run(ctx, s.cfg.Client, []string{s.keys.replicas, s.idsPrefix}, (3 * s.cfg.LeaseTTL).Milliseconds()).StringSlice()
	if err != nil {
		return fmt.Errorf("watch: read every replica's ids: %w", err)
	}
	want := make(map[targetKey]bool, len(union))
	for _, f := range union {
		kind, id, ok := strings.Cut(f, "|")
		if !ok || !validID(id) || (kind != "" && kindByName[kind] == nil) {
			continue
		}
		want[targetKey{kind, id}] = true
	}
	p := s.p
	p.mu.Lock()
	var gone []string
	for k := range want {
		if p.targets[k] == nil {
			var kind *Kind
			if k.kind != "" {
				kind = kindByName[k.kind]
			}
			p.targets[k] = &target{key: k, kind: kind, watchers: map[*watcher]struct{}{}}
		}
	}
	for k, t := range p.targets {
		if len(t.watchers) == 0 && !want[k] {
			delete(p.targets, k)
			gone = append(gone, k.kind+"|"+k.id)
		}
	}
	p.mu.Unlock()
	if len(gone) > 0 {
		_ = s.cfg.Client.HDel(ctx, s.keys.state, gone...).Err()
	}
	return nil
}

// dropRemote forgets the ids only other replicas follow (this replica stopped owning the lease, or
// polls alone).
func (s *shared) dropRemote() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, t := range p.targets {
		if len(t.watchers) == 0 {
			delete(p.targets, k)
		}
	}
}

// publishScript writes states to the hash KEYS[2] and publishes them on channel ARGV[2] if the lease
// KEYS[1] still holds ARGV[1] (the fencing check); ARGV[3] is the hash's lifetime in ms, ARGV[4] the
// message, then field/value pairs. 1 if published.
var publishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[2], ARGV[4])
return 1
`)

// publish sends the owner's changed states to every replica; a lost lease ends the ownership.
func (s *shared) publish(token int64, states []wireState) error {
	msg, err := json.Marshal(states)
	if err != nil {
		return err
	}
	args := []any{s.leaseValue(token), s.keys.events, (10 * s.cfg.LeaseTTL).Milliseconds(), msg}
	for _, st := range states {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		args = append(args, st.field(), b)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	ok, err := publishScript.Run(ctx, s.cfg.Client, []string{s.keys.lease, s.keys.state}, args...).Int()
	if err != nil {
		return fmt.Errorf("watch: publish states: %w", err)
	}
	if ok == 0 {
		s.mu.Lock()
		if s.token == token {
			s.owner = false
		}
		s.mu.Unlock()
		s.dropRemote()
		return errors.New("watch: lost the poller lease; not published")
	}
	return nil
}

// readStates hands the poller the published states of its unseen targets (all of its targets when
// all), and, for fresh ids, registers them and wakes the owner.
func (s *shared) readStates(all bool) error {
	p := s.p
	p.mu.Lock()
	var fields []string
	for k, t := range p.targets {
		if all || !t.seen {
			fields = append(fields, k.kind+"|"+k.id)
		}
	}
	p.mu.Unlock()
	if !all {
		if err := s.register(false); err != nil {
			return err
		}
		ctx, cancel := s.ctx()
		err := s.cfg.Client.Publish(ctx, s.keys.events, "wake").Err()
		cancel()
		if err != nil {
			return fmt.Errorf("watch: wake the owner: %w", err)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	for chunk := range slices.Chunk(fields, 1000) {
		vals, err := s.cfg.Client.HMGet(ctx, s.keys.state, chunk...).Result()
		if err != nil {
			return fmt.Errorf("watch: read published states: %w", err)
		}
		var states []wireState
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			if ws, err := decodeStates([]byte(str)); err == nil {
				states = append(states, ws...)
			}
		}
		p.applyWire(states)
	}
	return nil
}

// applyWire hands published states to this replica's watchers.
func (p *poller) applyWire(states []wireState) {
	now := p.h.opts.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ws := range states {
		t := p.targets[targetKey{ws.Kind, ws.ID}]
		if t == nil {
			continue
		}
		if ws.Code != 0 {
			err := status.Error(codes.Code(ws.Code), ws.Message)
			for w := range t.watchers {
				p.fail(w, err)
			}
			delete(p.targets, t.key)
			continue
		}
		t.lastPolled = now
		if t.kind == nil {
			ev := &iaasv1.JobEvent{}
			if proto.Unmarshal(ws.Job, ev) != nil || ev.GetJob() == nil {
				continue
			}
			if t.seen && !jobChanged(t.job.GetJob(), ev.GetJob()) {
				continue
			}
			t.job, t.seen = ev, true
		} else {
			rs := &resourceState{present: ws.Present, status: ws.Status, transition: ws.Transition,
				privateIP: ws.PrivateIP, ipPending: ws.IPPending, applied: ws.Applied}
			if len(ws.Obj) > 0 {
				rs.obj = &structpb.Struct{}
				if proto.Unmarshal(ws.Obj, rs.obj) != nil {
					continue
				}
			}
			if t.seen && rs.same(t.res) {
				continue
			}
			t.res, t.seen = rs, true
		}
		for w := range t.watchers {
			p.emit(t, w)
		}
	}
}

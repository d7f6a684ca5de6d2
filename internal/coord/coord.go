// Package coord connects the replicas of the server through Redis, so that N replicas behave as one
// facade: it opens the Redis client a redis_url names (standalone, Sentinel or Cluster), keeps this
// replica's heartbeat in the set of replicas (so each knows how many are alive, for its fallback
// share), and tracks for each user of Redis (the quota budget, the watch poller) whether it reaches
// Redis, logging every change once and exposing the state as metrics and as the health of the
// "redis" service.
//
// Redis keys start with "qcg:". The replica set is "qcg:replicas", a sorted set of replica ids (host
// name and a random suffix) scored by their last heartbeat in Redis's clock; ids older than three
// heartbeats are dropped.
package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	// DefaultHeartbeat is how often a replica renews its entry in the replica set.
	DefaultHeartbeat = 2 * time.Second
	// DefaultTimeout bounds one Redis command.
	DefaultTimeout = 250 * time.Millisecond
)

// ReplicasKey is the sorted set of live replicas.
const ReplicasKey = "qcg:replicas"

// Config configures a Coord.
type Config struct {
	// URL is the redis_url (see ParseURL).
	URL string
	// Password, when set, is Redis's password; it wins over one in URL (read from a file by config).
	Password string
	// FallbackShare is the part of each quota limit this replica may use alone while Redis is
	// unreachable, in (0, 1]; 0 means 1 / the number of replicas last seen alive.
	FallbackShare float64
	// Heartbeat is how often the replica renews its entry; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Timeout bounds each Redis command; 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the changes of state; nil discards them.
	Logger *slog.Logger
	// OnChange, when set, is called (not concurrently) after a component's state changes.
	OnChange func(Status)
}

// Coord is this replica's connection to the others. It is safe for concurrent use.
type Coord struct {
	cfg    Config
	client redis.UniversalClient
	id     string
	log    *slog.Logger
	alive  atomic.Int64 // replicas seen alive at the last heartbeat; 1 before any

	mu         sync.Mutex
	components map[string]*Component
	changeMu   sync.Mutex // serializes OnChange

	stop chan struct{}
	done chan struct{}
}

// Open makes the Redis client and starts the heartbeat. It does not wait for Redis: a replica starts
// (in fallback) while Redis is down.
func Open(cfg Config) (*Coord, error) {
	if !(cfg.FallbackShare >= 0 && cfg.FallbackShare <= 1) {
		return nil, fmt.Errorf("coord: fallback share %v is not in (0, 1]", cfg.FallbackShare)
	}
	opts, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password
		if opts.MasterName != "" {
			opts.SentinelPassword = cfg.Password
		}
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coord{
		cfg: cfg, client: redis.NewUniversalClient(opts), id: replicaID(), log: log,
		components: map[string]*Component{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	c.alive.Store(1)
	goRedisLog.log.Store(log)
	go c.heartbeat()
	return c, nil
}

// replicaID names this replica: its host name (the pod name in Kubernetes) and a random suffix.
func replicaID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return -1
		}
		return r
	}, host)
	var b [4]byte
	_, _ = rand.Read(b[:])
	if host == "" {
		host = "replica"
	}
	return host + "-" + hex.EncodeToString(b[:])
}

// Client returns the Redis client.
func (c *Coord) Client() redis.UniversalClient { return c.client }

// ID returns this replica's id.
func (c *Coord) ID() string { return c.id }

// Timeout returns the bound of one Redis command.
func (c *Coord) Timeout() time.Duration { return c.cfg.Timeout }

// Replicas returns the number of replicas seen alive at the last heartbeat (at least 1).
func (c *Coord) Replicas() int { return int(c.alive.Load()) }

// Share returns the part of a limit this replica may use alone while Redis is unreachable: the
// configured share, else 1 / the replicas last seen alive.
func (c *Coord) Share() float64 {
	if c.cfg.FallbackShare > 0 {
		return c.cfg.FallbackShare
	}
	return 1 / float64(c.Replicas())
}

// Close stops the heartbeat, removes this replica from the set (best effort) and closes the client.
func (c *Coord) Close() error {
	close(c.stop)
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	_ = c.client.ZRem(ctx, ReplicasKey, c.id).Err()
	cancel()
	return c.client.Close()
}

// heartbeatScript renews ARGV[1] in the replica set at Redis's time, drops replicas older than
// ARGV[2] ms, and returns how many remain.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
`)

func (c *Coord) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	comp := c.Component("replicas")
	for {
		if err := c.beat(); err != nil {
			comp.Down(err)
		} else {
			comp.Up()
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// beat renews this replica's entry once.
func (c *Coord) beat() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	n, err := heartbeatScript.Run(ctx, c.client, []string{ReplicasKey}, c.id, (3 * c.cfg.Heartbeat).Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("coord: heartbeat: %w", err)
	}
	c.alive.Store(max(1, n))
	return nil
}

// Component is one user of Redis (the budget of every access key, the watch poller). Each of its
// members reports Down when it stops reaching Redis and Up when it reaches it again; the component is
// in fallback while any member is. It implements budget.Fallback.
type Component struct {
	c    *Coord
	name string

	mu      sync.Mutex
	down    int   // members in fallback
	changes int64 // transitions into fallback
	lastErr string
}

// Component returns the component named name, made on first use.
func (c *Coord) Component(name string) *Component {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.components[name]; k != nil {
		return k
	}
	k := &Component{c: c, name: name}
	c.components[name] = k
	return k
}

// Share returns the Coord's fallback share.
func (k *Component) Share() float64 { return k.c.Share() }

// Down records that one member cannot reach Redis. The first member to fall back logs it.
func (k *Component) Down(err error) {
	k.mu.Lock()
	k.down++
	first := k.down == 1
	if first {
		k.changes++
		k.lastErr = errText(err)
	}
	k.mu.Unlock()
	if first {
		k.c.log.Warn("Redis unreachable: falling back to this replica alone", "component", k.name,
			"error", errText(err), "fallback_share", k.c.Share())
		k.c.changed()
	}
}

// Up records that a member reaches Redis again. The last member to rejoin logs it.
func (k *Component) Up() {
	k.mu.Lock()
	if k.down == 0 {
		k.mu.Unlock()
		return
	}
	k.down--
	last := k.down == 0
	k.mu.Unlock()
	if last {
		k.c.log.Info("Redis reachable again: rejoined the other replicas", "component", k.name)
		k.c.changed()
	}
}

// Status is the state of the coordination, for metrics and health.
type Status struct {
	// Replicas is the number of replicas seen alive at the last heartbeat.
	Replicas int
	// Components holds each component's state, by name.
	Components map[string]ComponentStatus
}

// Fallback reports whether any component is in fallback.
func (s Status) Fallback() bool {
	for _, k := range s.Components {
		if k.Fallback {
			return true
		}
	}
	return false
}

// ComponentStatus is the state of one component.
type ComponentStatus struct {
	// Fallback says the component cannot reach Redis and works alone.
	Fallback bool
	// Fallbacks counts its falls into fallback since start.
	Fallbacks int64
	// Error is the last error that made it fall back.
	Error string
}

// Status returns the current state.
func (c *Coord) Status() Status {
	c.mu.Lock()
	ks := make([]*Component, 0, len(c.components))
	for _, k := range c.components {
		ks = append(ks, k)
	}
	c.mu.Unlock()
	s := Status{Replicas: c.Replicas(), Components: make(map[string]ComponentStatus, len(ks))}
	for _, k := range ks {
		k.mu.Lock()
		s.Components[k.name] = ComponentStatus{Fallback: k.down > 0, Fallbacks: k.changes, Error: k.lastErr}
		k.mu.Unlock()
	}
	return s
}

func (c *Coord) changed() {
	if c.cfg.OnChange == nil {
		return
	}
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	c.cfg.OnChange(c.Status())
}

// errText is an error's text with go-redis's prefix trimmed; go-redis errors carry no password.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

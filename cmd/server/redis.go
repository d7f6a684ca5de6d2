package main

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/coord"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/idempotency"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// redisHealthService is the gRPC health service name that reports Redis: SERVING while every
// component reaches it, NOT_SERVING while one works alone. The server's own health ("") does not
// depend on it: a replica in fallback still serves.
const redisHealthService = "redis"

// coordination is this replica's link to the others through Redis; nil when redis_url is unset.
type coordination struct {
	co *coord.Coord

	mu     sync.Mutex
	health *health.Server
	status coord.Status
}

// openCoordination opens the Redis coordination when redis_url is set, and registers its metrics.
func openCoordination(cfg *config.Config, tel *telemetry.Telemetry, log *slog.Logger) (*coordination, error) {
	if cfg.Redis.URL == "" {
		return nil, nil
	}
	c := &coordination{}
	co, err := coord.Open(coord.Config{
		URL:           cfg.Redis.URL,
		Password:      cfg.Redis.Password,
		FallbackShare: cfg.Redis.FallbackShare,
		Logger:        log.With("component", "redis"),
		OnChange:      c.changed,
	})
	if err != nil {
		return nil, fmt.Errorf("Redis (%s): %w", cfg.Source(config.SettingRedisURL), err)
	}
	c.co = co
	if err := tel.Registry().Register(co.Collector()); err != nil {
		_ = co.Close()
		return nil, fmt.Errorf("Redis metrics: %w", err)
	}
	log.Info("coordinating with other replicas through Redis", "redis", coord.Redact(cfg.Redis.URL), "replica", co.ID())
	return c, nil
}

// budgetShared returns the Shared settings of quota budgets: nil without Redis.
func (c *coordination) budgetShared(accessKeyID string) *budget.Shared {
	if c == nil {
		return nil
	}
	return &budget.Shared{Client: c.co.Client(), Key: accessKeyID, Timeout: c.co.Timeout(), Fallback: c.co.Component("budget")}
}

// idempotencyStore returns the store of idempotency keys: in Redis, shared by the replicas, or in
// this process without Redis.
func (c *coordination) idempotencyStore(retention time.Duration) idempotency.Store {
	if c == nil {
		return idempotency.NewMemory(idempotency.MemoryOptions{Retention: retention})
	}
	return idempotency.NewRedis(c.co.Client(), idempotency.RedisOptions{
		Retention: retention, CommandTimeout: c.co.Timeout(), Fallback: c.co.Component("idempotency"),
	})
}

// watchShared returns the Shared settings of the watch hub: nil without Redis.
func (c *coordination) watchShared() *watch.Shared {
	if c == nil {
		return nil
	}
	return &watch.Shared{Client: c.co.Client(), Replica: c.co.ID(), Timeout: c.co.Timeout(), Fallback: c.co.Component("watch")}
}

// setHealth reports Redis's state on h, now and on every change.
func (c *coordination) setHealth(h *health.Server) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.health = h
	c.mu.Unlock()
	c.changed(c.co.Status())
}

func (c *coordination) changed(s coord.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health == nil {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if s.Fallback() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	c.health.SetServingStatus(redisHealthService, st)
}

func (c *coordination) close() {
	if c != nil {
		_ = c.co.Close()
	}
}

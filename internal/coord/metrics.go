package coord

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Metric names of Collector.
const (
	MetricFallback  = "qingcloud_redis_fallback"
	MetricFallbacks = "qingcloud_redis_fallbacks_total"
	MetricReplicas  = "qingcloud_redis_replicas"
)

var (
	descFallback  = prometheus.NewDesc(MetricFallback, "1 while the component cannot reach Redis and works alone (local budget share, local polling), else 0.", []string{"component"}, nil)
	descFallbacks = prometheus.NewDesc(MetricFallbacks, "Times the component fell back because Redis was unreachable.", []string{"component"}, nil)
	descReplicas  = prometheus.NewDesc(MetricReplicas, "Replicas seen alive in Redis at the last heartbeat.", nil, nil)
)

// Collector returns a Prometheus collector of the Coord's state.
func (c *Coord) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Coord }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFallback
	ch <- descFallbacks
	ch <- descReplicas
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Status()
	ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(s.Replicas))
	for name, st := range s.Components {
		v := 0.0
		if st.Fallback {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descFallback, prometheus.GaugeValue, v, name)
		ch <- prometheus.MustNewConstMetric(descFallbacks, prometheus.CounterValue, float64(st.Fallbacks), name)
	}
}

// redisLog sends go-redis's own log lines (reconnection attempts) to a slog logger at debug level:
// the Coord logs each fall back and rejoin once itself.
type redisLog struct{ log atomic.Pointer[slog.Logger] }

func (l *redisLog) Printf(ctx context.Context, format string, v ...any) {
	if lg := l.log.Load(); lg != nil {
		lg.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
	}
}

var goRedisLog = func() *redisLog {
	l := &redisLog{}
	redis.SetLogger(l)
	return l
}()

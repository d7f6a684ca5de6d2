package server

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

func TestWatchCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(watchCollector(func() watch.Stats { return watch.Stats{Watches: 5, Pollers: 2, Jobs: 7, Calls: 40, Saved: 60} }))
	want := `
# HELP qingcloud_watch_streams Open watch streams (WatchService).
# TYPE qingcloud_watch_streams gauge
qingcloud_watch_streams 5
# HELP qingcloud_watch_upstream_calls_saved_total Upstream calls saved by batching watched ids into shared polls.
# TYPE qingcloud_watch_upstream_calls_saved_total counter
qingcloud_watch_upstream_calls_saved_total 60
# HELP qingcloud_watch_targets Distinct jobs and resources being watched.
# TYPE qingcloud_watch_targets gauge
qingcloud_watch_targets{kind="job"} 7
qingcloud_watch_targets{kind="resource"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), telemetry.MetricWatchStreams, telemetry.MetricWatchSaved, telemetry.MetricWatchTargets); err != nil {
		t.Fatal(err)
	}
}

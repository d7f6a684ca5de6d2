package scaleout

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// TestBenchScaleOut measures the figures of docs/bench-scale-out.md. It runs only with
// SCALEOUT_BENCH=1 (it takes minutes): go test -run TestBenchScaleOut -v ./internal/scaleout
func TestBenchScaleOut(t *testing.T) {
	if os.Getenv("SCALEOUT_BENCH") == "" {
		t.Skip("set SCALEOUT_BENCH=1 to measure docs/bench-scale-out.md's figures")
	}
	t.Run("calls per round", func(t *testing.T) {
		for _, shared := range []bool{false, true} {
			for n := 1; n <= 3; n++ {
				steps, total, polling := pollRounds(t, n, shared)
				t.Logf("BENCH replicas=%d redis=%v (300 jobs, 3,000 streams): %d replicas polling, %d DescribeJobs in 20 s, increments between quiet moments %v", n, shared, polling, total, steps)
			}
		}
	})
	t.Run("redis commands and latency", func(t *testing.T) {
		srv := redistest.Start(t)
		e := startEmulator(t, "-quota", "-1")
		with := startReplica(t, e, srv.URL(), "-quota-requests", "100000")
		without := startReplica(t, e, "", "-quota-requests", "100000")
		rc := srv.Client()
		ctx := context.Background()
		lat := func(r *replica, n int) (p50, p99 time.Duration) {
			var ds []time.Duration
			for i := range n {
				start := time.Now()
				if _, err := iaasv1.NewVolumeServiceClient(r.conn).DescribeVolumes(ctx, &iaasv1.DescribeVolumesRequest{Offset: proto.Int32(int32(i))}); err != nil {
					t.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			return ds[len(ds)/2], ds[len(ds)*99/100]
		}
		lat(with, 100) // warm up
		lat(without, 100)
		if err := rc.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		before := commands(t, rc)
		p50r, p99r := lat(with, 2000)
		used := commands(t, rc) - before
		p50, p99 := lat(without, 2000)
		t.Logf("BENCH 2000 admitted calls: %d Redis commands (%.2f per call, heartbeats included)", used, float64(used)/2000)
		t.Logf("BENCH latency without Redis p50 %v p99 %v; with Redis p50 %v p99 %v", p50, p99, p50r, p99r)
		stats, _ := rc.Info(ctx, "commandstats").Result()
		for _, l := range strings.Split(stats, "\n") {
			if strings.HasPrefix(l, "cmdstat_") {
				t.Logf("BENCH %s", strings.TrimSpace(l))
			}
		}
	})
	t.Run("redis commands per poll round", func(t *testing.T) {
		srv := redistest.Start(t)
		e := startEmulator(t, "-quota", "-1", "-job-pending", "1s", "-job-working", "60s")
		ids := createJobs(t, e, 300)
		var reps []*replica
		for range 3 {
			reps = append(reps, startReplica(t, e, srv.URL(), "-quota-requests", "-1"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var first atomic.Int64
		watchAll(ctx, t, reps, ids, 3000, &first)
		waitFor(t, "first states", 2*time.Minute, func() bool { return first.Load() == 3000 })
		rc := srv.Client()
		_ = rc.ConfigResetStat(ctx).Err()
		reqs0, _ := e.stats(t)
		c0 := commands(t, rc)
		time.Sleep(20 * time.Second) // a measurement window, not a synchronisation
		reqs1, _ := e.stats(t)
		used := commands(t, rc) - c0
		calls := reqs1["DescribeJobs"] - reqs0["DescribeJobs"]
		t.Logf("BENCH 20 s steady state, 3 replicas, 300 jobs, 3,000 streams: %d DescribeJobs (%d rounds), %d Redis commands (%.1f per round, heartbeats and leases included)",
			calls, calls/3, used, float64(used)/float64(max(1, calls/3)))
		stats, _ := rc.Info(ctx, "commandstats").Result()
		for _, l := range strings.Split(stats, "\n") {
			if strings.HasPrefix(l, "cmdstat_") {
				t.Logf("BENCH %s", strings.TrimSpace(l))
			}
		}
	})
}

// commands returns Redis's total_commands_processed.
func commands(t *testing.T, rc interface {
	Info(context.Context, ...string) *redis.StringCmd
}) int64 {
	t.Helper()
	s, err := rc.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_commands_processed")
	return 0
}

// pollRounds runs n replicas (sharing Redis or not), 3,000 streams of 300 jobs, and returns the
// DescribeJobs increments between quiet moments, the DescribeJobs of a 20 s window, and how many
// replicas called upstream.
func pollRounds(t *testing.T, n int, shared bool) (steps []int64, total int64, polling int) {
	url := ""
	if shared {
		url = redistest.Start(t).URL()
	}
	e := startEmulator(t, "-quota", "-1", "-job-pending", "1s", "-job-working", "60s")
	ids := createJobs(t, e, 300)
	var reps []*replica
	for range n {
		reps = append(reps, startReplica(t, e, url, "-quota-requests", "-1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var first atomic.Int64
	watchAll(ctx, t, reps, ids, 3000, &first)
	waitFor(t, fmt.Sprintf("first states on %d replicas", n), 2*time.Minute, func() bool { return first.Load() == 3000 })
	before, _ := e.stats(t)
	steps = upstreamPlateaus(t, e, 20*time.Second, 0)
	after, _ := e.stats(t)
	for _, r := range reps {
		if r.metric(t, "qingcloud_watch_upstream_calls_total") > 0 {
			polling++
		}
		r.kill()
	}
	return steps, after["DescribeJobs"] - before["DescribeJobs"], polling
}

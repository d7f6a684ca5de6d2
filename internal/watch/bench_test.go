package watch_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// scaleConfig is one run of the scale scenario.
type scaleConfig struct {
	streams, jobs int
	// mode "hub" drives WatchService.WatchJobs in-process with a stream that records what is sent
	// (the gRPC handler's code path without transport); "grpc" opens real gRPC streams to the
	// facade server over bufconn.
	mode string
	// pending and working are the emulator's job durations.
	pending, working time.Duration
	hub              watch.Options
}

// scaleResult are the measured figures of a run.
type scaleResult struct {
	cfg                          scaleConfig
	setup, run                   time.Duration
	rounds, freshRounds          int64
	describeJobs, maxRoundCalls  int64
	events                       int64
	rssBefore, rssPeak, hwm      int64 // bytes
	heapPeak                     uint64
	goroutinesPeak               int
	delayP50, delayP99, delayMax time.Duration // job end -> event at every watcher
	lateJobs                     int           // jobs whose delay exceeded one poll interval
	interval                     time.Duration // the poll interval bound used for lateJobs
}

func (r scaleResult) String() string {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	return fmt.Sprintf("mode=%s streams=%d jobs=%d: setup %v, run %v; DescribeJobs %d over %d full rounds + %d first looks, at most %d per round; "+
		"events %d; RSS before streams %s, peak %s (VmHWM %s), heap in use peak %.1f MiB, goroutines peak %d; "+
		"job end -> event at every watcher: p50 %v p99 %v max %v (%d jobs over %v)",
		r.cfg.mode, r.cfg.streams, r.cfg.jobs, r.setup.Round(time.Millisecond), r.run.Round(time.Millisecond),
		r.describeJobs, r.rounds, r.freshRounds, r.maxRoundCalls, r.events,
		mib(r.rssBefore), mib(r.rssPeak), mib(r.hwm), float64(r.heapPeak)/(1<<20), r.goroutinesPeak,
		r.delayP50.Round(time.Millisecond), r.delayP99.Round(time.Millisecond), r.delayMax.Round(time.Millisecond),
		r.lateJobs, r.interval)
}

// procStatus returns VmRSS and VmHWM of this process in bytes (0 where /proc is missing).
func procStatus() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// recordingStream is a WatchJobs server stream that calls onSend for each message.
type recordingStream struct {
	grpc.ServerStream
	ctx    context.Context
	onSend func(*iaasv1.WatchJobsResponse)
}

func (s *recordingStream) Context() context.Context { return s.ctx }

func (s *recordingStream) Send(m *iaasv1.WatchJobsResponse) error {
	s.onSend(m)
	return nil
}

// runScale creates cfg.jobs jobs on an in-process emulator, opens cfg.streams watch streams over
// them (stream i watches job i mod jobs), and measures calls, memory and delivery delay.
func runScale(tb testing.TB, cfg scaleConfig) scaleResult {
	res := scaleResult{cfg: cfg}
	start := time.Now()
	e := newEnv(tb, emulator.Options{JobPending: cfg.pending, JobWorking: cfg.working, Quota: -1}, cfg.hub)

	// Create the jobs with 8 parallel RunInstances callers; a job ends pending+working after it was
	// created, which is no earlier than the request was sent.
	ids := make([]string, cfg.jobs)
	ends := make([]time.Time, cfg.jobs)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.jobs {
					return
				}
				sent := time.Now()
				ids[i], _ = e.runInstances(tb, 1)
				ends[i] = sent.Add(cfg.pending + cfg.working)
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	res.rssBefore, _ = procStatus()
	describeBefore := e.describeJobs()

	// received[i] is when stream i got its job's terminal event.
	received := make([]atomic.Int64, cfg.streams)
	var events atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), cfg.pending+cfg.working+2*time.Minute)
	defer cancel()
	errs := make(chan error, cfg.streams)
	var streams sync.WaitGroup
	record := func(i int, m *iaasv1.WatchJobsResponse) {
		events.Add(1)
		if m.GetJob().GetTerminal() {
			received[i].Store(time.Now().UnixNano())
		}
	}
	switch cfg.mode {
	case "hub":
		for i := range cfg.streams {
			streams.Add(1)
			go func() {
				defer streams.Done()
				s := &recordingStream{ctx: ctx, onSend: func(m *iaasv1.WatchJobsResponse) { record(i, m) }}
				errs <- e.hub.WatchJobs(&iaasv1.WatchJobsRequest{JobIds: []string{ids[i%cfg.jobs]}}, s)
			}()
		}
	case "grpc":
		srv, err := server.New(server.Config{Backend: e.be, DefaultZone: "pek3a", Watch: e.hub})
		if err != nil {
			tb.Fatal(err)
		}
		defer srv.Stop()
		lis := bufconn.Listen(1 << 20)
		go func() { _ = srv.Serve(lis) }()
		const conns = 16
		clients := make([]iaasv1.WatchServiceClient, conns)
		for c := range clients {
			conn, err := grpc.NewClient("passthrough:///bufconn",
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				tb.Fatal(err)
			}
			defer conn.Close()
			clients[c] = iaasv1.NewWatchServiceClient(conn)
		}
		for i := range cfg.streams {
			streams.Add(1)
			go func() {
				defer streams.Done()
				st, err := clients[i%conns].WatchJobs(ctx, &iaasv1.WatchJobsRequest{JobIds: []string{ids[i%cfg.jobs]}})
				if err != nil {
					errs <- err
					return
				}
				for {
					m, err := st.Recv()
					if err != nil {
						if err.Error() == "EOF" {
							err = nil
						}
						errs <- err
						return
					}
					record(i, m)
				}
			}()
		}
	default:
		tb.Fatalf("unknown mode %q", cfg.mode)
	}
	res.setup = time.Since(start)

	// Sample memory while the streams run.
	runStart := time.Now()
	done := make(chan struct{})
	go func() { streams.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	var ms runtime.MemStats
sample:
	for {
		select {
		case <-done:
			break sample
		case <-tick.C:
			rss, _ := procStatus()
			res.rssPeak = max(res.rssPeak, rss)
			runtime.ReadMemStats(&ms)
			res.heapPeak = max(res.heapPeak, ms.HeapInuse)
			res.goroutinesPeak = max(res.goroutinesPeak, runtime.NumGoroutine())
		}
	}
	tick.Stop()
	res.run = time.Since(runStart)
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatalf("stream: %v", err)
		}
	}
	_, res.hwm = procStatus()

	s := e.hub.Stats()
	res.rounds, res.freshRounds, res.maxRoundCalls = s.Rounds, s.FreshRounds, s.MaxRoundCalls
	res.describeJobs = e.describeJobs() - describeBefore
	res.events = events.Load()

	// Delay per job: from its end to the last of its watchers getting the terminal event.
	last := make([]int64, cfg.jobs)
	for i := range cfg.streams {
		at := received[i].Load()
		if at == 0 {
			tb.Fatalf("stream %d got no terminal event", i)
		}
		last[i%cfg.jobs] = max(last[i%cfg.jobs], at)
	}
	o := cfg.hub
	if o.MinInterval == 0 {
		o.MinInterval = watch.DefaultMinInterval
	}
	jit := o.Jitter
	if jit == 0 {
		jit = watch.DefaultJitter
	}
	res.interval = time.Duration(float64(o.MinInterval) * (1 + max(jit, 0)))
	delays := make([]time.Duration, cfg.jobs)
	for j := range cfg.jobs {
		delays[j] = max(0, time.Unix(0, last[j]).Sub(ends[j]))
		if delays[j] > res.interval {
			res.lateJobs++
		}
	}
	slices.Sort(delays)
	res.delayP50, res.delayP99, res.delayMax = delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1]
	return res
}

// TestWatchScale is the benchmark of issue 5: 10,000 concurrent watch streams over 1,000 jobs on
// the in-process emulator. It runs only with WATCH_SCALE=hub or WATCH_SCALE=grpc (the mode), so CI
// stays fast:
//
//	WATCH_SCALE=hub go test -run TestWatchScale -v ./internal/watch
func TestWatchScale(t *testing.T) {
	mode := os.Getenv("WATCH_SCALE")
	if mode == "" || testing.Short() {
		t.Skip("set WATCH_SCALE=hub or WATCH_SCALE=grpc to run the 10,000-stream benchmark")
	}
	streams, jobs := 10000, 1000
	if v, err := strconv.Atoi(os.Getenv("WATCH_SCALE_STREAMS")); err == nil {
		streams = v
	}
	r := runScale(t, scaleConfig{streams: streams, jobs: jobs, mode: mode, pending: 2 * time.Second, working: 3 * time.Second})
	t.Log(r)
	if r.maxRoundCalls > 10 {
		t.Errorf("a round made %d DescribeJobs calls; target at most 10", r.maxRoundCalls)
	}
	if r.hwm > 256<<20 {
		t.Errorf("peak RSS %d MiB; target under 256 MiB", r.hwm>>20)
	}
	if r.lateJobs > 0 {
		t.Errorf("%d jobs reached some watcher later than one poll interval (%v) after they ended", r.lateJobs, r.interval)
	}
}

// BenchmarkWatch10kStreams runs the scale scenario once per iteration and reports its figures as
// metrics (use -benchtime=1x).
func BenchmarkWatch10kStreams(b *testing.B) {
	for _, mode := range []string{"hub", "grpc"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				r := runScale(b, scaleConfig{streams: 10000, jobs: 1000, mode: mode, pending: 2 * time.Second, working: 3 * time.Second})
				b.ReportMetric(float64(r.maxRoundCalls), "calls/round")
				b.ReportMetric(float64(r.hwm)/(1<<20), "MiB-VmHWM")
				b.ReportMetric(float64(r.rssPeak)/(1<<20), "MiB-RSS")
				b.ReportMetric(float64(r.delayMax.Milliseconds()), "ms-max-delay")
				b.ReportMetric(float64(r.delayP50.Milliseconds()), "ms-p50-delay")
				b.Log(r)
			}
		})
	}
}

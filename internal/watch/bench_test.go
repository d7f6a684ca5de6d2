package watch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// The scale scenario of issue 5: 10,000 concurrent watch streams over 1,000 jobs on the emulator.
// Jobs stay pending 2s and working 3s; stream i watches job i mod 1,000 (10 watchers per job). It runs
// in one of two modes:
//
//   - "hub": everything in this process; WatchService.WatchJobs is called directly with a server stream
//     that records what is sent (the gRPC handler's code path without the transport).
//   - "grpc": the facade (server.New with the Hub, over an in-process emulator) runs in a child process
//     listening on loopback TCP; this process creates the jobs through InstanceService.RunInstances and
//     opens the 10,000 streams over 16 gRPC connections. The server's memory is read from the child's
//     /proc/<pid>/status, so it excludes the clients.
const (
	scaleStreams = 10000
	scaleJobs    = 1000
	scalePending = 2 * time.Second
	scaleWorking = 3 * time.Second
)

// loggedCall is one DescribeJobs call of the Hub.
type loggedCall struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	IDs   []string  `json:"ids"`
}

// pollLog is an upstream that records the Hub's DescribeJobs calls.
type pollLog struct {
	up    tenant.Caller
	mu    sync.Mutex
	calls []loggedCall
}

// Call implements tenant.Caller.
func (l *pollLog) Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error) {
	start := time.Now()
	data, err := l.up.Call(ctx, action, params, post)
	if action == "DescribeJobs" {
		c := loggedCall{Start: start, End: time.Now()}
		for i := 1; params["jobs."+strconv.Itoa(i)] != ""; i++ {
			c.IDs = append(c.IDs, params["jobs."+strconv.Itoa(i)])
		}
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	}
	return data, err
}

func (l *pollLog) log() []loggedCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// openStreams counts the WatchJobs calls in progress and the most at once.
type openStreams struct{ open, peak atomic.Int64 }

// enter counts a call in; the caller calls leave when it returns.
func (o *openStreams) enter() {
	n := o.open.Add(1)
	for m := o.peak.Load(); n > m && !o.peak.CompareAndSwap(m, n); m = o.peak.Load() {
	}
}

func (o *openStreams) leave() { o.open.Add(-1) }

// countingHub is the Hub as the child server's WatchService, counting the WatchJobs streams its
// handler holds at once (a stream the client has opened but the server's per-connection stream limit
// holds back is not counted: its handler has not started).
type countingHub struct {
	*watch.Hub
	streams openStreams
}

// WatchJobs implements iaasv1.WatchServiceServer.
func (c *countingHub) WatchJobs(req *iaasv1.WatchJobsRequest, s grpc.ServerStreamingServer[iaasv1.WatchJobsResponse]) error {
	c.streams.enter()
	defer c.streams.leave()
	return c.Hub.WatchJobs(req, s)
}

// procStatus returns VmRSS and VmHWM in bytes of a process ("self" or a pid); 0 where /proc is missing.
func procStatus(pid string) (rss, hwm int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
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

// scaleResult are the figures of one run.
type scaleResult struct {
	mode                    string
	streams, jobs           int
	setup, run              time.Duration
	stats                   watch.Stats
	describeJobs            int64
	rssBefore, rssPeak, hwm int64  // bytes, of the process that serves the streams
	heapPeak                uint64 // hub mode only
	goroutinesPeak          int    // hub mode only
	// conns are the gRPC connections of the streams (grpc mode); openPeak is the most streams the
	// server held at once, which must be all of them for the delays to mean anything: a stream that
	// starts after its job ended watches a finished job, and its "delay" is its own late start.
	conns, openPeak int
	// allFirst is from the first stream's start to the last stream's first event; lateStartJobs
	// counts the jobs first looked at after they ended (see analyse).
	allFirst      time.Duration
	lateStartJobs int
	// endSpreadP50 and endSpreadMax are the RunInstances round trips: how much earlier than the
	// true end the delays may start counting.
	endSpreadP50, endSpreadMax   time.Duration
	delayP50, delayP99, delayMax time.Duration
	intervalP50, intervalMax     time.Duration
	fanoutP50, fanoutP99         time.Duration
	fanoutMax                    time.Duration
	// lateJobs counts jobs whose delay exceeded the poll interval in effect (the job ended just after
	// a poll started, so the next poll's own duration and the fan-out come on top); excessMax is the
	// largest excess, and slowJobs counts jobs whose excess is more than that poll's duration plus
	// 100ms of fan-out.
	lateJobs, slowJobs int
	excessMax          time.Duration
	// profiled is the child server's memory when it wrote its profiles (grpc mode with
	// WATCH_SCALE_PROFILE).
	profiled *profiledMem
}

func (r scaleResult) String() string {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	s := fmt.Sprintf("mode=%s streams=%d jobs=%d: setup %v, run %v\n", r.mode, r.streams, r.jobs, ms(r.setup), ms(r.run))
	s += fmt.Sprintf("  streams open at once: at most %d", r.openPeak)
	if r.conns > 0 {
		s += fmt.Sprintf(" (over %d gRPC connections)", r.conns)
	}
	s += fmt.Sprintf("; every stream had its first event %v after the first one started; jobs first looked at after they ended: %d\n",
		ms(r.allFirst), r.lateStartJobs)
	s += fmt.Sprintf("  upstream: %d DescribeJobs over %d full rounds + %d first looks; at most %d per round\n",
		r.describeJobs, r.stats.Rounds, r.stats.FreshRounds, r.stats.MaxRoundCalls)
	s += fmt.Sprintf("  server memory: RSS %s before the streams, peak %s (VmHWM %s)", mib(r.rssBefore), mib(r.rssPeak), mib(r.hwm))
	if r.heapPeak > 0 {
		s += fmt.Sprintf("; heap in use peak %.1f MiB; goroutines peak %d", float64(r.heapPeak)/(1<<20), r.goroutinesPeak)
	}
	if r.profiled != nil {
		s += "\n  " + r.profiled.String()
	}
	s += fmt.Sprintf("\n  job end -> terminal event at every watcher: p50 %v, p99 %v, max %v (from RunInstances sent + %v; its round trip p50 %v, max %v)\n",
		ms(r.delayP50), ms(r.delayP99), ms(r.delayMax), scalePending+scaleWorking, ms(r.endSpreadP50), ms(r.endSpreadMax))
	s += fmt.Sprintf("  poll interval in effect when the jobs ended: p50 %v, max %v\n", ms(r.intervalP50), ms(r.intervalMax))
	s += fmt.Sprintf("  jobs whose delay exceeded their poll interval: %d (by at most %v); by more than the poll's own duration + 100ms: %d\n",
		r.lateJobs, ms(r.excessMax), r.slowJobs)
	s += fmt.Sprintf("  answer of the poll that saw the end -> every watcher: p50 %v, p99 %v, max %v", ms(r.fanoutP50), ms(r.fanoutP99), ms(r.fanoutMax))
	return s
}

// streamLog records, per stream, when its first event and its terminal event arrived (UnixNano).
type streamLog struct {
	opened          time.Time // when the streams started to open
	first, terminal []atomic.Int64
}

func newStreamLog(n int) *streamLog {
	return &streamLog{opened: time.Now(), first: make([]atomic.Int64, n), terminal: make([]atomic.Int64, n)}
}

// got records an event of stream i.
func (l *streamLog) got(i int, m *iaasv1.WatchJobsResponse) {
	now := time.Now().UnixNano()
	l.first[i].CompareAndSwap(0, now)
	if m.GetJob().GetTerminal() {
		l.terminal[i].Store(now)
	}
}

// quantiles returns the median, 99th percentile and maximum of ds (sorted in place).
func quantiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
}

// analyse computes the delays of a run. ends[j] is no later than job j's end, endsBy[j] no earlier
// (the delays count from ends[j]; endsBy[j]-ends[j] is reported as their uncertainty). A job with a stream
// whose first event was already the terminal one was first looked at after it ended (the stream
// opened late, or its first look came late): its delay says nothing about the poll schedule, so it
// is counted in lateStartJobs and left out of the delay figures.
func (r *scaleResult) analyse(tb testing.TB, ids []string, ends, endsBy []time.Time, sl *streamLog, calls []loggedCall) {
	last := make([]int64, len(ids))
	lateStart := make([]bool, len(ids))
	var firstMax int64
	for i := range sl.terminal {
		at := sl.terminal[i].Load()
		if at == 0 {
			tb.Fatalf("stream %d got no terminal event", i)
		}
		j := i % len(ids)
		last[j] = max(last[j], at)
		first := sl.first[i].Load()
		firstMax = max(firstMax, first)
		lateStart[j] = lateStart[j] || first == at
	}
	r.allFirst = time.Unix(0, firstMax).Sub(sl.opened)
	byJob := map[string][]loggedCall{}
	for _, c := range calls {
		for _, id := range c.IDs {
			byJob[id] = append(byJob[id], c)
		}
	}
	var delays, intervals, fanouts, spreads []time.Duration
	for j, id := range ids {
		if lateStart[j] {
			r.lateStartJobs++
			continue
		}
		got := time.Unix(0, last[j])
		delay := max(0, got.Sub(ends[j]))
		delays = append(delays, delay)
		spreads = append(spreads, endsBy[j].Sub(ends[j]))
		// A job leaves the batches once terminal: the last call naming it saw it end, and the one
		// before it did not; the gap between them is the poll interval in effect.
		cs := byJob[id]
		if len(cs) < 2 {
			tb.Fatalf("job %s: %d DescribeJobs calls named it; want one before and one after its end", id, len(cs))
		}
		prev, seen := cs[len(cs)-2], cs[len(cs)-1]
		interval := seen.Start.Sub(prev.Start)
		intervals = append(intervals, interval)
		fanouts = append(fanouts, max(0, got.Sub(seen.End)))
		if delay > interval {
			r.lateJobs++
			r.excessMax = max(r.excessMax, delay-interval)
			if delay > interval+seen.End.Sub(seen.Start)+100*time.Millisecond {
				r.slowJobs++
			}
		}
	}
	if len(delays) == 0 {
		return
	}
	r.delayP50, r.delayP99, r.delayMax = quantiles(delays)
	r.intervalP50, _, r.intervalMax = quantiles(intervals)
	r.fanoutP50, r.fanoutP99, r.fanoutMax = quantiles(fanouts)
	r.endSpreadP50, _, r.endSpreadMax = quantiles(spreads)
}

// createJobs runs create(i) for i < n with 8 workers and returns the job ids with bounds of their
// ends: a job ends pending+working after the emulator created it, which is between sending and
// receiving the answer.
func createJobs(tb testing.TB, n int, create func() (string, error)) (ids []string, ends, endsBy []time.Time) {
	ids, ends, endsBy = make([]string, n), make([]time.Time, n), make([]time.Time, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				sent := time.Now()
				id, err := create()
				if err != nil {
					errs <- err
					return
				}
				ids[i], ends[i], endsBy[i] = id, sent.Add(scalePending+scaleWorking), time.Now().Add(scalePending+scaleWorking)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	return ids, ends, endsBy
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

// runScaleHub runs the scenario in this process.
func runScaleHub(tb testing.TB, streams int) scaleResult {
	r := scaleResult{mode: "hub", streams: streams, jobs: scaleJobs}
	start := time.Now()
	e := newEnv(tb, emulator.Options{JobPending: scalePending, JobWorking: scaleWorking, Quota: -1}, watch.Options{})
	plog := &pollLog{up: e.be}
	hub := watch.NewSingle(plog, "pek3a", watch.Options{})
	defer hub.Close()
	ids, ends, endsBy := createJobs(tb, scaleJobs, func() (string, error) {
		id, _ := e.runInstances(tb, 1)
		return id, nil
	})
	runtime.GC()
	r.rssBefore, _ = procStatus("self")
	describeBefore := e.describeJobs()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	var open openStreams
	sl := newStreamLog(streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			open.enter()
			defer open.leave()
			s := &recordingStream{ctx: ctx, onSend: func(m *iaasv1.WatchJobsResponse) { sl.got(i, m) }}
			errs <- hub.WatchJobs(&iaasv1.WatchJobsRequest{JobIds: []string{ids[i%scaleJobs]}}, s)
		}()
	}
	r.setup = time.Since(start)
	runStart := time.Now()
	sample(&wg, func() {
		rss, _ := procStatus("self")
		r.rssPeak = max(r.rssPeak, rss)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.heapPeak = max(r.heapPeak, ms.HeapInuse)
		r.goroutinesPeak = max(r.goroutinesPeak, runtime.NumGoroutine())
	})
	r.run = time.Since(runStart)
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatalf("stream: %v", err)
		}
	}
	_, r.hwm = procStatus("self")
	r.openPeak = int(open.peak.Load())
	r.stats = hub.Stats()
	r.describeJobs = e.describeJobs() - describeBefore
	r.analyse(tb, ids, ends, endsBy, sl, plog.log())
	return r
}

// sample calls f every 100ms until wg is done.
func sample(wg *sync.WaitGroup, f func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			f()
		}
	}
}

// scaleMemLimit is the child server's GOMEMLIMIT in the grpc mode.
const scaleMemLimit = "200MiB"

// scaleServerReport is what the child server process reports when its stdin closes.
type scaleServerReport struct {
	Calls        []loggedCall `json:"calls"`
	Stats        watch.Stats  `json:"stats"`
	DescribeJobs int64        `json:"describe_jobs"`
	OpenPeak     int64        `json:"open_peak"` // the most WatchJobs streams served at once
	// Profiled is the child's memory when it wrote its profiles (WATCH_SCALE_PROFILE), nil otherwise.
	Profiled *profiledMem `json:"profiled,omitempty"`
}

// profiledMem is the child server's memory when every stream was open (after a GC), with
// WATCH_SCALE_PROFILE set.
type profiledMem struct {
	Open       int64  `json:"open"`       // WatchJobs streams its handler held
	Goroutines int    `json:"goroutines"` // runtime.NumGoroutine
	HeapInuse  uint64 `json:"heap_inuse"` // runtime.MemStats, bytes
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	RSS        int64  `json:"rss"` // VmRSS
}

func (m *profiledMem) String() string {
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	per := func(b uint64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024/float64(max(m.Open, 1))) }
	return fmt.Sprintf("at the profile: %d streams open, %d goroutines (%.2f per stream); heap in use %s, stacks %s (%s per stream), Sys %s, RSS %s",
		m.Open, m.Goroutines, float64(m.Goroutines)/float64(max(m.Open, 1)), mib(m.HeapInuse), mib(m.StackInuse), per(m.StackInuse), mib(m.Sys), mib(uint64(m.RSS)))
}

// writeProfiles writes the heap (after a GC) and goroutine profiles of this process to dir as
// heap.pprof and goroutine.pprof, and returns its memory then.
func writeProfiles(dir string, open int64) (*profiledMem, error) {
	runtime.GC()
	m := &profiledMem{Open: open, Goroutines: runtime.NumGoroutine()}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapInuse, m.StackInuse, m.Sys = ms.HeapInuse, ms.StackInuse, ms.Sys
	m.RSS, _ = procStatus("self")
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			return nil, err
		}
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("write the %s profile: %w", name, err)
		}
	}
	return m, nil
}

// TestWatchScaleServer is the child process of the "grpc" mode: the facade with the Hub over an
// in-process emulator on loopback TCP. It prints "ADDR <host:port>", serves until stdin closes, then
// prints its report as one JSON line. It is skipped unless started by runScaleGRPC.
func TestWatchScaleServer(t *testing.T) {
	if os.Getenv("WATCH_SCALE_SERVER") != "1" {
		t.Skip("the child process of TestWatchScale (WATCH_SCALE=grpc)")
	}
	if os.Getenv("WATCH_SCALE_PROFILE") != "" {
		runtime.MemProfileRate = 512 // the default (512 KiB) samples too few of the streams' small objects
	}
	emu := emulator.New(emulator.Options{JobPending: scalePending, JobWorking: scaleWorking, Quota: -1})
	up := httptest.NewServer(emu)
	defer up.Close()
	be, err := backend.New(backend.Config{Endpoint: up.URL + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}})
	if err != nil {
		t.Fatal(err)
	}
	plog := &pollLog{up: be}
	hub := watch.NewSingle(plog, "pek3a", watch.Options{})
	defer hub.Close()
	counted := &countingHub{Hub: hub}
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: be, Zone: "pek3a"}, Watch: counted})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	fmt.Printf("ADDR %s\n", lis.Addr())
	// With WATCH_SCALE_PROFILE, the profiles are written once the handler holds every stream
	// (WATCH_SCALE_STREAMS, inherited from the parent), before the first jobs end.
	var profiled atomic.Pointer[profiledMem]
	if dir := os.Getenv("WATCH_SCALE_PROFILE"); dir != "" {
		want := int64(scaleStreams)
		if v, err := strconv.Atoi(os.Getenv("WATCH_SCALE_STREAMS")); err == nil && v > 0 {
			want = int64(v)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for counted.streams.open.Load() < want {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
			m, err := writeProfiles(dir, counted.streams.open.Load())
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			profiled.Store(m)
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	b, _ := json.Marshal(scaleServerReport{Calls: plog.log(), Stats: hub.Stats(), DescribeJobs: emu.Stats().Requests["DescribeJobs"],
		OpenPeak: counted.streams.peak.Load(), Profiled: profiled.Load()})
	fmt.Printf("REPORT %s\n", b)
}

// runScaleGRPC runs the scenario against a child server process over real gRPC.
func runScaleGRPC(tb testing.TB, streams int) scaleResult {
	r := scaleResult{mode: "grpc", streams: streams, jobs: scaleJobs}
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchScaleServer$", "-test.v")
	cmd.Env = append(os.Environ(), "WATCH_SCALE_SERVER=1", "GOMAXPROCS="+strconv.Itoa(runtime.GOMAXPROCS(0)))
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft memory limit, as a production deployment sets one (deploy/deployment.yaml): without
		// it the GC lets the heap grow to twice the live data before collecting, and the peak RSS
		// measures that headroom rather than what 10,000 streams need. WATCH_SCALE_GOMEMLIMIT=off
		// measures without it.
		if v := os.Getenv("WATCH_SCALE_GOMEMLIMIT"); v != "off" {
			if v == "" {
				v = scaleMemLimit
			}
			cmd.Env = append(cmd.Env, "GOMEMLIMIT="+v)
		}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 64<<20)
	addr := ""
	for addr == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "ADDR "); ok {
			addr = a
		}
	}
	if addr == "" {
		tb.Fatal("the server process printed no address")
	}

	// The server holds at most Limits.MaxConcurrentStreams streams per connection (default 256, #11);
	// a client holds back the streams beyond that until earlier ones end, that is until their jobs
	// end. So the streams get enough connections to be open all at once: 16, or more for more than
	// 16 × 256 streams (40 for 10,000).
	perConn := int(server.DefaultLimits().MaxConcurrentStreams)
	conns := max(16, (streams+perConn-1)/perConn)
	r.conns = conns
	var clients []*grpc.ClientConn
	for range conns {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close()
		clients = append(clients, conn)
	}
	inst := iaasv1.NewInstanceServiceClient(clients[0])
	ids, ends, endsBy := createJobs(tb, scaleJobs, func() (string, error) {
		resp, err := inst.RunInstances(context.Background(), &iaasv1.RunInstancesRequest{
			ImageId: proto.String("centos7x64d"), InstanceType: proto.String("c1m1"),
			LoginMode: proto.String("passwd"), LoginPasswd: proto.String("Passw0rd1"),
		})
		return resp.GetJobId(), err
	})
	r.rssBefore, _ = procStatus(pid)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	sl := newStreamLog(streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := iaasv1.NewWatchServiceClient(clients[i%conns]).WatchJobs(ctx, &iaasv1.WatchJobsRequest{JobIds: []string{ids[i%scaleJobs]}})
			if err != nil {
				errs <- err
				return
			}
			for {
				m, err := st.Recv()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				sl.got(i, m)
			}
		}()
	}
	r.setup = time.Since(start)
	runStart := time.Now()
	sample(&wg, func() {
		rss, _ := procStatus(pid)
		r.rssPeak = max(r.rssPeak, rss)
	})
	r.run = time.Since(runStart)
	close(errs)
	for err := range errs {
		tb.Fatalf("stream: %v", err)
	}
	_, r.hwm = procStatus(pid)
	_ = stdin.Close()
	var rep scaleServerReport
	for lines.Scan() {
		if js, ok := strings.CutPrefix(lines.Text(), "REPORT "); ok {
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				tb.Fatal(err)
			}
			break
		}
	}
	r.stats, r.describeJobs, r.openPeak = rep.Stats, rep.DescribeJobs, int(rep.OpenPeak)
	r.profiled = rep.Profiled
	r.analyse(tb, ids, ends, endsBy, sl, rep.Calls)
	return r
}

// TestWatchScale is the benchmark of issue 5 (see the constants above and docs/bench-watch.md). It runs
// only with WATCH_SCALE=hub or WATCH_SCALE=grpc, so CI stays fast:
//
//	WATCH_SCALE=grpc go test -run 'TestWatchScale$' -v ./internal/watch
func TestWatchScale(t *testing.T) {
	mode := os.Getenv("WATCH_SCALE")
	if mode == "" || testing.Short() {
		t.Skip("set WATCH_SCALE=hub or WATCH_SCALE=grpc to run the 10,000-stream benchmark")
	}
	streams := scaleStreams
	if v, err := strconv.Atoi(os.Getenv("WATCH_SCALE_STREAMS")); err == nil && v > 0 {
		streams = v
	}
	var r scaleResult
	switch mode {
	case "hub":
		r = runScaleHub(t, streams)
	case "grpc":
		r = runScaleGRPC(t, streams)
	default:
		t.Fatalf("WATCH_SCALE=%q: want hub or grpc", mode)
	}
	t.Log(r)
	if r.openPeak < streams {
		t.Errorf("at most %d of the %d streams were open at once; every figure assumes all of them are (a stream held back until others end watches a job that has ended)", r.openPeak, streams)
	}
	if r.lateStartJobs > 0 {
		t.Errorf("%d jobs had ended before their first look (their streams opened late, or the first look came late), so their delays were left out; the run is not a measurement of 10,000 open watches", r.lateStartJobs)
	}
	if r.stats.MaxRoundCalls > 10 {
		t.Errorf("a round made %d DescribeJobs calls; target at most 10", r.stats.MaxRoundCalls)
	}
	if r.hwm > 256<<20 {
		t.Errorf("server peak RSS %d MiB; target under 256 MiB", r.hwm>>20)
	}
	if r.slowJobs > 0 {
		t.Errorf("%d jobs reached some watcher later than one poll interval (plus that poll's duration and 100ms) after they ended", r.slowJobs)
	}
}

// BenchmarkWatch10kStreams runs the scale scenario once per iteration in both modes and reports its
// figures as metrics (run with -benchtime=1x).
func BenchmarkWatch10kStreams(b *testing.B) {
	for _, mode := range []string{"hub", "grpc"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				var r scaleResult
				if mode == "hub" {
					r = runScaleHub(b, scaleStreams)
				} else {
					r = runScaleGRPC(b, scaleStreams)
				}
				b.ReportMetric(float64(r.stats.MaxRoundCalls), "calls/round")
				b.ReportMetric(float64(r.hwm)/(1<<20), "MiB-peak-RSS")
				b.ReportMetric(float64(r.delayP50.Milliseconds()), "ms-p50-delay")
				b.ReportMetric(float64(r.delayMax.Milliseconds()), "ms-max-delay")
				b.ReportMetric(float64(r.fanoutMax.Milliseconds()), "ms-max-fanout")
				b.Log(r)
			}
		})
	}
}

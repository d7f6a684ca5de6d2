package scaleout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// bins holds the server and emulator binaries, built once for all tests.
var bins struct {
	once             sync.Once
	server, emulator string
	err              error
}

func build(t *testing.T) (server, emu string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs server processes; skipped with -short")
	}
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "scaleout-bin")
		if err != nil {
			bins.err = err
			return
		}
		for name, out := range map[string]*string{"server": &bins.server, "emulator": &bins.emulator} {
			*out = filepath.Join(dir, name)
			cmd := exec.Command("go", "build", "-o", *out, "github.com/qingcloud-grpc/qingcloud-grpc/cmd/"+name)
			if b, err := cmd.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build cmd/%s: %v\n%s", name, err, b)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.server, bins.emulator
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.server != "" {
		_ = os.RemoveAll(filepath.Dir(bins.server))
	}
	os.Exit(code)
}

// proc is a child process whose output is kept for failure messages.
type proc struct {
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
}

func startProc(t *testing.T, bin string, args []string, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond (an observable state), failing after a generous bound.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// emu is a standalone emulator process.
type emu struct {
	*proc
	addr string
}

var endpointRE = regexp.MustCompile(`endpoint:\s+(http://\S+)`)

func startEmulator(t *testing.T, args ...string) *emu {
	t.Helper()
	_, bin := build(t)
	addr := freeAddr(t)
	e := &emu{proc: startProc(t, bin, append([]string{"-addr", addr}, args...), nil), addr: addr}
	waitFor(t, "the emulator to listen", 30*time.Second, func() bool { return endpointRE.MatchString(e.out.String()) })
	return e
}

func (e *emu) endpoint() string { return "http://" + e.addr + "/iaas/" }

// stats returns the emulator's counters.
func (e *emu) stats(t *testing.T) (requests map[string]int64, retCodes map[string]map[string]int64) {
	t.Helper()
	resp, err := http.Get("http://" + e.addr + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Requests map[string]int64            `json:"requests"`
		RetCodes map[string]map[string]int64 `json:"ret_codes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Requests, s.RetCodes
}

// replica is one server process.
type replica struct {
	*proc
	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
}

func startReplica(t *testing.T, e *emu, redisURL string, extra ...string) *replica {
	t.Helper()
	bin, _ := build(t)
	r := &replica{grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	args := []string{"-grpc-addr", r.grpcAddr, "-http-addr", r.httpAddr, "-endpoint", e.endpoint(), "-zone", "pek3a"}
	if redisURL != "" {
		args = append(args, "-redis-url", redisURL)
	}
	args = append(args, extra...)
	r.proc = startProc(t, bin, args, []string{
		"QINGCLOUD_ACCESS_KEY=" + emulator.DefaultAccessKeyID, "QINGCLOUD_SECRET_KEY=" + emulator.DefaultSecretAccessKey})
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r.conn = conn
	h := healthpb.NewHealthClient(conn)
	waitFor(t, "replica "+r.grpcAddr+" to serve", 60*time.Second, func() bool {
		select {
		case <-r.done:
			t.Fatalf("the server exited:\n%s", r.out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && st.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return r
}

// metric returns the sum of a metric's series on the replica's /metrics, or -1 if it has none.
func (r *replica) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// TestQuotaAcrossReplicas floods three replicas sharing a budget of 60 per minute (QingCloud's
// quota, as the emulator enforces it, is 60 too): at most 60 requests reach upstream, no 2500, and
// every other call is RESOURCE_EXHAUSTED with RetryInfo.
func TestQuotaAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	e := startEmulator(t, "-quota", "60", "-quota-window", "1m")
	var reps []*replica
	for range 3 {
		reps = append(reps, startReplica(t, e, srv.URL(), "-quota-requests", "60", "-quota-window", "1m"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var ok, exhausted atomic.Int64
	errs := make(chan error, 600)
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Go(func() {
			for i := range 20 {
				r := reps[(g+i)%3]
				// Distinct parameters: no two calls coalesce into one upstream request.
				_, err := iaasv1.NewVolumeServiceClient(r.conn).DescribeVolumes(ctx, &iaasv1.DescribeVolumesRequest{Offset: proto.Int32(int32(g*20 + i))})
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.ResourceExhausted:
					exhausted.Add(1)
					if !hasRetryInfo(err) {
						errs <- fmt.Errorf("RESOURCE_EXHAUSTED without RetryInfo: %v", err)
					}
				default:
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	reqs, codes := e.stats(t)
	var upstream int64
	for _, n := range reqs {
		upstream += n
	}
	var quotaErrors int64
	for _, byCode := range codes {
		quotaErrors += byCode["2500"]
	}
	t.Logf("600 calls over 3 replicas: %d OK, %d RESOURCE_EXHAUSTED; upstream requests %d, ret_code 2500: %d", ok.Load(), exhausted.Load(), upstream, quotaErrors)
	if upstream > 60 || quotaErrors != 0 || ok.Load()+exhausted.Load() != 600 || ok.Load() != upstream {
		t.Fatalf("upstream %d requests (%d answered 2500) for %d OK calls; want at most 60, no 2500", upstream, quotaErrors, ok.Load())
	}
	if ok.Load() < 54 {
		t.Fatalf("only %d calls admitted; the shared budget allows 54 user calls", ok.Load())
	}
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return true
		}
	}
	return false
}

// createJobs makes n jobs in the emulator (CreateVolumes, one job each) and returns their ids.
func createJobs(t *testing.T, e *emu, n int) []string {
	t.Helper()
	c, err := backend.New(backend.Config{Endpoint: e.endpoint(), Budget: budget.Unlimited(),
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			data, err := c.Call(context.Background(), "CreateVolumes", map[string]string{"zone": "pek3a", "size": "10"}, true)
			if err != nil {
				errs <- err
				return
			}
			var out struct {
				JobID string `json:"job_id"`
			}
			if err := json.Unmarshal(data, &out); err != nil || out.JobID == "" {
				errs <- fmt.Errorf("CreateVolumes answered %s: %v", data, err)
				return
			}
			ids[i] = out.JobID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// stream is one WatchJobs stream's outcome.
type streamResult struct {
	terminal bool
	err      error
}

// watchAll opens n WatchJobs streams of one job each spread over the replicas
// (several connections each: the server allows 256 streams per connection), and reports each stream's
// end. firstSeen counts the streams that got their first state.
func watchAll(ctx context.Context, t *testing.T, reps []*replica, ids []string, n int, firstSeen *atomic.Int64) <-chan streamResult {
	t.Helper()
	out := make(chan streamResult, n)
	var conns [][]*grpc.ClientConn
	perConn := 200 // below the server's 256 concurrent streams per connection
	for _, r := range reps {
		var cs []*grpc.ClientConn
		for range (n/len(reps))/perConn + 1 {
			c, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			cs = append(cs, c)
		}
		conns = append(conns, cs)
	}
	for i := range n {
		// Stream i watches job i mod len(ids) on replica (i / len(ids)) mod len(reps): with 10 streams
		// per job, every replica watches every job.
		r := (i / len(ids)) % len(reps)
		c := conns[r][i%len(conns[r])]
		st, err := iaasv1.NewWatchServiceClient(c).WatchJobs(ctx, &iaasv1.WatchJobsRequest{JobIds: []string{ids[i%len(ids)]}})
		if err != nil {
			t.Fatalf("WatchJobs %d: %v", i, err)
		}
		go func() {
			first := true
			for {
				m, err := st.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) {
						err = nil
					}
					out <- streamResult{err: err}
					return
				}
				if first {
					first = false
					firstSeen.Add(1)
				}
				if m.GetJob().GetTerminal() {
					// The stream ends after its only job's terminal event.
					_, err := st.Recv()
					if !errors.Is(err, io.EOF) {
						out <- streamResult{err: fmt.Errorf("after the terminal event: %v", err)}
						return
					}
					out <- streamResult{terminal: true}
					return
				}
			}
		}()
	}
	return out
}

// upstreamPlateaus samples the emulator's DescribeJobs count for at most d, or until it has seen
// enough increments (0: sample for all of d), and returns the increments between plateaus (counts
// unchanged for at least 300ms): the calls of one poll round across every replica.
func upstreamPlateaus(t *testing.T, e *emu, d time.Duration, enough int) []int64 {
	t.Helper()
	var steps []int64
	last, lastPlateau := int64(-1), int64(-1)
	since := time.Now()
	for end := time.Now().Add(d); time.Now().Before(end) && (enough == 0 || len(steps) < enough); time.Sleep(20 * time.Millisecond) {
		reqs, _ := e.stats(t)
		n := reqs["DescribeJobs"]
		if n != last {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) >= 300*time.Millisecond && n != lastPlateau {
			if lastPlateau >= 0 {
				steps = append(steps, n-lastPlateau)
			}
			lastPlateau = n
		}
	}
	return steps
}

// TestOnePollerAcrossReplicas opens 3,000 WatchJobs streams over three replicas for 300 jobs: each poll
// round costs ceil(300/100) = 3 DescribeJobs across all replicas, and every stream gets its terminal
// event. Then the owner is killed (kill -9) mid-run: the others take over and their streams still end
// with every terminal event.
func TestOnePollerAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	// The jobs work long enough for a few rounds at the pollers' longest interval (10 s).
	e := startEmulator(t, "-quota", "-1", "-job-pending", "1s", "-job-working", "90s")
	ids := createJobs(t, e, 300)
	var reps []*replica
	for range 3 {
		reps = append(reps, startReplica(t, e, srv.URL(), "-quota-requests", "-1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var first atomic.Int64
	results := watchAll(ctx, t, reps, ids, 3000, &first)
	waitFor(t, "every stream's first state", 2*time.Minute, func() bool { return first.Load() == 3000 })

	steps := upstreamPlateaus(t, e, 45*time.Second, 3)
	t.Logf("DescribeJobs per poll round across 3 replicas: %v", steps)
	if len(steps) < 2 {
		t.Fatalf("saw %d poll rounds in 45s; want at least 2", len(steps))
	}
	for _, s := range steps {
		if s != 3 {
			t.Fatalf("a poll round cost %d DescribeJobs across the replicas (rounds: %v); want 3", s, steps)
		}
	}
	var owner = -1
	for i, r := range reps {
		if r.metric(t, "qingcloud_watch_upstream_calls_total") > 0 {
			if owner >= 0 {
				t.Fatalf("replicas %d and %d both polled upstream", owner, i)
			}
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no replica polled upstream")
	}
	reps[owner].kill()
	// The owner's streams end with its connection; the others must all end terminal.
	survivors := 0
	for i := range 3000 {
		if (i/len(ids))%len(reps) != owner {
			survivors++
		}
	}
	ok, failedOther := 0, 0
	var firstErr error
	for range 3000 {
		var r streamResult
		select {
		case r = <-results:
		case <-ctx.Done():
			t.Fatalf("streams still open after 5 minutes: %d terminal so far", ok)
		}
		switch {
		case r.terminal:
			ok++
		case r.err != nil && status.Code(r.err) == codes.Unavailable:
			// a stream of the killed replica
		default:
			failedOther++
			if firstErr == nil {
				firstErr = r.err
			}
		}
	}
	if ok < survivors || failedOther > 0 {
		t.Fatalf("%d streams ended with their terminal event, %d otherwise (first: %v); want the %d on surviving replicas terminal", ok, failedOther, firstErr, survivors)
	}
}

// TestRedisRestartMidRun kills Redis under three replicas serving watch streams and calls, then
// restarts it empty: no stream ends with an error, calls go on, nothing upstream answers 2500, and
// every replica's qingcloud_redis_fallback goes up, then down again.
func TestRedisRestartMidRun(t *testing.T) {
	srv := redistest.Start(t)
	e := startEmulator(t, "-quota", "1200", "-quota-window", "1m", "-job-pending", "500ms", "-job-working", "12s")
	ids := createJobs(t, e, 30)
	var reps []*replica
	for range 3 {
		reps = append(reps, startReplica(t, e, srv.URL(), "-quota-requests", "600", "-quota-window", "1m"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var first atomic.Int64
	results := watchAll(ctx, t, reps, ids, 300, &first)
	waitFor(t, "every stream's first state", time.Minute, func() bool { return first.Load() == 300 })
	for i, r := range reps {
		if v := r.metric(t, "qingcloud_redis_fallback"); v != 0 {
			t.Fatalf("replica %d: qingcloud_redis_fallback = %v before the outage; want 0", i, v)
		}
	}

	srv.Kill()
	call := func(i int) {
		_, err := iaasv1.NewVolumeServiceClient(reps[i%3].conn).DescribeVolumes(ctx, &iaasv1.DescribeVolumesRequest{Offset: proto.Int32(int32(1000 + i))})
		if c := status.Code(err); c != codes.OK && c != codes.ResourceExhausted {
			t.Errorf("a call during the outage: %v", err)
		}
	}
	for i := range 30 {
		call(i)
	}
	for i, r := range reps {
		waitFor(t, fmt.Sprintf("replica %d to report the fallback", i), time.Minute, func() bool { return r.metric(t, "qingcloud_redis_fallback") >= 1 })
	}
	srv.Restart()
	for i := range 30 {
		call(100 + i)
	}
	for i, r := range reps {
		waitFor(t, fmt.Sprintf("replica %d to rejoin", i), time.Minute, func() bool { return r.metric(t, "qingcloud_redis_fallback") == 0 })
		if n := r.metric(t, "qingcloud_redis_fallbacks_total"); n < 1 {
			t.Fatalf("replica %d: qingcloud_redis_fallbacks_total = %v; want at least 1", i, n)
		}
	}
	for range 300 {
		select {
		case r := <-results:
			if !r.terminal {
				t.Fatalf("a stream ended without its terminal event: %v", r.err)
			}
		case <-ctx.Done():
			t.Fatal("streams still open after 3 minutes")
		}
	}
	_, codes := e.stats(t)
	for action, byCode := range codes {
		if byCode["2500"] != 0 {
			t.Fatalf("%s answered ret_code 2500 %d times", action, byCode["2500"])
		}
	}
}

package watch_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// env is a Hub polling an in-process emulator through the real backend client.
type env struct {
	emu *emulator.Emulator
	be  *backend.Client
	hub *watch.Hub
}

// Quick jobs and quick polls: a job lasts 150ms; rounds start at 20ms and back off to 100ms.
var (
	quickJobs = emulator.Options{JobPending: 30 * time.Millisecond, JobWorking: 120 * time.Millisecond, Quota: -1}
	quickHub  = watch.Options{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		FirstPollDelay: 2 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
)

// The emulator is served in memory rather than on loopback, so that the tests can run in a
// testing/synctest bubble: on the bubble's fake clock, jobs and polls keep their timing whatever the
// machine's load.
func newEnv(t testing.TB, eo emulator.Options, ho watch.Options) *env {
	t.Helper()
	emu := emulator.New(eo)
	up := testutil.NewMemServer(t, emu)
	be, err := backend.New(backend.Config{
		Endpoint:    up.URL + "/iaas/",
		HTTPClient:  up.Client(),
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := watch.NewSingle(be, "pek3a", ho)
	t.Cleanup(hub.Close)
	return &env{emu: emu, be: be, hub: hub}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// call sends an action to the emulator and decodes its answer into out.
func (e *env) call(t testing.TB, action string, params map[string]string, out any) {
	t.Helper()
	params["zone"] = "pek3a"
	data, err := e.be.Call(context.Background(), action, params, false)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", action, err)
	}
}

// describeJobs returns the number of DescribeJobs requests the emulator received.
func (e *env) describeJobs() int64 { return e.emu.Stats().Requests["DescribeJobs"] }

// runInstances starts count instances in vxnet-0 and returns the job id and instance ids.
func (e *env) runInstances(t testing.TB, count int) (string, []string) {
	t.Helper()
	var out struct {
		JobID     string   `json:"job_id"`
		Instances []string `json:"instances"`
	}
	e.call(t, "RunInstances", map[string]string{
		"image_id": "centos7x64d", "instance_type": "c1m1", "login_mode": "passwd", "login_passwd": "Passw0rd1",
		"count": strconv.Itoa(count), "vxnets.1": "vxnet-0",
	}, &out)
	if out.JobID == "" || len(out.Instances) != count {
		t.Fatalf("RunInstances answered %+v", out)
	}
	return out.JobID, out.Instances
}

// watchJobs reads a job watch to its end.
func watchJobs(ctx context.Context, w *watch.Watch[*iaasv1.WatchJobsResponse]) ([]*iaasv1.JobEvent, []*iaasv1.PollNotice, error) {
	defer w.Close()
	var evs []*iaasv1.JobEvent
	var notices []*iaasv1.PollNotice
	for {
		m, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return evs, notices, nil
		}
		if err != nil {
			return evs, notices, err
		}
		if ev := m.GetJob(); ev != nil {
			evs = append(evs, ev)
		} else if n := m.GetNotice(); n != nil {
			notices = append(notices, n)
		}
	}
}

// byJob groups events by job id.
func byJob(evs []*iaasv1.JobEvent) map[string][]*iaasv1.JobEvent {
	m := map[string][]*iaasv1.JobEvent{}
	for _, ev := range evs {
		id := ev.GetJob().GetJobId()
		m[id] = append(m[id], ev)
	}
	return m
}

var statusRank = map[string]int{"pending": 0, "working": 1, "successful": 2, "failed": 2, "done with failure": 2}

// checkJob verifies one job's events: statuses never go back, only the last is terminal, and it
// ends in want.
func checkJob(t *testing.T, id string, evs []*iaasv1.JobEvent, want string) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatalf("job %s: no events", id)
	}
	for i, ev := range evs {
		if i > 0 && statusRank[ev.GetJob().GetStatus()] < statusRank[evs[i-1].GetJob().GetStatus()] {
			t.Errorf("job %s: status went back: %s after %s", id, ev.GetJob().GetStatus(), evs[i-1].GetJob().GetStatus())
		}
		if ev.GetTerminal() != (i == len(evs)-1) {
			t.Errorf("job %s: event %d (%s) terminal=%v", id, i, ev.GetJob().GetStatus(), ev.GetTerminal())
		}
	}
	last := evs[len(evs)-1]
	if got := last.GetJob().GetStatus(); got != want {
		t.Errorf("job %s ended %q, want %q", id, got, want)
	}
	failed := want != "successful"
	if last.GetFailed() != failed {
		t.Errorf("job %s: failed=%v, want %v", id, last.GetFailed(), failed)
	}
	if failed {
		msg := last.GetFailureMessage()
		if !strings.Contains(msg, id) || !strings.Contains(msg, "RunInstances") || !strings.Contains(msg, "5000") {
			t.Errorf("job %s: failure message %q should name the job, the action and the error codes", id, msg)
		}
	} else if last.GetFailureMessage() != "" {
		t.Errorf("job %s: failure message %q on success", id, last.GetFailureMessage())
	}
	if last.GetJob().GetJobAction() != "RunInstances" || last.GetJob().GetResourceIds() == "" || last.GetJob().GetStatusTime() == nil {
		t.Errorf("job %s: incomplete job %v", id, last.GetJob())
	}
}

func TestWatchJobsSuccess(t *testing.T) { synctest.Test(t, testWatchJobsSuccess) }

func testWatchJobsSuccess(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Jobs(ctx, "", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := watchJobs(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, job, evs, "successful")
	if first := evs[0].GetJob().GetStatus(); first != "pending" && first != "working" {
		t.Errorf("first event %q, want the job's state when the watch started", first)
	}
}

func TestWatchJobsFailed(t *testing.T) { synctest.Test(t, testWatchJobsFailed) }

func testWatchJobsFailed(t *testing.T) {
	eo := quickJobs
	eo.Faults = emulator.Faults{FailActions: []string{"RunInstances"}}
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Jobs(ctx, "pek3a", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := watchJobs(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, job, evs, "failed")
}

func TestWatchJobsDoneWithFailure(t *testing.T) { synctest.Test(t, testWatchJobsDoneWithFailure) }

func testWatchJobsDoneWithFailure(t *testing.T) {
	eo := quickJobs
	eo.Faults = emulator.Faults{DoneWithFailure: []string{"RunInstances"}}
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 2)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Jobs(ctx, "", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := watchJobs(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, job, evs, "done with failure")
	if msg := evs[len(evs)-1].GetFailureMessage(); !strings.Contains(msg, "finished with failures") {
		t.Errorf("failure message %q should say the job partly failed", msg)
	}
}

func TestWatchJobsMixedBatch(t *testing.T) { synctest.Test(t, testWatchJobsMixedBatch) }

func testWatchJobsMixedBatch(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	ok1, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{FailActions: []string{"RunInstances"}})
	bad, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{DoneWithFailure: []string{"RunInstances"}})
	partial, _ := e.runInstances(t, 3)
	e.emu.SetFaults(emulator.Faults{})
	ok2, _ := e.runInstances(t, 1)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Jobs(ctx, "", []string{ok1, bad, partial, ok2, ok1})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.IDs(); !slices.Equal(got, []string{ok1, bad, partial, ok2}) {
		t.Errorf("IDs = %v, want the request's ids deduplicated in order", got)
	}
	evs, _, err := watchJobs(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	m := byJob(evs)
	checkJob(t, ok1, m[ok1], "successful")
	checkJob(t, bad, m[bad], "failed")
	checkJob(t, partial, m[partial], "done with failure")
	checkJob(t, ok2, m[ok2], "successful")
	if n := e.describeJobs(); n > 30 {
		t.Errorf("%d DescribeJobs calls for one batch of 4 jobs lasting 150ms", n)
	}
}

func TestWatchJobsCancel(t *testing.T) { synctest.Test(t, testWatchJobsCancel) }

func testWatchJobsCancel(t *testing.T) {
	eo := quickJobs
	eo.JobWorking = time.Minute
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := e.hub.Jobs(ctx, "", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Recv(ctx); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: err = %v, want CANCELED", err)
	}
	w.Close()
	waitUntil(t, func() bool { s := e.hub.Stats(); return s.Pollers == 0 && s.Jobs == 0 && s.Watches == 0 })
}

func TestWatchJobsDeadline(t *testing.T) { synctest.Test(t, testWatchJobsDeadline) }

func testWatchJobsDeadline(t *testing.T) {
	eo := quickJobs
	eo.JobWorking = time.Minute
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	w, err := e.hub.Jobs(ctx, "", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := watchJobs(ctx, w)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if len(evs) == 0 || evs[0].GetTerminal() {
		t.Errorf("events before the deadline: %v, want the job's running state", evs)
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer wcancel()
	_, err = e.hub.WaitJobs(wctx, &iaasv1.WaitJobsRequest{JobIds: []string{job}})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), job) {
		t.Fatalf("WaitJobs: err = %v, want DEADLINE_EXCEEDED naming %s", err, job)
	}
	if info := qcerr.Info(err); info.GetReason() != qcerr.ReasonDeadlineExceeded || info.GetDomain() != qcerr.Domain {
		t.Errorf("WaitJobs: ErrorInfo %v, want reason %s", info, qcerr.ReasonDeadlineExceeded)
	}
}

func TestWatchJobsUnknownID(t *testing.T) { synctest.Test(t, testWatchJobsUnknownID) }

func testWatchJobsUnknownID(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Jobs(ctx, "", []string{job, "j-nosuchjob"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = watchJobs(ctx, w)
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "j-nosuchjob") {
		t.Fatalf("err = %v, want NOT_FOUND naming j-nosuchjob", err)
	}
	// The job exists in pek3a, not in gd2a.
	w, err = e.hub.Jobs(ctx, "gd2a", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err = watchJobs(ctx, w); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "gd2a") {
		t.Fatalf("wrong zone: err = %v, want NOT_FOUND naming the zone", err)
	}
}

// TestOnePollerForManyWatchers checks the batching promise: W watchers of J distinct jobs cost
// ceil(J/100) DescribeJobs calls per round, whatever W.
func TestOnePollerForManyWatchers(t *testing.T) { synctest.Test(t, testOnePollerForManyWatchers) }

func testOnePollerForManyWatchers(t *testing.T) {
	const jobs, watchers, perWatcher = 250, 200, 50
	eo := quickJobs
	eo.JobPending, eo.JobWorking = 2*time.Second, 500*time.Millisecond
	e := newEnv(t, eo, quickHub)
	ids := make([]string, jobs)
	for i := range ids {
		ids[i], _ = e.runInstances(t, 1)
	}
	before := e.describeJobs()
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, watchers)
	for i := range watchers {
		mine := make([]string, perWatcher)
		for k := range mine {
			mine[k] = ids[(i*7+k)%jobs]
		}
		w, err := e.hub.Jobs(ctx, "", mine)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs, _, err := watchJobs(ctx, w)
			if err == nil {
				for _, id := range mine {
					if evs := byJob(evs)[id]; len(evs) == 0 || !evs[len(evs)-1].GetTerminal() {
						err = errors.New("job " + id + " did not end")
						break
					}
				}
			}
			errs <- err
		}()
	}
	if s := e.hub.Stats(); s.Pollers != 1 || s.Jobs != jobs {
		t.Errorf("stats %+v: want 1 poller over %d jobs", s, jobs)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return e.hub.Stats().Pollers == 0 }) // the last round is counted
	s := e.hub.Stats()
	describe := e.describeJobs() - before
	t.Logf("%d watchers of %d jobs: %d full rounds, %d first looks, %d DescribeJobs calls, at most %d per round",
		watchers, jobs, s.Rounds, s.FreshRounds, describe, s.MaxRoundCalls)
	if s.MaxRoundCalls > 3 {
		t.Errorf("a round made %d calls; want at most ceil(%d/100) = 3", s.MaxRoundCalls, jobs)
	}
	if describe != s.Calls {
		t.Errorf("emulator saw %d DescribeJobs, the hub made %d calls", describe, s.Calls)
	}
	if max := 3 * (s.Rounds + s.FreshRounds); describe > max {
		t.Errorf("%d DescribeJobs calls over %d rounds: more than 3 per round", describe, s.Rounds+s.FreshRounds)
	}
	// Each watcher polling on its own would make at least one call per round; the first full round
	// polls all of them in at most 3 calls, so batching saved at least watchers-3 calls.
	if min := int64(watchers - 3); s.Saved < min {
		t.Errorf("Saved = %d over %d full rounds of %d watchers, want at least %d", s.Saved, s.Rounds, watchers, min)
	}
}

func TestQuotaExhaustionSendsNotice(t *testing.T) { synctest.Test(t, testQuotaExhaustionSendsNotice) }

func testQuotaExhaustionSendsNotice(t *testing.T) {
	testPollNotice(t, emulator.Faults{RetCode2500: 1, Actions: []string{"DescribeJobs"}}, "quota")
}

func TestUnavailableSendsNotice(t *testing.T) { synctest.Test(t, testUnavailableSendsNotice) }

func testUnavailableSendsNotice(t *testing.T) {
	testPollNotice(t, emulator.Faults{HTTP503: 1, Actions: []string{"DescribeJobs"}}, "unavailable")
}

// testPollNotice makes every DescribeJobs fail with faults, expects a PollNotice whose reason
// mentions reason while the stream stays open, then lifts the faults and expects the job to end.
func testPollNotice(t *testing.T, faults emulator.Faults, reason string) {
	eo := quickJobs
	eo.JobWorking = 300 * time.Millisecond
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	e.emu.SetFaults(faults)
	ctx := ctxT(t, 60*time.Second)
	w, err := e.hub.Jobs(ctx, "", []string{job})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m, err := w.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := m.GetNotice()
	if n == nil || !strings.Contains(n.GetReason(), reason) {
		t.Fatalf("first message %v, want a PollNotice about %q", m, reason)
	}
	if !n.GetNextPollTime().AsTime().After(time.Now().Add(-time.Second)) {
		t.Errorf("next poll time %v is in the past", n.GetNextPollTime().AsTime())
	}
	calls := e.describeJobs()
	time.Sleep(300 * time.Millisecond) // on the bubble's clock
	synctest.Wait()
	if more := e.describeJobs() - calls; more > 10 {
		t.Errorf("%d DescribeJobs calls in 300ms while failing; want backoff", more)
	}
	e.emu.SetFaults(emulator.Faults{})
	evs, _, err := watchJobs(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	checkJob(t, job, evs, "successful")
}

func TestCloseEndsStreamsUnavailable(t *testing.T) { synctest.Test(t, testCloseEndsStreamsUnavailable) }

func testCloseEndsStreamsUnavailable(t *testing.T) {
	eo := quickJobs
	eo.JobWorking = time.Minute
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	ctx := ctxT(t, 20*time.Second)
	var ws []*watch.Watch[*iaasv1.WatchJobsResponse]
	for range 5 {
		w, err := e.hub.Jobs(ctx, "", []string{job})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if _, err := ws[0].Recv(ctx); err != nil {
		t.Fatal(err)
	}
	e.hub.Close()
	for _, w := range ws {
		_, _, err := watchJobs(ctx, w)
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "server shutting down; resume the watch") {
			t.Fatalf("after Close: err = %v, want UNAVAILABLE asking to resume", err)
		}
	}
	if _, err := e.hub.Jobs(ctx, "", []string{job}); status.Code(err) != codes.Unavailable {
		t.Fatalf("watch after Close: err = %v, want UNAVAILABLE", err)
	}
	if s := e.hub.Stats(); s.Pollers != 0 {
		t.Errorf("stats after Close: %+v", s)
	}
}

func TestWaitJobs(t *testing.T) { synctest.Test(t, testWaitJobs) }

func testWaitJobs(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	ok, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{FailActions: []string{"RunInstances"}})
	bad, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{})
	resp, err := e.hub.WaitJobs(ctxT(t, 20*time.Second), &iaasv1.WaitJobsRequest{JobIds: []string{bad, ok}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetJobs()) != 2 || resp.GetJobs()[0].GetJob().GetJobId() != bad || resp.GetJobs()[1].GetJob().GetJobId() != ok {
		t.Fatalf("jobs %v, want %s then %s", resp.GetJobs(), bad, ok)
	}
	if !resp.GetAnyFailed() || !resp.GetJobs()[0].GetFailed() || resp.GetJobs()[1].GetFailed() {
		t.Errorf("any_failed=%v, failed=%v/%v; want true, true/false", resp.GetAnyFailed(), resp.GetJobs()[0].GetFailed(), resp.GetJobs()[1].GetFailed())
	}
	for _, ev := range resp.GetJobs() {
		if !ev.GetTerminal() {
			t.Errorf("job %v not terminal", ev)
		}
	}
	if _, err := e.hub.WaitJobs(ctxT(t, 20*time.Second), &iaasv1.WaitJobsRequest{JobIds: []string{"j-nosuchjob"}}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown job: err = %v, want NOT_FOUND", err)
	}
}

// watchResources reads a resource watch to its end.
func watchResources(t *testing.T, ctx context.Context, w *watch.Watch[*iaasv1.WatchResourcesResponse]) map[string][]*iaasv1.ResourceEvent {
	t.Helper()
	defer w.Close()
	m := map[string][]*iaasv1.ResourceEvent{}
	for {
		msg, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev := msg.GetResource(); ev != nil {
			m[ev.GetResourceId()] = append(m[ev.GetResourceId()], ev)
		}
	}
}

func TestWatchResourcesInstanceUntilRunningWithIP(t *testing.T) {
	synctest.Test(t, testWatchResourcesInstanceUntilRunningWithIP)
}

func testWatchResourcesInstanceUntilRunningWithIP(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	_, insts := e.runInstances(t, 2)
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Resources(ctx, "", "instance", insts, "running")
	if err != nil {
		t.Fatal(err)
	}
	got := watchResources(t, ctx, w)
	for _, id := range insts {
		evs := got[id]
		if len(evs) == 0 {
			t.Fatalf("instance %s: no events", id)
		}
		for _, ev := range evs[:len(evs)-1] {
			if ev.GetSettled() || ev.GetGone() {
				t.Errorf("instance %s: early final event %v", id, ev)
			}
		}
		last := evs[len(evs)-1]
		if !last.GetSettled() || last.GetStatus() != "running" || last.GetTransitionStatus() != "" || last.GetPrivateIp() == "" {
			t.Errorf("instance %s: last event %v, want settled running with a private IP", id, last)
		}
		if last.GetKind() != "instance" || last.GetResource().GetFields()["instance_id"].GetStringValue() != id {
			t.Errorf("instance %s: event lacks the kind or the item: %v", id, last)
		}
		if evs[0].GetStatus() != "pending" || evs[0].GetTransitionStatus() != "creating" {
			t.Errorf("instance %s: first event %s/%s, want pending/creating", id, evs[0].GetStatus(), evs[0].GetTransitionStatus())
		}
	}
}

func TestWatchResourcesVolume(t *testing.T) { synctest.Test(t, testWatchResourcesVolume) }

func testWatchResourcesVolume(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	var out struct {
		Volumes []string `json:"volumes"`
	}
	e.call(t, "CreateVolumes", map[string]string{"size": "10", "count": "2"}, &out)
	if len(out.Volumes) != 2 {
		t.Fatalf("CreateVolumes answered %+v", out)
	}
	ctx := ctxT(t, 20*time.Second)
	w, err := e.hub.Resources(ctx, "", "volume", append(out.Volumes, "vol-nosuchvol"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := watchResources(t, ctx, w)
	for _, id := range out.Volumes {
		evs := got[id]
		if last := evs[len(evs)-1]; !last.GetSettled() || last.GetStatus() != "available" {
			t.Errorf("volume %s: events %v, want to settle available", id, evs)
		}
	}
	if evs := got["vol-nosuchvol"]; len(evs) != 1 || !evs[0].GetGone() {
		t.Errorf("unknown volume: %v, want one gone event", evs)
	}
}

// waitUntil waits, in a synctest bubble, until cond holds once every goroutine of the bubble is
// blocked, letting the bubble's clock run for up to 5s.
func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond) // advances the bubble's clock: the next poll timer fires
	}
}

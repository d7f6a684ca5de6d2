package watch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

// fastOptions poll quickly, for tests.
func fastOptions() Options {
	return Options{MinInterval: 10 * time.Millisecond, MaxInterval: 80 * time.Millisecond, FirstPollDelay: time.Millisecond,
		MaxBackoff: 300 * time.Millisecond, Jitter: -1}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestHub(t *testing.T, up tenant.Caller, opts Options) *Hub {
	h := NewSingle(up, "pek3a", opts)
	t.Cleanup(h.Close)
	return h
}

// recvAll reads a job watch to its end and returns its job events and notices.
func recvAll(ctx context.Context, w *Watch[*iaasv1.WatchJobsResponse]) ([]*iaasv1.JobEvent, []*iaasv1.PollNotice, error) {
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
		}
		if n := m.GetNotice(); n != nil {
			notices = append(notices, n)
		}
	}
}

func TestKindEvaluate(t *testing.T) {
	inst, vol, sg := kindByName["instance"], kindByName["volume"], kindByName["security_group"]
	item := func(k *Kind, js string) *resourceState {
		t.Helper()
		states, err := k.parseResources([]byte(`{"` + k.SetField + `":[` + js + `]}`))
		if err != nil || len(states) != 1 {
			t.Fatalf("parse %s: %v %v", js, states, err)
		}
		for _, s := range states {
			return s
		}
		return nil
	}
	tests := []struct {
		name            string
		k               *Kind
		s               *resourceState
		target          string
		settled, isGone bool
	}{
		{"instance creating", inst, item(inst, `{"instance_id":"i-1","status":"pending","transition_status":"creating","vxnets":[]}`), "running", false, false},
		{"instance running without IP yet", inst, item(inst, `{"instance_id":"i-1","status":"running","transition_status":"","vxnets":[{"vxnet_id":"vxnet-0","private_ip":""}]}`), "running", false, false},
		{"instance running with IP", inst, item(inst, `{"instance_id":"i-1","status":"running","transition_status":"","vxnets":[{"vxnet_id":"vxnet-0","private_ip":"10.0.0.2"}]}`), "running", true, false},
		{"instance running, no vxnet", inst, item(inst, `{"instance_id":"i-1","status":"running","transition_status":""}`), "", true, false},
		{"instance stopped without IP", inst, item(inst, `{"instance_id":"i-1","status":"stopped","transition_status":"","vxnets":[{"private_ip":""}]}`), "stopped", true, false},
		{"instance terminated awaiting running", inst, item(inst, `{"instance_id":"i-1","status":"terminated","transition_status":""}`), "running", false, true},
		{"instance terminated awaiting terminated", inst, item(inst, `{"instance_id":"i-1","status":"terminated","transition_status":""}`), "terminated", true, false},
		{"instance terminated awaiting ceased", inst, item(inst, `{"instance_id":"i-1","status":"terminated","transition_status":""}`), "ceased", false, false},
		{"instance ceased awaiting terminated", inst, item(inst, `{"instance_id":"i-1","status":"ceased","transition_status":""}`), "terminated", true, false},
		{"absent awaiting available", vol, &resourceState{}, "available", false, true},
		{"absent awaiting deleted", vol, &resourceState{}, "deleted", true, false},
		{"volume pending, any idle", vol, item(vol, `{"volume_id":"v-1","status":"pending","transition_status":"creating"}`), "", false, false},
		{"volume available, any idle", vol, item(vol, `{"volume_id":"v-1","status":"available","transition_status":""}`), "", true, false},
		{"volume available awaiting in-use", vol, item(vol, `{"volume_id":"v-1","status":"available","transition_status":""}`), "in-use", false, false},
		{"security group not applied", sg, item(sg, `{"security_group_id":"sg-1","is_applied":0}`), "", false, false},
		{"security group applied", sg, item(sg, `{"security_group_id":"sg-1","is_applied":1}`), "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			settled, gone := tc.k.evaluate(tc.s, tc.target)
			if settled != tc.settled || gone != tc.isGone {
				t.Errorf("evaluate = settled %v gone %v, want %v %v", settled, gone, tc.settled, tc.isGone)
			}
		})
	}
}

func TestKindsTableComplete(t *testing.T) {
	want := []string{"instance", "volume", "eip", "router", "loadbalancer", "image", "snapshot", "vxnet",
		"security_group", "keypair", "nic", "s2_server", "cache", "rdb", "mongo"}
	if got := strings.Join(KindNames(), ","); got != strings.Join(want, ",") {
		t.Fatalf("kinds = %s, want %s", got, strings.Join(want, ","))
	}
	for _, k := range Kinds {
		if !strings.HasPrefix(k.Action, "Describe") || k.IDParam == "" || !strings.HasSuffix(k.SetField, "_set") || !strings.HasSuffix(k.IDField, "_id") {
			t.Errorf("kind %s: incomplete row %+v", k.Name, k)
		}
	}
}

func TestMailboxCoalescesPerID(t *testing.T) {
	w := newWatcher(nil, "", []string{"a", "b"})
	ev := func(st string) *iaasv1.JobEvent { return &iaasv1.JobEvent{Job: &iaasv1.Job{Status: &st}} }
	w.deliver("a", ev("pending"))
	w.deliver("b", ev("pending"))
	w.deliver("a", ev("working"))
	w.deliver("a", ev("successful"))
	for i := 0; i < 40; i++ { // past indexAbove: the map index takes over
		w.deliver("x"+string(rune('A'+i)), ev("pending"))
	}
	w.deliver("b", ev("failed"))
	got, end := w.take(nil)
	if end != nil || len(got) != 42 {
		t.Fatalf("take = %d items, end %v; want 42, nil", len(got), end)
	}
	if got[0].id != "a" || got[0].msg.(*iaasv1.JobEvent).GetJob().GetStatus() != "successful" {
		t.Errorf("first = %s %v, want a successful (latest state, first position)", got[0].id, got[0].msg)
	}
	if got[1].id != "b" || got[1].msg.(*iaasv1.JobEvent).GetJob().GetStatus() != "failed" {
		t.Errorf("second = %s %v, want b failed", got[1].id, got[1].msg)
	}
	w.finish(io.EOF)
	w.deliver("a", ev("late"))
	if got, end := w.take(got); len(got) != 0 || end != io.EOF {
		t.Errorf("after finish: %d items, end %v", len(got), end)
	}
}

func TestSlowReaderGetsLatestState(t *testing.T) { synctest.Test(t, testSlowReaderGetsLatestState) }

func testSlowReaderGetsLatestState(t *testing.T) {
	f := newFake()
	f.set("j-slow", JobPending)
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	w, err := h.Jobs(ctx, "", []string{"j-slow"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitFor(t, func() bool { return len(f.callLog()) >= 1 })
	f.set("j-slow", JobWorking)
	waitFor(t, func() bool { return h.Stats().Events >= 2 })
	f.set("j-slow", JobSuccessful)
	waitFor(t, func() bool { return h.Stats().Jobs == 0 })
	evs, _, err := recvAll(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].GetJob().GetStatus() != JobSuccessful || !evs[0].GetTerminal() {
		t.Fatalf("events = %v, want only the final successful state", evs)
	}
}

func TestBatchRejectedForUnknownIDIsSplit(t *testing.T) {
	synctest.Test(t, testBatchRejectedForUnknownIDIsSplit)
}

func testBatchRejectedForUnknownIDIsSplit(t *testing.T) {
	f := newFake()
	f.rejectUnknown = true
	var good []string
	for i := 0; i < 7; i++ {
		id := "j-good000" + string(rune('a'+i))
		f.set(id, JobSuccessful)
		good = append(good, id)
	}
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	wg, err := h.Jobs(ctx, "", good)
	if err != nil {
		t.Fatal(err)
	}
	defer wg.Close()
	wb, err := h.Jobs(ctx, "", []string{"j-unknown1"})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if _, _, err := recvAll(ctx, wb); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "j-unknown1") {
		t.Fatalf("unknown job: err = %v, want NOT_FOUND naming j-unknown1", err)
	}
	evs, _, err := recvAll(ctx, wg)
	if err != nil || len(evs) != len(good) {
		t.Fatalf("good jobs: %d events, err %v; want %d, nil", len(evs), err, len(good))
	}
}

func TestRetryInfoDelaysPollAndNotifies(t *testing.T) {
	synctest.Test(t, testRetryInfoDelaysPollAndNotifies)
}

func testRetryInfoDelaysPollAndNotifies(t *testing.T) {
	f := newFake()
	f.set("j-quota001", JobWorking)
	const delay = 250 * time.Millisecond
	f.fail = func(n int) error {
		if n > 2 {
			return nil
		}
		st, _ := status.New(codes.ResourceExhausted, "poll budget exhausted").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
		return st.Err()
	}
	opts := fastOptions()
	opts.MaxBackoff = 400 * time.Millisecond
	h := newTestHub(t, f, opts)
	ctx := testCtx(t)
	w, err := h.Jobs(ctx, "", []string{"j-quota001"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m, err := w.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := m.GetNotice()
	if n == nil || !strings.Contains(n.GetReason(), "quota") {
		t.Fatalf("first message = %v, want a PollNotice about the quota", m)
	}
	if until := time.Until(n.GetNextPollTime().AsTime()); until < delay/2 || until > time.Second {
		t.Errorf("next poll in %v, want about the RetryInfo delay %v", until, delay)
	}
	f.set("j-quota001", JobSuccessful)
	evs, _, err := recvAll(ctx, w)
	if err != nil || len(evs) == 0 || !evs[len(evs)-1].GetTerminal() {
		t.Fatalf("after the quota clears: %v, %v; want the terminal event", evs, err)
	}
	calls := f.callLog()
	for i := 1; i < len(calls) && i < 3; i++ {
		if gap := calls[i].at.Sub(calls[i-1].at); gap < delay*8/10 {
			t.Errorf("call %d came %v after a RetryInfo of %v", i+1, gap, delay)
		}
	}
}

func TestIntervalBacksOffAndResets(t *testing.T) { synctest.Test(t, testIntervalBacksOffAndResets) }

func testIntervalBacksOffAndResets(t *testing.T) {
	f := newFake()
	f.set("j-steady01", JobWorking)
	opts := fastOptions() // 10ms growing by 1.5 to 80ms, no jitter
	h := newTestHub(t, f, opts)
	ctx := testCtx(t)
	w, err := h.Jobs(ctx, "", []string{"j-steady01"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitFor(t, func() bool { return len(f.callLog()) >= 9 })
	calls := f.callLog()
	var gaps []time.Duration
	for i := 1; i < len(calls); i++ {
		gaps = append(gaps, calls[i].at.Sub(calls[i-1].at))
	}
	if gaps[len(gaps)-1] < 60*time.Millisecond || gaps[len(gaps)-1] > 200*time.Millisecond {
		t.Errorf("gaps %v: want them to grow to the 80ms cap", gaps)
	}
	if min(gaps[1], gaps[2], gaps[3]) > 40*time.Millisecond {
		t.Errorf("gaps %v: want quick first rounds", gaps)
	}
	before := len(calls)
	f.set("j-steady01", JobSuccessful)
	evs, _, err := recvAll(ctx, w)
	if err != nil || !evs[len(evs)-1].GetTerminal() {
		t.Fatalf("events %v err %v", evs, err)
	}
	time.Sleep(200 * time.Millisecond) // on the bubble's clock
	synctest.Wait()
	if after := len(f.callLog()); after > before+1 {
		t.Errorf("%d calls after the only job ended; want none beyond the one that saw it end", after-before-1)
	}
}

func TestUnwatchedIDLeavesBatch(t *testing.T) { synctest.Test(t, testUnwatchedIDLeavesBatch) }

func testUnwatchedIDLeavesBatch(t *testing.T) {
	f := newFake()
	f.set("j-keep0001", JobWorking)
	f.set("j-drop0001", JobWorking)
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	keep, err := h.Jobs(ctx, "", []string{"j-keep0001"})
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	drop, err := h.Jobs(ctx, "", []string{"j-drop0001"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.Stats().Events >= 2 })
	drop.Close()
	n := len(f.callLog())
	waitFor(t, func() bool { return len(f.callLog()) >= n+3 })
	for _, c := range f.callLog()[n+1:] {
		if strings.Join(c.ids, ",") != "j-keep0001" {
			t.Fatalf("call after Close names %v; want only j-keep0001", c.ids)
		}
	}
}

func TestPollCallsAreClassPoll(t *testing.T) { synctest.Test(t, testPollCallsAreClassPoll) }

func testPollCallsAreClassPoll(t *testing.T) {
	f := newFake()
	f.set("j-class001", JobSuccessful)
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	w, err := h.Jobs(callclass.With(ctx, callclass.User), "", []string{"j-class001"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := recvAll(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.callLog() {
		if c.class != callclass.Poll {
			t.Errorf("%s call of class %v, want poll", c.action, c.class)
		}
	}
}

func TestPermanentErrorEndsWatch(t *testing.T) { synctest.Test(t, testPermanentErrorEndsWatch) }

func testPermanentErrorEndsWatch(t *testing.T) {
	f := newFake()
	f.set("j-denied01", JobWorking)
	f.fail = func(int) error { return status.Error(codes.PermissionDenied, "PermissionDenied, access denied") }
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	w, err := h.Jobs(ctx, "", []string{"j-denied01"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := recvAll(ctx, w); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err = %v, want PERMISSION_DENIED", err)
	}
}

func TestRequestValidation(t *testing.T) {
	h := newTestHub(t, newFake(), fastOptions())
	ctx := testCtx(t)
	for name, ids := range map[string][]string{"empty": nil, "blank": {" "}, "bad chars": {"j-1&x=2"}} {
		if _, err := h.Jobs(ctx, "", ids); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want INVALID_ARGUMENT", name, err)
		}
	}
	if _, err := h.Resources(ctx, "", "spaceship", []string{"x-1"}, ""); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "instance") {
		t.Errorf("unknown kind: err = %v, want INVALID_ARGUMENT listing the kinds", err)
	}
	if _, err := h.Resources(ctx, "", "keypair", []string{"kp-1"}, "active"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("target for a kind without status: err = %v, want INVALID_ARGUMENT", err)
	}
	noZone := NewSingle(newFake(), "", fastOptions())
	defer noZone.Close()
	if _, err := noZone.Jobs(ctx, "", []string{"j-1"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no zone: err = %v, want INVALID_ARGUMENT", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without Tenants: want an error")
	}
}

// TestZoneRule: watches follow the zone rule of typed RPCs and CallService (package zone): a zone that
// is not a lower-case zone id is refused, not corrected; a zone id is accepted.
func TestZoneRule(t *testing.T) { synctest.Test(t, testZoneRule) }

func testZoneRule(t *testing.T) {
	h := newTestHub(t, newFake(), fastOptions())
	ctx := testCtx(t)
	for _, zone := range []string{"PEK3A", " pek3a", "pek3a ", "pek3a&action=RunInstances", "p"} {
		_, err := h.Jobs(ctx, zone, []string{"j-1"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("zone %q: err = %v, want INVALID_ARGUMENT", zone, err)
			continue
		}
		var field string
		for _, d := range status.Convert(err).Details() {
			if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
				field = br.GetFieldViolations()[0].GetField()
			}
		}
		if field != "zone" {
			t.Errorf("zone %q: BadRequest names %q, want zone (%v)", zone, field, err)
		}
	}
	w, err := h.Jobs(ctx, "gd2", []string{"j-1"})
	if err != nil {
		t.Fatalf("zone gd2: %v", err)
	}
	w.Close()
}

func TestResourceWatchWithFake(t *testing.T) { synctest.Test(t, testResourceWatchWithFake) }

func testResourceWatchWithFake(t *testing.T) {
	f := newFake()
	f.set("vol-aaaa0001", "pending/creating")
	h := newTestHub(t, f, fastOptions())
	ctx := testCtx(t)
	w, err := h.Resources(ctx, "", "volume", []string{"vol-aaaa0001", "vol-missing1"}, "available")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	byID := map[string][]*iaasv1.ResourceEvent{}
	for {
		m, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ev := m.GetResource()
		byID[ev.GetResourceId()] = append(byID[ev.GetResourceId()], ev)
		if ev.GetResourceId() == "vol-aaaa0001" && ev.GetTransitionStatus() == "creating" {
			f.set("vol-aaaa0001", "available/")
		}
	}
	if evs := byID["vol-missing1"]; len(evs) != 1 || !evs[0].GetGone() {
		t.Errorf("missing volume: %v, want one gone event", evs)
	}
	evs := byID["vol-aaaa0001"]
	if last := evs[len(evs)-1]; !last.GetSettled() || last.GetStatus() != "available" || last.GetResource().GetFields()["size"].GetNumberValue() != 10 {
		t.Errorf("volume events %v, want to end settled available with the item", evs)
	}
}

// waitFor waits, in a synctest bubble, until cond holds once every goroutine of the bubble is
// blocked, letting the bubble's clock run for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
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

// TestNoGoroutineLeak opens watches that end every way (finished, canceled, closed, failed, cut by
// Close) on several Hubs and checks that every goroutine of the Hubs is gone afterwards.
func TestNoGoroutineLeak(t *testing.T) { synctest.Test(t, testNoGoroutineLeak) }

func testNoGoroutineLeak(t *testing.T) {
	base := bubbleGoroutines()
	for round := range 3 {
		f := newFake()
		f.set("j-done0001", JobSuccessful)
		f.set("j-run00001", JobWorking)
		h := NewSingle(f, "pek3a", fastOptions())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range 30 {
			ids := []string{"j-done0001"}
			switch i % 4 {
			case 1:
				ids = []string{"j-run00001"}
			case 2:
				ids = []string{"j-run00001", "j-nosuch01"}
			}
			zone := "pek3a"
			if i%5 == 0 {
				zone = "gd2a" // a second poller
			}
			w, err := h.Jobs(ctx, zone, ids)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer w.Close()
				if i%4 == 3 {
					return // closed without reading
				}
				_, _, _ = recvAll(ctx, w)
			}()
		}
		if _, err := h.Resources(ctx, "", "volume", []string{"vol-1"}, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // on the bubble's clock: the watches get under way
		if round == 1 {
			cancel()
		}
		h.Close()
		wg.Wait()
		cancel()
	}
	synctest.Wait() // every goroutine of the bubble has ended or is blocked for good (leaked)
	if n := bubbleGoroutines(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// bubbleGoroutines counts the goroutines of the synctest bubble (tests of this package run one at a
// time): unlike runtime.NumGoroutine, other tests' leftovers and the runtime's own goroutines do not
// change it.
func bubbleGoroutines() int {
	buf := make([]byte, 1<<20)
	return bytes.Count(buf[:runtime.Stack(buf, true)], []byte(", synctest bubble "))
}

// TestPollerRetiresWhenIdle checks that a poller stops as soon as its last watcher leaves.
func TestPollerRetiresWhenIdle(t *testing.T) { synctest.Test(t, testPollerRetiresWhenIdle) }

func testPollerRetiresWhenIdle(t *testing.T) {
	f := newFake()
	f.set("j-run00001", JobWorking)
	h := newTestHub(t, f, fastOptions())
	base := bubbleGoroutines()
	w, err := h.Jobs(testCtx(t), "", []string{"j-run00001"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.Stats().Events > 0 })
	w.Close()
	waitFor(t, func() bool { return h.Stats().Pollers == 0 && bubbleGoroutines() <= base })
	n := len(f.callLog())
	time.Sleep(100 * time.Millisecond) // on the bubble's clock
	synctest.Wait()
	if more := len(f.callLog()) - n; more > 0 {
		t.Errorf("%d calls after the last watcher left", more)
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	s := strings.Repeat("配额", 50) // 3 bytes per rune
	for n := 0; n < 20; n++ {
		if got := clipN(s, n); !utf8.ValidString(got) {
			t.Fatalf("clipN(%d) = %q is not valid UTF-8", n, got)
		}
	}
	if got := clipN("short", 64); got != "short" {
		t.Errorf("clipN kept %q", got)
	}
}

// TestTargetStatusIgnoresCase: QingCloud statuses are lower-case, like zones; a target status spelt
// "Available" must settle on "available" rather than keep the watch open until the deadline.
func TestTargetStatusIgnoresCase(t *testing.T) {
	for _, target := range []string{"available", "Available", " AVAILABLE "} {
		t.Run(target, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake()
				f.set("vol-aaaa0001", "available/")
				h := newTestHub(t, f, fastOptions())
				ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
				defer cancel()
				w, err := h.Resources(ctx, "", "volume", []string{"vol-aaaa0001"}, target)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				m, err := w.Recv(ctx)
				if err != nil || !m.GetResource().GetSettled() {
					t.Fatalf("first event %v, %v; want settled", m, err)
				}
				if _, err := w.Recv(ctx); !errors.Is(err, io.EOF) {
					t.Fatalf("after the settled event: %v, want io.EOF", err)
				}
			})
		})
	}
}

// TestPollsFollowTheClock runs a Hub on a fake Clock, outside a synctest bubble (as tests with real
// network I/O must): the poll calls, the backoff after a refusal and the PollNotice's next poll time
// are all on that clock, and the poller polls again exactly when the notice said.
func TestPollsFollowTheClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := newFakeClock(start)
	ctx := testCtx(t)
	go clock.run(ctx)
	f := newFake()
	f.now = clock.Now
	f.set("j-clock001", JobSuccessful)
	const delay = 250 * time.Millisecond
	f.fail = func(n int) error {
		if n > 1 {
			return nil
		}
		st, _ := status.New(codes.ResourceExhausted, "poll budget exhausted").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
		return st.Err()
	}
	opts := fastOptions()
	opts.Clock = clock
	h := newTestHub(t, f, opts)
	w, err := h.Jobs(ctx, "", []string{"j-clock001"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs, notices, err := recvAll(ctx, w)
	if err != nil || len(evs) != 1 || !evs[0].GetTerminal() || len(notices) != 1 {
		t.Fatalf("events %v, notices %v, err %v; want one notice, then the terminal event", evs, notices, err)
	}
	calls := f.callLog()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want the refused one and the one after the backoff", len(calls))
	}
	next := notices[0].GetNextPollTime().AsTime()
	if !calls[0].at.After(start) || next.Before(calls[0].at.Add(delay)) {
		t.Errorf("first call at %v (clock started at %v), next poll announced for %v: want the RetryInfo delay %v honoured on the clock",
			calls[0].at, start, next, delay)
	}
	if !calls[1].at.Equal(next) {
		t.Errorf("second call at %v, want the announced %v", calls[1].at, next)
	}
}

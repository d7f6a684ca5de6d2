package backend_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend/backendtest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// failure is one way an upstream attempt can go wrong.
type failure struct {
	name  string
	serve func(w http.ResponseWriter, r *http.Request)
}

func answer(code int, msg string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, fmt.Sprintf(`{"ret_code":%d,"message":%q}`, code, msg))
	}
}

func httpError(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		io.WriteString(w, "<html>error</html>")
	}
}

func connReset(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		reset(conn)
	}
}

func truncated(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, `{"ret_code":0,"instances":["i-1"`)
}

var transient = []failure{
	{"5000", answer(5000, "InternalError")},
	{"5100", answer(5100, "ServerBusy, please try later")},
	{"5300", answer(5300, "ServiceUpdating")},
	{"1400 busy", answer(1400, "PermissionDenied, resource [i-1] is [stopping], please try later")},
	{"1400 lease", answer(1400, "PermissionDenied, resource [eip-1] lease info not ready yet, please try later")},
	{"HTTP 502", httpError(http.StatusBadGateway)},
	{"HTTP 503", httpError(http.StatusServiceUnavailable)},
	{"HTTP 429", httpError(http.StatusTooManyRequests)},
	{"connection reset", connReset},
	{"truncated body", truncated},
}

// flaky serves fail for the first n requests, then a success; it counts requests.
type flaky struct {
	n, seen atomic.Int32
	fail    func(http.ResponseWriter, *http.Request)
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.seen.Add(1) <= f.n.Load() {
		f.fail(w, r)
		return
	}
	writeJSON(w, `{"ret_code":0,"instance_set":[],"total_count":0}`)
}

func newFlaky(t *testing.T, failFirst int, fail func(http.ResponseWriter, *http.Request)) (*flaky, string) {
	f := &flaky{fail: fail}
	f.n.Store(int32(failFirst))
	up := httptest.NewServer(f)
	t.Cleanup(up.Close)
	return f, up.URL + "/iaas/"
}

func TestReadsRetriedOnTransientFailures(t *testing.T) {
	for _, fl := range transient {
		t.Run(fl.name, func(t *testing.T) {
			f, endpoint := newFlaky(t, 3, fl.serve)
			rec := &backendtest.Recorder{}
			c := newClient(t, endpoint, observe(rec))
			if _, err := c.Call(context.Background(), "DescribeInstances", nil, false); err != nil {
				t.Fatalf("a read failing 3 times then succeeding: %v", err)
			}
			if n := f.seen.Load(); n != 4 {
				t.Errorf("upstream saw %d requests, want 4", n)
			}
			if a := rec.Action("DescribeInstances"); a.Calls != 1 || a.Attempts != 4 || a.Retries != 3 || a.RetCodes[0] != 1 {
				t.Errorf("stats %+v", a)
			}
		})
	}
}

// TestFixed4xxNotRetried: an HTTP 4xx other than 429 is the front end refusing the request before
// QingCloud's API saw it: neither a read nor a mutation is repeated, and the error says it was not
// applied (INVALID_ARGUMENT when the request was too large, FAILED_PRECONDITION otherwise).
func TestFixed4xxNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   codes.Code
	}{
		{http.StatusBadRequest, codes.FailedPrecondition},
		{http.StatusNotFound, codes.FailedPrecondition},
		{http.StatusRequestEntityTooLarge, codes.InvalidArgument},
		{http.StatusRequestURITooLong, codes.InvalidArgument},
		{http.StatusRequestHeaderFieldsTooLarge, codes.InvalidArgument},
	} {
		for _, action := range []string{"DescribeInstances", "RunInstances"} {
			t.Run(fmt.Sprintf("%d %s", tc.status, action), func(t *testing.T) {
				f, endpoint := newFlaky(t, 5, httpError(tc.status))
				c := newClient(t, endpoint)
				_, err := c.Call(context.Background(), action, nil, false)
				if n := f.seen.Load(); n != 1 {
					t.Errorf("upstream saw %d requests, want 1", n)
				}
				if status.Code(err) != tc.code || qcerr.MayHaveApplied(err) || strings.Contains(err.Error(), "may have been applied") {
					t.Errorf("%v, want %v saying it was not applied", err, tc.code)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(tc.status)) {
					t.Errorf("%v does not name the HTTP status", err)
				}
			})
		}
	}
}

// TestLongURLRefusedLocally: a GET whose signed URL would pass MaxURLBytes is refused with
// INVALID_ARGUMENT before anything is sent or any quota spent; a POST carries its parameters in the
// body and is sent.
func TestLongURLRefusedLocally(t *testing.T) {
	f, endpoint := newFlaky(t, 0, nil)
	b, err := budget.New(budget.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, endpoint, func(cfg *backend.Config) { cfg.Budget = b })
	params := map[string]string{"description": strings.Repeat("x", backend.MaxURLBytes)}
	_, err = c.Call(context.Background(), "DescribeInstances", params, false)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), strconv.Itoa(backend.MaxURLBytes)) {
		t.Errorf("%v, want INVALID_ARGUMENT naming the bound", err)
	}
	if n := f.seen.Load(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
	if used := b.Stats().Used; used != 0 {
		t.Errorf("the refused call spent %d of the quota budget", used)
	}
	if _, err := c.Call(context.Background(), "DescribeInstances", params, true); err != nil {
		t.Errorf("the same as a POST: %v", err)
	}
	if _, err := c.Call(context.Background(), "DescribeInstances", map[string]string{"description": strings.Repeat("x", backend.MaxURLBytes/2)}, false); err != nil {
		t.Errorf("a GET within the bound: %v", err)
	}
}

func TestMutationsNeverRepeatedOnceSent(t *testing.T) {
	for _, fl := range transient {
		t.Run(fl.name, func(t *testing.T) {
			f, endpoint := newFlaky(t, 1, fl.serve)
			c := newClient(t, endpoint)
			_, err := c.Call(context.Background(), "RunInstances", map[string]string{"image_id": "centos7x64d"}, false)
			if err == nil {
				t.Fatal("no error")
			}
			if n := f.seen.Load(); n != 1 {
				t.Errorf("upstream saw %d requests of a mutation, want 1", n)
			}
			_, ei := info(t, err)
			code, isAnswer := qcerr.RetCode(err)
			wantApplied := !isAnswer || code == 5000 || code == 5100
			if qcerr.MayHaveApplied(err) != wantApplied {
				t.Errorf("may_have_applied = %q, want %v: %v", ei.GetMetadata()["may_have_applied"], wantApplied, err)
			}
			if !isAnswer && status.Code(err) != codes.Unavailable {
				t.Errorf("code %v, want UNAVAILABLE", status.Code(err))
			}
		})
	}
}

// refusingDialer fails the first n dials as a refused connection would, before anything is sent.
func refusingDialer(n int32) (func(context.Context, string, string) (net.Conn, error), *atomic.Int32) {
	var dials atomic.Int32
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) <= n {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		return d.DialContext(ctx, network, addr)
	}, &dials
}

func TestMutationRetriedWhenNeverSent(t *testing.T) {
	f, endpoint := newFlaky(t, 0, nil)
	dial, dials := refusingDialer(2)
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, observe(rec), func(cfg *backend.Config) {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dial}}
	})
	if _, err := c.Call(context.Background(), "RunInstances", map[string]string{"image_id": "centos7x64d"}, false); err != nil {
		t.Fatalf("RunInstances after two refused connections: %v", err)
	}
	if n, d := f.seen.Load(), dials.Load(); n != 1 || d != 3 {
		t.Errorf("upstream saw %d requests after %d dials, want 1 after 3", n, d)
	}
	if a := rec.Action("RunInstances"); a.Attempts != 3 || a.TransportFailures != 2 || a.Retries != 2 {
		t.Errorf("stats %+v", a)
	}
}

func TestClockSkewResignedOnce(t *testing.T) {
	for _, action := range []string{"DescribeInstances", "RunInstances"} {
		t.Run(action+" once", func(t *testing.T) {
			f, endpoint := newFlaky(t, 1, answer(1300, "RequestExpired, time_stamp expired"))
			c := newClient(t, endpoint)
			if _, err := c.Call(context.Background(), action, nil, false); err != nil {
				t.Fatalf("%s after one 1300: %v", action, err)
			}
			if n := f.seen.Load(); n != 2 {
				t.Errorf("upstream saw %d requests, want 2", n)
			}
		})
		t.Run(action+" twice", func(t *testing.T) {
			f, endpoint := newFlaky(t, 100, answer(1300, "RequestExpired"))
			c := newClient(t, endpoint)
			_, err := c.Call(context.Background(), action, nil, false)
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("got %v, want UNAUTHENTICATED", err)
			}
			if n := f.seen.Load(); n != 2 {
				t.Errorf("upstream saw %d requests, want 2 (one re-sign only)", n)
			}
		})
	}
}

func TestDefiniteAnswersNotRetried(t *testing.T) {
	for code, msg := range map[int]string{
		1100: "ParameterError", 1200: "AuthFailure", 1400: "PermissionDenied, resource [i-1] does not belong to you",
		2100: "ResourceNotFound", 2500: "QuotaExceeded, API request quota exceeded, please try later", 5200: "", 5400: "",
	} {
		f, endpoint := newFlaky(t, 100, answer(code, msg))
		c := newClient(t, endpoint)
		_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
		if got, _ := qcerr.RetCode(err); got != code {
			t.Errorf("ret_code %d: got %v", code, err)
		}
		if n := f.seen.Load(); n != 1 {
			t.Errorf("ret_code %d: upstream saw %d requests, want 1", code, n)
		}
	}
}

func TestMaxAttempts(t *testing.T) {
	f, endpoint := newFlaky(t, 100, answer(5000, "InternalError"))
	c := newClient(t, endpoint, func(cfg *backend.Config) { cfg.MaxAttempts = 3 })
	_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v", err)
	}
	if n := f.seen.Load(); n != 3 {
		t.Errorf("upstream saw %d requests, want MaxAttempts 3", n)
	}
	if n := newClientDefaultAttempts(t, endpoint); n != backend.DefaultMaxAttempts {
		t.Errorf("default: %d attempts, want %d", n, backend.DefaultMaxAttempts)
	}
}

func newClientDefaultAttempts(t *testing.T, endpoint string) int64 {
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, observe(rec))
	c.Call(context.Background(), "DescribeInstances", nil, false)
	return rec.Action("DescribeInstances").Attempts
}

func TestRetriesStayInsideTheDeadline(t *testing.T) {
	synctest.Test(t, testRetriesStayInsideTheDeadline)
}

func testRetriesStayInsideTheDeadline(t *testing.T) {
	f := &flaky{fail: answer(5100, "ServerBusy")}
	f.n.Store(1000)
	endpoint, mem := memUpstream(t, f)
	c := newClient(t, endpoint, mem, func(cfg *backend.Config) {
		cfg.MaxAttempts = 1000
		cfg.RetryBaseDelay = 40 * time.Millisecond
		cfg.RetryMaxDelay = 200 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	_, err := c.Call(ctx, "DescribeInstances", nil, false)
	if time.Now().After(dl) {
		t.Errorf("returned %v after the deadline", time.Since(dl))
	}
	// The last upstream answer, not a bare deadline: the caller learns what went wrong.
	if got, _ := qcerr.RetCode(err); got != 5100 || status.Code(err) != codes.Unavailable {
		t.Errorf("got %v, want the 5100 answer", err)
	}
	if n := f.seen.Load(); n < 3 || n > 12 {
		t.Errorf("%d attempts in 500 ms with 40..200 ms backoff", n)
	}

	// The same inside the default deadline of a call that brings none, without coalescing (the
	// deadline is then no context of its own).
	f.seen.Store(0)
	c = newClient(t, endpoint, mem, func(cfg *backend.Config) {
		cfg.MaxAttempts = 1000
		cfg.RetryBaseDelay = 40 * time.Millisecond
		cfg.RetryMaxDelay = 200 * time.Millisecond
		cfg.DefaultTimeout = 500 * time.Millisecond
		cfg.DisableCoalescing = true
	})
	start := time.Now()
	_, err = c.Call(context.Background(), "DescribeInstances", nil, false)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("returned %v after the default deadline", d-500*time.Millisecond)
	}
	if got, _ := qcerr.RetCode(err); got != 5100 || status.Code(err) != codes.Unavailable {
		t.Errorf("default deadline: got %v, want the 5100 answer", err)
	}
	if n := f.seen.Load(); n < 3 || n > 12 {
		t.Errorf("default deadline: %d attempts in 500 ms with 40..200 ms backoff", n)
	}
}

func TestDefaultTimeout(t *testing.T) { synctest.Test(t, testDefaultTimeout) }

func testDefaultTimeout(t *testing.T) {
	endpoint, mem := memUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(300 * time.Millisecond):
			writeJSON(w, `{"ret_code":0}`)
		}
	}))
	c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.DefaultTimeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
	if code, ei := info(t, err); code != codes.DeadlineExceeded || ei.GetReason() != "DEADLINE_EXCEEDED" {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("took %v, want about the 100 ms default deadline", d)
	}
	// The same without coalescing, and for a mutation (never coalesced): the default deadline is
	// then no context of its own but the end of the attempt's, and still ends the call with
	// DEADLINE_EXCEEDED, not as an attempt timeout.
	uncoalesced := newClient(t, endpoint, mem, func(cfg *backend.Config) {
		cfg.DefaultTimeout = 100 * time.Millisecond
		cfg.DisableCoalescing = true
	})
	for _, action := range []string{"DescribeInstances", "RunInstances"} {
		start := time.Now()
		_, err := uncoalesced.Call(context.Background(), action, nil, false)
		if code, ei := info(t, err); code != codes.DeadlineExceeded || ei.GetReason() != "DEADLINE_EXCEEDED" {
			t.Errorf("%s without coalescing: got %v", action, err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("%s without coalescing took %v, want the 100 ms default deadline", action, d)
		}
	}
	// A caller's own deadline wins over the default.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, "DescribeInstances", nil, false); err != nil {
		t.Errorf("with a 2 s caller deadline: %v", err)
	}
	// A negative default means none.
	c = newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.DefaultTimeout = -1 })
	if _, err := c.Call(context.Background(), "DescribeInstances", nil, false); err != nil {
		t.Errorf("without a default deadline: %v", err)
	}
}

func TestBudgetRefusesLocally(t *testing.T) {
	f, endpoint := newFlaky(t, 0, nil)
	b, err := budget.New(budget.Config{Limit: 10, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, observe(rec), func(cfg *backend.Config) { cfg.Budget = b; cfg.DisableCoalescing = true })
	ok, refused := 0, 0
	for range 50 {
		_, err := c.Call(context.Background(), "RunInstances", nil, false)
		switch {
		case err == nil:
			ok++
		case status.Code(err) == codes.ResourceExhausted:
			refused++
			_, ei := info(t, err)
			d, has := qcerr.RetryDelay(err)
			if ei.GetReason() != qcerr.ReasonBudgetExhausted || !has || d <= 0 || d > time.Minute+time.Second {
				t.Fatalf("refusal %v (RetryInfo %v)", err, d)
			}
		default:
			t.Fatal(err)
		}
	}
	// 10 per minute: user calls may use 9, 1 is kept for polls.
	if ok != 9 || refused != 41 || f.seen.Load() != 9 {
		t.Fatalf("%d ok, %d refused, upstream saw %d; want 9, 41, 9", ok, refused, f.seen.Load())
	}
	pctx := callclass.With(context.Background(), callclass.Poll)
	if _, err := c.Call(pctx, "DescribeJobs", nil, false); err != nil {
		t.Fatalf("a poll call after a user flood: %v", err)
	}
	if bs, total := b.Stats(), rec.Total(); bs.Remaining != 0 || bs.Classes["user"].Refused != 41 || total.Refused != 41 {
		t.Fatalf("budget %+v, refused %d", bs, total.Refused)
	}
}

func TestRetriesSpendBudget(t *testing.T) {
	f, endpoint := newFlaky(t, 100, answer(5100, "ServerBusy"))
	b, _ := budget.New(budget.Config{Limit: 3, Window: time.Minute, PollReserve: -1})
	c := newClient(t, endpoint, func(cfg *backend.Config) { cfg.Budget = b })
	_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "after 3 attempts") || !strings.Contains(err.Error(), "5100") {
		t.Fatalf("got %v", err)
	}
	if n := f.seen.Load(); n != 3 {
		t.Errorf("upstream saw %d, want 3", n)
	}
}

// slow answers after a delay, counting requests and requests whose context was canceled.
type slow struct {
	delay          time.Duration
	seen, canceled atomic.Int32
}

func (s *slow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.seen.Add(1)
	select {
	case <-time.After(s.delay):
		writeJSON(w, `{"ret_code":0,"instance_set":[{"instance_id":"i-1"}],"total_count":1}`)
	case <-r.Context().Done():
		s.canceled.Add(1)
	}
}

func TestCoalescingSharesIdenticalReads(t *testing.T) {
	synctest.Test(t, testCoalescingSharesIdenticalReads)
}

func testCoalescingSharesIdenticalReads(t *testing.T) {
	s := &slow{delay: 100 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, mem, observe(rec))
	const n = 50
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Call(context.Background(), "DescribeInstances", map[string]string{"zone": "pek3a", "status.1": "running"}, false)
			if err != nil {
				t.Error(err)
			}
			bodies[i] = b
		}()
	}
	wg.Wait()
	if got := s.seen.Load(); got > 3 {
		t.Errorf("%d identical concurrent reads made %d upstream calls, want 1 (a few at most)", n, got)
	}
	st := rec.Action("DescribeInstances")
	if st.Calls != n || st.Coalesced != n-int64(s.seen.Load()) || st.Attempts != int64(s.seen.Load()) {
		t.Errorf("stats %+v", st)
	}
	// Every caller has its own copy.
	bodies[0][0] = 'X'
	for i := 1; i < n; i++ {
		if !bytes.HasPrefix(bodies[i], []byte(`{"ret_code":0`)) {
			t.Fatalf("body %d shares memory with body 0: %q", i, bodies[i][:10])
		}
	}
}

// TestCoalescedTypedCallsGetTheirOwnMessages: concurrent identical typed reads share upstream calls;
// the caller whose call ran gets the message decoded in the pass that checked ret_code, the others
// decode their copy of the body; every caller gets a complete message of its own.
func TestCoalescedTypedCallsGetTheirOwnMessages(t *testing.T) {
	synctest.Test(t, testCoalescedTypedCallsGetTheirOwnMessages)
}

func testCoalescedTypedCallsGetTheirOwnMessages(t *testing.T) {
	s := &slow{delay: 100 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, mem, observe(rec))
	md := methodByAction(t, "DescribeInstances")
	const n = 20
	resps := make([]*iaasv1.DescribeInstancesResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.InvokeMethod(context.Background(), md, &iaasv1.DescribeInstancesRequest{Zone: proto.String("pek3a")})
			if err != nil {
				t.Error(err)
				return
			}
			resps[i] = resp.(*iaasv1.DescribeInstancesResponse)
		}()
	}
	wg.Wait()
	for i, r := range resps {
		if r.GetTotalCount() != 1 || len(r.GetInstanceSet()) != 1 || r.GetInstanceSet()[0].GetInstanceId() != "i-1" || r.GetRetCode() != 0 || r.RetCode == nil {
			t.Fatalf("caller %d got %v", i, r)
		}
	}
	resps[0].InstanceSet[0].InstanceId = proto.String("changed")
	for i := 1; i < n; i++ {
		if resps[i].GetInstanceSet()[0].GetInstanceId() != "i-1" {
			t.Fatalf("caller %d shares its message with caller 0", i)
		}
	}
	st := rec.Action("DescribeInstances")
	if st.Calls != n || st.Coalesced+st.Attempts != n {
		t.Errorf("stats %+v", st)
	}
	t.Logf("%d upstream calls for %d callers", st.Attempts, n)
}

func TestCoalescingOnlyIdenticalReads(t *testing.T) {
	synctest.Test(t, testCoalescingOnlyIdenticalReads)
}

func testCoalescingOnlyIdenticalReads(t *testing.T) {
	s := &slow{delay: 50 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	c := newClient(t, endpoint, mem)
	calls := []struct {
		action string
		params map[string]string
		post   bool
		class  callclass.Class
	}{
		{"DescribeInstances", map[string]string{"zone": "pek3a"}, false, callclass.User},
		{"DescribeInstances", map[string]string{"zone": "pek3a"}, false, callclass.User}, // shares with the first
		{"DescribeInstances", map[string]string{"zone": "sh1a"}, false, callclass.User},
		{"DescribeInstances", map[string]string{"zone": "pek3a"}, true, callclass.User},
		{"DescribeInstances", map[string]string{"zone": "pek3a"}, false, callclass.Poll},
		{"DescribeVolumes", map[string]string{"zone": "pek3a"}, false, callclass.User},
		{"RunInstances", map[string]string{"zone": "pek3a"}, false, callclass.User},
		{"RunInstances", map[string]string{"zone": "pek3a"}, false, callclass.User}, // mutations never share
	}
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Call(callclass.With(context.Background(), call.class), call.action, call.params, call.post); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := s.seen.Load(); got != int32(len(calls)-1) {
		t.Errorf("upstream saw %d requests, want %d", got, len(calls)-1)
	}
}

func TestCoalescedCallerCancelDoesNotCancelOthers(t *testing.T) {
	synctest.Test(t, testCoalescedCallerCancelDoesNotCancelOthers)
}

func testCoalescedCallerCancelDoesNotCancelOthers(t *testing.T) {
	s := &slow{delay: 500 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, mem, observe(rec))
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Call(leaderCtx, "DescribeInstances", nil, false)
		leaderErr <- err
	}()
	waitFor(t, func() bool { return s.seen.Load() == 1 })
	followerErr := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
		followerErr <- err
	}()
	synctest.Wait() // the follower has joined the leader's call and waits for it
	cancelLeader()
	if err := <-leaderErr; status.Code(err) != codes.Canceled {
		t.Errorf("leader: %v, want CANCELED", err)
	}
	if err := <-followerErr; err != nil {
		t.Errorf("follower of a canceled leader: %v", err)
	}
	if s.seen.Load() != 1 || s.canceled.Load() != 0 || rec.Action("DescribeInstances").Coalesced != 1 {
		t.Errorf("upstream saw %d requests, %d canceled, stats %+v; want 1 shared, 0 canceled",
			s.seen.Load(), s.canceled.Load(), rec.Action("DescribeInstances"))
	}
}

func TestCoalescedCallUsesLongestDeadline(t *testing.T) {
	synctest.Test(t, testCoalescedCallUsesLongestDeadline)
}

func testCoalescedCallUsesLongestDeadline(t *testing.T) {
	s := &slow{delay: 200 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.MaxAttempts = 1 })
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	shortErr := make(chan error, 1)
	go func() {
		_, err := c.Call(short, "DescribeInstances", nil, false)
		shortErr <- err
	}()
	waitFor(t, func() bool { return s.seen.Load() == 1 })
	long, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := c.Call(long, "DescribeInstances", nil, false); err != nil {
		t.Errorf("a caller with a long deadline sharing a call started with a short one: %v", err)
	}
	if err := <-shortErr; status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("short caller: %v", err)
	}
	if s.seen.Load() != 1 {
		t.Errorf("upstream saw %d requests, want 1", s.seen.Load())
	}
}

func TestCoalescedCallStopsWhenEveryoneLeaves(t *testing.T) {
	synctest.Test(t, testCoalescedCallStopsWhenEveryoneLeaves)
}

func testCoalescedCallStopsWhenEveryoneLeaves(t *testing.T) {
	s := &slow{delay: 5 * time.Second}
	endpoint, mem := memUpstream(t, s)
	c := newClient(t, endpoint, mem)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, "DescribeInstances", nil, false); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("got %v", err)
	}
	waitFor(t, func() bool { return s.canceled.Load() == 1 })
	// A later identical call starts afresh rather than joining the abandoned one.
	s.delay = 0
	if _, err := c.Call(context.Background(), "DescribeInstances", nil, false); err != nil {
		t.Errorf("after an abandoned call: %v", err)
	}
}

func TestCoalescingDisabled(t *testing.T) { synctest.Test(t, testCoalescingDisabled) }

func testCoalescingDisabled(t *testing.T) {
	s := &slow{delay: 50 * time.Millisecond}
	endpoint, mem := memUpstream(t, s)
	c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.DisableCoalescing = true })
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Call(context.Background(), "DescribeInstances", nil, false) }()
	}
	wg.Wait()
	if s.seen.Load() != 5 {
		t.Errorf("upstream saw %d, want 5", s.seen.Load())
	}
}

// TestPolicyIsDocumented keeps the table of docs/upstream.md equal to the policy in code.
func TestPolicyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/upstream.md")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| what came of the attempt | read-only action | mutation | why |\n|---|---|---|---|\n")
	for _, r := range backend.Policy() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Outcome, r.Read, r.Mutation, r.Why)
	}
	if !strings.Contains(string(doc), b.String()) {
		t.Errorf("docs/upstream.md does not contain the retry policy table; put this in it:\n%s", b.String())
	}
}

// TestObserver: the Client reports every call, attempt (with its ret_code, outcome and HTTP status)
// and budget refusal to its Observer.
func TestObserver(t *testing.T) {
	f, endpoint := newFlaky(t, 2, answer(5100, "ServerBusy"))
	b, err := budget.New(budget.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &backendtest.Recorder{}
	c := newClient(t, endpoint, observe(rec), func(cfg *backend.Config) { cfg.Budget = b })
	c.Call(context.Background(), "DescribeInstances", nil, false)
	c.Call(context.Background(), "DescribeZones", nil, false)
	st := rec.Total()
	if st.Calls != 2 || st.Attempts != 4 || st.Retries != 2 || st.RetCodes[5100] != 2 || st.RetCodes[0] != 2 || st.HTTPStatuses[200] != 4 {
		t.Errorf("total %+v", st)
	}
	if bs := b.Stats(); bs.Limit != budget.DefaultLimit || bs.Used != 4 || bs.Classes["user"].Remaining != 1800-4 {
		t.Errorf("budget %+v", bs)
	}
	if f.seen.Load() != 4 {
		t.Errorf("seen %d", f.seen.Load())
	}
	var outcomes []string
	for _, a := range rec.Attempts() {
		if a.Class != callclass.User || a.Duration <= 0 {
			t.Errorf("attempt %+v: want class user and a duration", a)
		}
		outcomes = append(outcomes, fmt.Sprintf("%s %t %s %d", a.Action, a.Retry, a.Outcome, a.RetCode))
	}
	want := []string{
		"DescribeInstances false error_answer 5100", "DescribeInstances true error_answer 5100", "DescribeInstances true ok 0",
		"DescribeZones false ok 0",
	}
	if !slices.Equal(outcomes, want) {
		t.Errorf("attempts %q, want %q", outcomes, want)
	}

	// A connection that fails is a transport failure without an HTTP status.
	dial, _ := refusingDialer(1)
	rec = &backendtest.Recorder{}
	c = newClient(t, endpoint, observe(rec), func(cfg *backend.Config) {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dial}}
		cfg.MaxAttempts = 1
	})
	c.Call(context.Background(), "DescribeZones", nil, false)
	if a := rec.Attempts(); len(a) != 1 || a[0].Outcome != backend.OutcomeTransportFailure || a[0].HTTPStatus != 0 {
		t.Errorf("attempts %+v, want one transport failure without an HTTP status", a)
	}
}

// waitFor waits, in a synctest bubble, until cond holds once every goroutine of the bubble is
// blocked, letting the bubble's clock run for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond) // advances the bubble's clock
	}
}

// TestEndedContextSpendsNoBudget checks that a call whose context ended before any attempt is refused
// without spending the quota budget (nothing is sent).
func TestEndedContextSpendsNoBudget(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tt := range []struct {
		name     string
		ctx      context.Context
		action   string
		coalesce bool
		want     codes.Code
	}{
		{"canceled read", canceled, "DescribeInstances", false, codes.Canceled},
		{"canceled coalesced read", canceled, "DescribeInstances", true, codes.Canceled},
		{"canceled mutation", canceled, "RunInstances", false, codes.Canceled},
		{"expired read", expired, "DescribeInstances", false, codes.DeadlineExceeded},
		{"expired coalesced read", expired, "DescribeInstances", true, codes.DeadlineExceeded},
		{"expired mutation", expired, "RunInstances", false, codes.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &flaky{}
				endpoint, mem := memUpstream(t, f)
				b, _ := budget.New(budget.Config{Limit: 10, Window: time.Minute})
				c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.Budget = b; cfg.DisableCoalescing = !tt.coalesce })
				_, err := c.Call(tt.ctx, tt.action, nil, false)
				if status.Code(err) != tt.want {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				synctest.Wait() // a coalesced call runs in its own goroutine: it has ended or is blocked
				if used := b.Stats().Used; used != 0 || f.seen.Load() != 0 {
					t.Errorf("budget used %d, upstream saw %d; want 0, 0", used, f.seen.Load())
				}
			})
		})
	}
}

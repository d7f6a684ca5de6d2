package server_test

// Tests of the upstream discipline (docs/upstream.md) through the real server stack: gRPC over bufconn
// and REST over httptest, the backend, and the emulator with fault injection as QingCloud.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend/backendtest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// quickJobs are the emulator options of these tests: fast jobs, no upstream quota.
var quickJobs = emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 50 * time.Millisecond, Quota: -1}

// upStack is a stack whose emulator and backend are configured by the test.
type upStack struct {
	*stack
	be       *backend.Client
	rec      *backendtest.Recorder // what the backend reported (Config.Observer)
	endpoint string                // the emulator's API URL
}

// newUpStack wires a facade like newStack, with emulator options eo and the backend configuration
// changed by mod. Retries are quick unless mod says otherwise.
func newUpStack(t testing.TB, eo emulator.Options, mod func(*backend.Config)) *upStack {
	t.Helper()
	return newUpStackOn(t, emulator.New(eo), mod)
}

// newUpStackOn is newUpStack on a given emulator.
func newUpStackOn(t testing.TB, emu *emulator.Emulator, mod func(*backend.Config)) *upStack {
	t.Helper()
	up := httptest.NewServer(emu)
	t.Cleanup(up.Close)
	cfg := backend.Config{
		Endpoint:       up.URL + "/iaas/",
		Credentials:    signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey},
		HTTPClient:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  20 * time.Millisecond,
		Observer:       &backendtest.Recorder{},
	}
	if mod != nil {
		mod(&cfg)
	}
	be, err := backend.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := cfg.Observer.(*backendtest.Recorder)
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: be, Zone: "pek3a"}})
	if err != nil {
		t.Fatal(err)
	}
	conn := testutil.ServeBufconn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(h)
	t.Cleanup(rest.Close)
	return &upStack{stack: &stack{emu: emu, conn: conn, rest: rest.URL, srv: srv}, be: be, rec: rec, endpoint: up.URL + "/iaas/"}
}

func runRequest(count int32) *iaasv1.RunInstancesRequest {
	return &iaasv1.RunInstancesRequest{
		ImageId: proto.String("centos7x64d"), InstanceType: proto.String("c1m1"),
		LoginMode: proto.String("passwd"), LoginPasswd: proto.String("Passw0rd1"), Count: proto.Int32(count),
	}
}

// instances returns the live instances of the default account.
func (s *upStack) instances() int {
	return s.emu.Stats().Keys[emulator.DefaultAccessKeyID].Resources["instance"]
}

// requests returns the requests the emulator received for action.
func (s *upStack) requests(action string) int64 { return s.emu.Stats().Requests[action] }

// retCodes returns the answers the emulator gave, by ret_code, over all actions.
func (s *upStack) retCodes() map[int]int64 {
	out := map[int]int64{}
	for _, m := range s.emu.Stats().RetCodes {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// errDetails returns the ErrorInfo (exactly one), RetryInfo and QuotaFailure of err.
func errDetails(t *testing.T, err error) (*errdetails.ErrorInfo, *errdetails.RetryInfo, *errdetails.QuotaFailure) {
	t.Helper()
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	var quota *errdetails.QuotaFailure
	n := 0
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
			n++
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.QuotaFailure:
			quota = d
		}
	}
	if n != 1 {
		t.Fatalf("%d ErrorInfo in %v, want 1", n, err)
	}
	return info, retry, quota
}

// restError returns the AIP-193 error of a REST answer: status name and ErrorInfo reason.
func restError(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	reason := ""
	for _, d := range details {
		if m, _ := d.(map[string]any); m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			reason, _ = m["reason"].(string)
		}
	}
	st, _ := e["status"].(string)
	return st, reason
}

// TestUpstreamErrorsMapped makes the emulator produce each kind of failure and checks what gRPC and
// REST callers get.
func TestUpstreamErrorsMapped(t *testing.T) {
	type env struct {
		*upStack
		inst iaasv1.InstanceServiceClient
	}
	tests := []struct {
		name     string
		eo       func(*emulator.Options)
		be       func(*backend.Config)
		call     func(t *testing.T, ctx context.Context, e env) error
		rest     string // "METHOD path body" of the same call over REST, if any
		code     codes.Code
		reason   string
		http     int
		contains string // in the status message
		check    func(t *testing.T, e env, err error)
	}{
		{
			name: "1100 bad parameter",
			call: func(t *testing.T, ctx context.Context, e env) error {
				// A zone id the emulator does not have: well-formed, so only QingCloud can refuse it.
				_, err := e.inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Zone: proto.String("zz9z")})
				return err
			},
			rest: "GET /v1/iaas/DescribeInstances?zone=zz9z", code: codes.InvalidArgument, reason: "QINGCLOUD_1100", http: 400,
		},
		{
			name: "1200 wrong secret",
			be:   func(c *backend.Config) { c.Credentials.SecretAccessKey = "wrong" },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{})
				return err
			},
			rest: "GET /v1/iaas/DescribeInstances", code: codes.Unauthenticated, reason: "QINGCLOUD_1200", http: 401,
			check: func(t *testing.T, e env, err error) {
				if n := e.requests("DescribeInstances"); n != 2 {
					t.Errorf("a 1200 was sent %d times (gRPC + REST), want once each", n)
				}
			},
		},
		{
			name: "1300 clock skew re-signed once",
			eo:   func(o *emulator.Options) { o.Now = func() time.Time { return time.Now().Add(5 * time.Minute) } },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.RunInstances(ctx, runRequest(1))
				return err
			},
			code: codes.Unauthenticated, reason: "QINGCLOUD_1300", contains: "clock",
			check: func(t *testing.T, e env, err error) {
				if n := e.requests("RunInstances"); n != 2 {
					t.Errorf("RunInstances sent %d times on 1300, want 2 (one fresh signature)", n)
				}
			},
		},
		{
			name: "1400 unknown action",
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := iaasv1.NewCallServiceClient(e.conn).Call(ctx, &iaasv1.CallRequest{Action: "FrobnicateWidgets"})
				return err
			},
			rest: `POST /v1/iaas:call {"action":"FrobnicateWidgets"}`, code: codes.PermissionDenied, reason: "QINGCLOUD_1400", http: 403,
		},
		{
			name: "1400 busy resource is retryable, mutation sent once",
			eo:   func(o *emulator.Options) { o.JobPending = time.Minute },
			call: func(t *testing.T, ctx context.Context, e env) error {
				run, err := e.inst.RunInstances(ctx, runRequest(1))
				if err != nil {
					t.Fatal(err)
				}
				_, err = e.inst.StopInstances(ctx, &iaasv1.StopInstancesRequest{Instances: run.GetInstances()})
				return err
			},
			code: codes.Unavailable, reason: "QINGCLOUD_1400", contains: "busy",
			check: func(t *testing.T, e env, err error) {
				if _, retry, _ := errDetails(t, err); retry == nil {
					t.Error("no RetryInfo")
				}
				if n := e.requests("StopInstances"); n != 1 {
					t.Errorf("StopInstances sent %d times, want 1", n)
				}
			},
		},
		{
			name: "1400 wrong state is a failed precondition",
			call: func(t *testing.T, ctx context.Context, e env) error {
				run, err := e.inst.RunInstances(ctx, runRequest(1))
				if err != nil {
					t.Fatal(err)
				}
				waitJob(t, ctx, iaasv1.NewJobServiceClient(e.conn), run.GetJobId())
				_, err = e.inst.StartInstances(ctx, &iaasv1.StartInstancesRequest{Instances: run.GetInstances()})
				return err
			},
			code: codes.FailedPrecondition, reason: "QINGCLOUD_1400",
		},
		{
			name: "2100 not found",
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.TerminateInstances(ctx, &iaasv1.TerminateInstancesRequest{Instances: []string{"i-missing1"}})
				return err
			},
			rest: `POST /v1/iaas/TerminateInstances {"instances":["i-missing1"]}`, code: codes.NotFound, reason: "QINGCLOUD_2100", http: 404,
		},
		{
			name: "2500 upstream API quota, never retried",
			eo:   func(o *emulator.Options) { o.Quota, o.QuotaWindow = 2, time.Minute },
			be:   func(c *backend.Config) { c.Budget = budget.Unlimited() },
			call: func(t *testing.T, ctx context.Context, e env) error {
				var err error
				for range 3 {
					_, err = iaasv1.NewZoneServiceClient(e.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
				}
				return err
			},
			rest: "GET /v1/iaas/DescribeZones", code: codes.ResourceExhausted, reason: "QINGCLOUD_2500", http: 429,
			check: func(t *testing.T, e env, err error) {
				_, retry, quota := errDetails(t, err)
				if retry == nil || quota.GetViolations()[0].GetSubject() != "api_requests" {
					t.Errorf("RetryInfo %v QuotaFailure %v", retry, quota)
				}
				if n := e.retCodes()[2500]; n != 2 {
					t.Errorf("%d upstream 2500s for two refused calls (gRPC, REST): a 2500 was retried", n)
				}
			},
		},
		{
			name: "5000 on a read: retried, then INTERNAL",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{RetCode5000: 1} },
			be:   func(c *backend.Config) { c.MaxAttempts = 3 },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{})
				return err
			},
			rest: "GET /v1/iaas/DescribeInstances", code: codes.Internal, reason: "QINGCLOUD_5000", http: 500,
			check: func(t *testing.T, e env, err error) {
				if n := e.requests("DescribeInstances"); n != 6 {
					t.Errorf("%d DescribeInstances for two calls with MaxAttempts 3, want 6", n)
				}
			},
		},
		{
			name: "5100 on a mutation: sent once, may have applied",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{RetCode5100: 1} },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.RunInstances(ctx, runRequest(1))
				return err
			},
			code: codes.Unavailable, reason: "QINGCLOUD_5100", contains: "may have been applied",
			check: func(t *testing.T, e env, err error) {
				info, retry, _ := errDetails(t, err)
				if info.GetMetadata()["may_have_applied"] != "true" || retry == nil {
					t.Errorf("ErrorInfo %v RetryInfo %v", info, retry)
				}
				if n := e.requests("RunInstances"); n != 1 {
					t.Errorf("RunInstances sent %d times, want 1", n)
				}
			},
		},
		{
			name: "HTTP 502",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{HTTP502: 1} },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.RunInstances(ctx, runRequest(1))
				return err
			},
			rest: `POST /v1/iaas/RunInstances {"image_id":"centos7x64d","instance_type":"c1m1","login_mode":"passwd","login_passwd":"Passw0rd1"}`,
			code: codes.Unavailable, reason: qcerr.ReasonUpstreamUnavailable, http: 503, contains: "upstream answered HTTP 502 Bad Gateway",
			check: func(t *testing.T, e env, err error) {
				if !qcerr.MayHaveApplied(err) || e.requests("RunInstances") != 2 {
					t.Errorf("may_have_applied %v, %d requests for two calls", qcerr.MayHaveApplied(err), e.requests("RunInstances"))
				}
			},
		},
		{
			name: "HTTP 503",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{HTTP503: 1} },
			be:   func(c *backend.Config) { c.MaxAttempts = 2 },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{})
				return err
			},
			code: codes.Unavailable, reason: qcerr.ReasonUpstreamUnavailable, contains: "upstream answered HTTP 503 Service Unavailable",
		},
		{
			name: "connection reset",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{ConnReset: 1} },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.RunInstances(ctx, runRequest(1))
				return err
			},
			code: codes.Unavailable, reason: qcerr.ReasonUpstreamUnavailable, contains: "may have been applied",
			check: func(t *testing.T, e env, err error) {
				if n := e.requests("RunInstances"); n != 1 {
					t.Errorf("RunInstances sent %d times after a reset, want 1", n)
				}
			},
		},
		{
			name: "truncated body",
			eo:   func(o *emulator.Options) { o.Faults = emulator.Faults{TruncatedBody: 1} },
			call: func(t *testing.T, ctx context.Context, e env) error {
				_, err := e.inst.RunInstances(ctx, runRequest(1))
				return err
			},
			code: codes.Unavailable, reason: qcerr.ReasonUpstreamUnavailable, contains: "not valid JSON (truncated?)",
			check: func(t *testing.T, e env, err error) {
				// The emulator executed the action before cutting the answer: exactly one instance.
				if n, i := e.requests("RunInstances"), e.instances(); n != 1 || i != 1 {
					t.Errorf("%d requests, %d instances; want 1 and 1", n, i)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eo := quickJobs
			if tc.eo != nil {
				tc.eo(&eo)
			}
			s := newUpStack(t, eo, tc.be)
			e := env{upStack: s, inst: iaasv1.NewInstanceServiceClient(s.conn)}
			err := tc.call(t, ctxT(t), e)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			info, _, _ := errDetails(t, err)
			if info.GetReason() != tc.reason || info.GetDomain() != qcerr.Domain {
				t.Errorf("ErrorInfo %v, want reason %s", info, tc.reason)
			}
			if !strings.Contains(status.Convert(err).Message(), tc.contains) {
				t.Errorf("message %q does not say %q", status.Convert(err).Message(), tc.contains)
			}
			if tc.rest != "" {
				method, rest, _ := strings.Cut(tc.rest, " ")
				path, body, _ := strings.Cut(rest, " ")
				code, out := restCall(t, method, s.rest+path, body)
				st, reason := restError(t, out)
				if code != tc.http || st != strings.ToUpper(toSnake(tc.code.String())) || reason != tc.reason {
					t.Errorf("REST %s: HTTP %d %s %s, want %d %v %s", tc.rest, code, st, reason, tc.http, tc.code, tc.reason)
				}
			}
			if tc.check != nil {
				tc.check(t, e, err)
			}
		})
	}
}

// toSnake turns a codes.Code name ("ResourceExhausted") into the canonical "RESOURCE_EXHAUSTED" form.
func toSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mixedFaults are about 30 % transient faults: five kinds at 7 % each, 1-0.93^5 = 30.4 %.
var mixedFaults = emulator.Faults{RetCode5100: 0.07, RetCode5000: 0.07, HTTP502: 0.07, HTTP503: 0.07, ConnReset: 0.07}

// faultsInjected sums the injected faults.
func faultsInjected(emu *emulator.Emulator) int64 {
	var n int64
	for _, m := range emu.Stats().Faults {
		for _, v := range m {
			n += v
		}
	}
	return n
}

func TestReadsSucceedUnderMixedFaults(t *testing.T) {
	eo := quickJobs
	eo.Faults = mixedFaults
	s := newUpStack(t, eo, func(c *backend.Config) {
		c.MaxAttempts = 10 // 0.304^10 ≈ 7e-6: a read fails all attempts about once in 150,000
		c.DisableCoalescing = true
	})
	ctx := ctxT(t)
	inst := iaasv1.NewInstanceServiceClient(s.conn)
	const calls, workers = 200, 8
	var failed atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += workers {
				if _, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Offset: proto.Int32(int32(i))}); err != nil {
					failed.Add(1)
					t.Errorf("DescribeInstances %d under 30 %% faults: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	st := s.rec.Action("DescribeInstances")
	faults := faultsInjected(s.emu)
	t.Logf("%d reads, %d failed; %d upstream attempts, %d retries, %d faults injected", calls, failed.Load(), st.Attempts, st.Retries, faults)
	if faults < calls/10 || st.Retries < faults-5 {
		t.Errorf("%d faults injected, %d retries: the test did not exercise retries", faults, st.Retries)
	}
	if got := s.requests("DescribeInstances"); got != st.Attempts {
		t.Errorf("emulator saw %d requests, the backend counted %d attempts", got, st.Attempts)
	}
}

func TestMutationsUnderMixedFaultsNeverDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults emulator.Faults
	}{
		{"mixed 30 %", mixedFaults},
		// A truncated answer comes after the action ran: the caller sees an error, the instance exists.
		{"mixed with truncated answers", func() emulator.Faults { f := mixedFaults; f.TruncatedBody = 0.1; return f }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eo := quickJobs
			eo.Faults = tc.faults
			s := newUpStack(t, eo, func(c *backend.Config) { c.MaxAttempts = 10 })
			ctx := ctxT(t)
			inst := iaasv1.NewInstanceServiceClient(s.conn)
			const n = 60
			ok, applied := 0, 0
			for i := range n {
				_, err := inst.RunInstances(ctx, runRequest(1))
				switch {
				case err == nil:
					ok++
				case qcerr.MayHaveApplied(err):
					applied++
					if c := status.Code(err); c != codes.Unavailable && c != codes.Internal {
						t.Errorf("call %d: %v", i, err)
					}
				default:
					t.Errorf("call %d: an error that does not say whether it applied: %v", i, err)
				}
			}
			created, sent := s.instances(), s.requests("RunInstances")
			t.Logf("%d RunInstances: %d succeeded, %d may have applied; upstream saw %d, %d instances exist", n, ok, applied, sent, created)
			if sent != n {
				t.Errorf("upstream saw %d RunInstances for %d calls: a mutation was repeated", sent, n)
			}
			if created > n || created < ok {
				t.Errorf("%d instances for %d calls of which %d succeeded", created, n, ok)
			}
			if ok == n {
				t.Error("no call failed: the faults did not fire")
			}
		})
	}
}

func TestBudgetFloodRefusedLocally(t *testing.T) {
	// QingCloud (the emulator) allows 20 requests per minute; so does the facade's budget.
	eo := quickJobs
	eo.Quota, eo.QuotaWindow = 20, time.Minute
	// The budget's clock stands still: a refusal cannot be waited out, so a call refused RESOURCE_EXHAUSTED
	// (rather than running into its 20s deadline) was refused at once, and every RetryInfo is exact.
	frozen := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const slack = time.Second
	b, err := budget.New(budget.Config{Limit: 20, Window: time.Minute, Slack: slack, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	s := newUpStack(t, eo, func(c *backend.Config) { c.Budget = b })
	ctx := ctxT(t)
	inst := iaasv1.NewInstanceServiceClient(s.conn)

	// A flood of 10x the budget, concurrent, over gRPC and REST.
	const flood = 200
	var ok, refused, restRefused atomic.Int32
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%4 == 0 {
				code, body := restCall(t, "GET", fmt.Sprintf("%s/v1/iaas/DescribeInstances?offset=%d", s.rest, i), "")
				switch st, reason := restError(t, body); {
				case code == 200:
					ok.Add(1)
				case code == http.StatusTooManyRequests && st == "RESOURCE_EXHAUSTED" && reason == qcerr.ReasonBudgetExhausted:
					restRefused.Add(1)
				default:
					t.Errorf("REST: HTTP %d %v", code, body)
				}
				return
			}
			_, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Offset: proto.Int32(int32(i))})
			if err == nil {
				ok.Add(1)
				return
			}
			info, retry, quota := errDetails(t, err)
			switch {
			case status.Code(err) != codes.ResourceExhausted || info.GetReason() != qcerr.ReasonBudgetExhausted:
				t.Errorf("got %v, want a budget refusal", err)
			case retry.GetRetryDelay().AsDuration() != time.Minute+slack:
				// Every slot was taken at the same (frozen) instant: the first frees a window and the slack later.
				t.Errorf("RetryInfo %v, want when within the minute (%v)", retry, time.Minute+slack)
			case quota == nil || quota.GetViolations()[0].GetSubject() != "api_requests/user":
				t.Errorf("QuotaFailure %v", quota)
			default:
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("flood of %d: %d ok, %d refused over gRPC, %d over REST; upstream ret codes %v", flood, ok.Load(), refused.Load(), restRefused.Load(), s.retCodes())
	// User calls may use 18 of the 20; 2 stay reserved for watch polling.
	if ok.Load() != 18 || refused.Load()+restRefused.Load() != flood-18 {
		t.Errorf("%d ok, %d refused; want 18 and %d", ok.Load(), refused.Load()+restRefused.Load(), flood-18)
	}
	if n := s.retCodes()[2500]; n != 0 {
		t.Errorf("upstream answered 2500 %d times: the budget let too much through", n)
	}
	if n := s.emu.Stats().TotalRequests; n != 18 {
		t.Errorf("upstream saw %d requests, want 18", n)
	}
	// Watch polling still has its reserved share.
	pctx := callclass.With(ctx, callclass.Poll)
	for i := range 2 {
		if _, err := s.be.Call(pctx, "DescribeJobs", map[string]string{"zone": "pek3a", "offset": fmt.Sprint(i)}, false); err != nil {
			t.Errorf("poll %d after a user flood: %v", i, err)
		}
	}
	if _, err := s.be.Call(pctx, "DescribeJobs", map[string]string{"zone": "pek3a"}, false); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a third poll: %v, want the budget spent", err)
	}
	if n := s.retCodes()[2500]; n != 0 {
		t.Errorf("upstream answered 2500 %d times", n)
	}
	st := b.Stats()
	if st.Remaining != 0 || st.Classes["user"].Refused != flood-18 || st.Classes["poll"].Used != 2 {
		t.Errorf("budget stats %+v", st)
	}
}

func TestCoalescingCutsUpstreamCalls(t *testing.T) {
	measure := func(t *testing.T, disable bool) (int64, int64) {
		eo := quickJobs
		eo.Faults = emulator.Faults{Latency: 50 * time.Millisecond}
		s := newUpStack(t, eo, func(c *backend.Config) { c.DisableCoalescing = disable })
		ctx := ctxT(t)
		inst := iaasv1.NewInstanceServiceClient(s.conn)
		const callers = 50
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Status: []string{"running"}, Verbose: proto.Int32(1)})
				if err != nil || resp.GetTotalCount() != 0 {
					t.Errorf("DescribeInstances: %v %v", resp, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		return s.requests("DescribeInstances"), s.rec.Action("DescribeInstances").Coalesced
	}
	upstream, saved := measure(t, false)
	without, _ := measure(t, true)
	t.Logf("50 concurrent identical DescribeInstances, 50 ms upstream latency: %d upstream calls with coalescing (%d saved), %d without", upstream, saved, without)
	if upstream > 3 || upstream+saved != 50 {
		t.Errorf("%d upstream calls, %d saved; want at most 3 and 50 in all", upstream, saved)
	}
	if without != 50 {
		t.Errorf("without coalescing %d upstream calls, want 50", without)
	}
}

func TestDefaultDeadline(t *testing.T) {
	eo := quickJobs
	eo.Faults = emulator.Faults{Latency: 400 * time.Millisecond}
	s := newUpStack(t, eo, func(c *backend.Config) { c.DefaultTimeout = 100 * time.Millisecond })
	inst := iaasv1.NewInstanceServiceClient(s.conn)

	// An upstream slower than any wait of this test: only the default deadline can end the call, and
	// it cannot end earlier than 100 ms (a lower bound, which load cannot break).
	s.emu.SetFaults(emulator.Faults{Latency: time.Hour})
	start := time.Now()
	_, err := inst.DescribeInstances(context.Background(), &iaasv1.DescribeInstancesRequest{})
	if d := time.Since(start); status.Code(err) != codes.DeadlineExceeded || d < 100*time.Millisecond {
		t.Errorf("a call without a deadline: %v after %v, want DEADLINE_EXCEEDED after the 100 ms default", err, d)
	}
	s.emu.SetFaults(eo.Faults)
	// The caller's deadline wins over the default, also over REST (Grpc-Timeout).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{}); err != nil {
		t.Errorf("with a 5 s deadline: %v", err)
	}
	req, _ := http.NewRequest("GET", s.rest+"/v1/iaas/DescribeZones", nil)
	req.Header.Set("Grpc-Timeout", "5S")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("REST with Grpc-Timeout 5S: HTTP %d", resp.StatusCode)
	}
	code, _ := restCall(t, "GET", s.rest+"/v1/iaas/DescribeZones", "")
	if code != http.StatusGatewayTimeout {
		t.Errorf("REST without a deadline: HTTP %d, want 504", code)
	}
}

// TestCallServiceUsesPolicy checks that raw calls by name follow the same rules: reads retried and
// coalesced, mutations not repeated.
func TestCallServiceUsesPolicy(t *testing.T) {
	eo := quickJobs
	eo.Faults = emulator.Faults{RetCode5100: 1, Actions: []string{"DescribeInstances", "RunInstances"}}
	s := newUpStack(t, eo, func(c *backend.Config) { c.MaxAttempts = 3 })
	ctx := ctxT(t)
	call := iaasv1.NewCallServiceClient(s.conn)
	params, _ := structpb.NewStruct(map[string]any{"image_id": "centos7x64d", "instance_type": "c1m1", "login_mode": "passwd", "login_passwd": "Passw0rd1"})
	if _, err := call.Call(ctx, &iaasv1.CallRequest{Action: "RunInstances", Params: params}); status.Code(err) != codes.Unavailable || !qcerr.MayHaveApplied(err) {
		t.Errorf("RunInstances: %v", err)
	}
	if _, err := call.Call(ctx, &iaasv1.CallRequest{Action: "DescribeInstances"}); status.Code(err) != codes.Unavailable {
		t.Errorf("DescribeInstances: %v", err)
	}
	if r, d := s.requests("RunInstances"), s.requests("DescribeInstances"); r != 1 || d != 3 {
		t.Errorf("RunInstances sent %d times (want 1), DescribeInstances %d (want 3)", r, d)
	}
}

package qcerr_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// details splits the details of a status error by type and checks there is exactly one ErrorInfo.
func details(t *testing.T, err error) (*status.Status, *errdetails.ErrorInfo, *errdetails.RetryInfo, *errdetails.QuotaFailure) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%v is not a status error", err)
	}
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	var quota *errdetails.QuotaFailure
	infos := 0
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
			infos++
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.QuotaFailure:
			quota = d
		default:
			t.Errorf("unexpected detail %T", d)
		}
	}
	if infos != 1 {
		t.Fatalf("%d ErrorInfo details, want exactly 1", infos)
	}
	if info.GetDomain() != qcerr.Domain {
		t.Errorf("domain = %q", info.GetDomain())
	}
	return st, info, retry, quota
}

func TestFromRetCode(t *testing.T) {
	tests := []struct {
		code      int
		msg       string
		want      codes.Code
		retryable bool
		retryInfo bool
	}{
		{1100, "ParameterError, parameter [image_id] is required", codes.InvalidArgument, false, false},
		{1101, "", codes.Unimplemented, false, false},
		{1200, "AuthFailure, signature not match", codes.Unauthenticated, false, false},
		{1300, "RequestExpired, time_stamp expired", codes.Unauthenticated, false, false},
		{1400, "PermissionDenied, resource [i-1] does not belong to you", codes.PermissionDenied, false, false},
		{1400, "PermissionDenied, can't handle this request", codes.PermissionDenied, false, false},
		{1400, "PermissionDenied, instance [i-2aypaijz] is not running， can not be stopped", codes.FailedPrecondition, false, false},
		{1400, "PermissionDenied, snapshot [ss-sdm7psjv] is not available, can not create volume from it", codes.FailedPrecondition, false, false},
		{1400, "PermissionDenied, instance [i-1] is [stopped], cannot restart", codes.FailedPrecondition, false, false},
		{1400, "PermissionDenied, resource [eip-5ywkioa5] lease info not ready yet, please try later", codes.Unavailable, true, true},
		{1400, "PermissionDenied, resource [ss-u90rxvl1] is [creating], please try later", codes.Unavailable, true, true},
		{1400, "PermissionDenied, resource [i-1] is [backup-creating]", codes.Unavailable, true, true},
		{1400, "PermissionDenied, the instance is busy, please try later", codes.Unavailable, true, true},
		{1500, "", codes.FailedPrecondition, false, false},
		{1510, "", codes.AlreadyExists, false, false},
		{1520, "", codes.InvalidArgument, false, false},
		{1600, "", codes.Unauthenticated, false, false},
		{1610, "", codes.Unauthenticated, false, false},
		{1620, "", codes.Unauthenticated, false, false},
		{1630, "", codes.FailedPrecondition, false, false},
		{1640, "", codes.ResourceExhausted, false, true},
		{1650, "", codes.FailedPrecondition, false, false},
		{1660, "", codes.Unauthenticated, false, false},
		{1661, "", codes.FailedPrecondition, false, false},
		{1662, "", codes.PermissionDenied, false, false},
		{2000, "", codes.Unauthenticated, false, false},
		{2100, "ResourceNotFound, resource [i-xxxx] not found", codes.NotFound, false, false},
		{2110, "", codes.AlreadyExists, false, false},
		{2200, "", codes.FailedPrecondition, false, false},
		{2300, "", codes.FailedPrecondition, false, false},
		{2400, "", codes.FailedPrecondition, false, false},
		{2500, "QuotaExceeded, instance quota [10] exceeded", codes.ResourceExhausted, false, false},
		{2500, "QuotaExceeded, API request quota of 2000 per 1h0m0s exceeded for access key [X], please try later", codes.ResourceExhausted, false, true},
		{3300, "", codes.Unimplemented, false, false},
		{4000, "", codes.FailedPrecondition, false, false},
		{4001, "", codes.FailedPrecondition, false, false},
		{4002, "", codes.FailedPrecondition, false, false},
		{4003, "", codes.FailedPrecondition, false, false},
		{4004, "", codes.FailedPrecondition, false, false},
		{4005, "", codes.FailedPrecondition, false, false},
		{5000, "InternalError", codes.Internal, true, true},
		{5100, "ServerBusy, please try later", codes.Unavailable, true, true},
		{5200, "", codes.ResourceExhausted, false, true},
		{5300, "", codes.Unavailable, true, true},
		{5400, "", codes.FailedPrecondition, false, false},
		{5500, "", codes.FailedPrecondition, false, false},
		{5600, "", codes.InvalidArgument, false, false},
		{8000, "", codes.InvalidArgument, false, false},
		{8001, "", codes.FailedPrecondition, false, false},
		{8002, "", codes.FailedPrecondition, false, false},
		{8003, "", codes.InvalidArgument, false, false},
		{8004, "", codes.FailedPrecondition, false, false},
		{9999, "something new", codes.Unknown, false, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.code, tc.msg), func(t *testing.T) {
			err := qcerr.FromRetCode("StopInstances", tc.code, tc.msg)
			st, info, retry, quota := details(t, err)
			if st.Code() != tc.want {
				t.Errorf("code = %v, want %v (message %q)", st.Code(), tc.want, st.Message())
			}
			if info.GetReason() != fmt.Sprintf("QINGCLOUD_%d", tc.code) {
				t.Errorf("reason = %q", info.GetReason())
			}
			md := info.GetMetadata()
			if md["action"] != "StopInstances" || md["ret_code"] != fmt.Sprint(tc.code) || md["message"] != tc.msg {
				t.Errorf("metadata = %v", md)
			}
			if !strings.Contains(st.Message(), "StopInstances") || !strings.Contains(st.Message(), fmt.Sprint(tc.code)) {
				t.Errorf("message %q does not name the action and ret_code", st.Message())
			}
			if tc.msg != "" && !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("message %q does not quote the upstream message", st.Message())
			}
			if got := qcerr.Retryable(tc.code, tc.msg); got != tc.retryable {
				t.Errorf("Retryable = %v, want %v", got, tc.retryable)
			}
			if (retry != nil) != tc.retryInfo {
				t.Errorf("RetryInfo = %v, want present=%v", retry, tc.retryInfo)
			}
			if retry != nil && retry.GetRetryDelay().AsDuration() <= 0 {
				t.Errorf("RetryInfo delay %v", retry.GetRetryDelay())
			}
			if (quota != nil) != (tc.code == 2500) {
				t.Errorf("QuotaFailure = %v", quota)
			}
			if n, ok := qcerr.RetCode(err); !ok || n != tc.code {
				t.Errorf("RetCode = %d, %v", n, ok)
			}
			if qcerr.MayHaveApplied(err) {
				t.Error("a QingCloud answer is definite, MayHaveApplied must be false")
			}
		})
	}
}

func TestQuotaSubjects(t *testing.T) {
	_, _, _, q := details(t, qcerr.FromRetCode("RunInstances", 2500, "QuotaExceeded, API request quota exceeded, please try later"))
	if q.GetViolations()[0].GetSubject() != "api_requests" {
		t.Errorf("rate quota subject %q", q.GetViolations()[0].GetSubject())
	}
	_, _, _, q = details(t, qcerr.FromRetCode("RunInstances", 2500, "QuotaExceeded, instance quota exceeded"))
	if q.GetViolations()[0].GetSubject() != "resources" {
		t.Errorf("resource quota subject %q", q.GetViolations()[0].GetSubject())
	}
}

func TestSanitize(t *testing.T) {
	msg := "bad\x00 thing at https://api.qingcloud.com/iaas/?access_key_id=X&signature=abc%3D and signature=zzz " + strings.Repeat("x", 2000)
	err := qcerr.FromRetCode("A", 5000, msg)
	st, info, _, _ := details(t, err)
	for _, s := range []string{st.Message(), info.GetMetadata()["message"]} {
		if strings.Contains(s, "signature=") || strings.Contains(s, "access_key_id=") || strings.Contains(s, "\x00") {
			t.Errorf("unsanitized: %q", s)
		}
		if len(s) > 800 {
			t.Errorf("not clipped: %d bytes", len(s))
		}
	}
	st, _, _, _ = details(t, qcerr.FromRetCode("A", 1400, "is it? yes, it is [creating]"))
	if !strings.Contains(st.Message(), "is it? yes") {
		t.Errorf("ordinary question mark redacted: %q", st.Message())
	}
}

func TestTransport(t *testing.T) {
	for _, applied := range []bool{false, true} {
		err := qcerr.Transport("RunInstances", "upstream answered HTTP 502", applied)
		st, info, retry, _ := details(t, err)
		if st.Code() != codes.Unavailable || info.GetReason() != "UPSTREAM_UNAVAILABLE" {
			t.Errorf("got %v %v", st.Code(), info.GetReason())
		}
		md := info.GetMetadata()
		if md["action"] != "RunInstances" || md["detail"] != "upstream answered HTTP 502" || md["may_have_applied"] != fmt.Sprint(applied) {
			t.Errorf("metadata %v", md)
		}
		if retry != nil {
			t.Error("Transport adds no RetryInfo: whether to retry depends on the action")
		}
		if qcerr.MayHaveApplied(err) != applied {
			t.Errorf("MayHaveApplied = %v", !applied)
		}
		if !strings.Contains(st.Message(), "HTTP 502") {
			t.Errorf("message %q", st.Message())
		}
		if _, ok := qcerr.RetCode(err); ok {
			t.Error("RetCode of a transport error")
		}
	}
}

func TestContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, info, _, _ := details(t, qcerr.Context("DescribeJobs", ctx.Err(), false))
	if st.Code() != codes.Canceled || info.GetReason() != "CANCELED" {
		t.Errorf("canceled: %v %v", st.Code(), info.GetReason())
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	err := qcerr.Context("RunInstances", ctx.Err(), true)
	st, info, _, _ = details(t, err)
	if st.Code() != codes.DeadlineExceeded || info.GetReason() != "DEADLINE_EXCEEDED" || !qcerr.MayHaveApplied(err) {
		t.Errorf("deadline: %v %v %v", st.Code(), info.GetReason(), info.GetMetadata())
	}
}

func TestInvalidRequest(t *testing.T) {
	st, info, _, _ := details(t, qcerr.InvalidRequest("GetMonitor", "parameter start_time: out of range"))
	if st.Code() != codes.InvalidArgument || info.GetReason() != "INVALID_REQUEST" || info.GetMetadata()["action"] != "GetMonitor" {
		t.Errorf("%v %v", st.Code(), info)
	}
}

func TestInfoOfOtherErrors(t *testing.T) {
	if qcerr.Info(fmt.Errorf("plain")) != nil || qcerr.Info(nil) != nil {
		t.Error("Info of a non-status error")
	}
	if qcerr.MayHaveApplied(status.Error(codes.Unavailable, "x")) {
		t.Error("MayHaveApplied without ErrorInfo")
	}
}

// documentedCodes are every ret_code of qingcloud-protocol.md §6.1.
var documentedCodes = []int{
	1100, 1101, 1200, 1300, 1400, 1500, 1510, 1520, 1600, 1610, 1620, 1630, 1640, 1650, 1660, 1661, 1662,
	2000, 2100, 2110, 2200, 2300, 2400, 2500, 3300,
	4000, 4001, 4002, 4003, 4004, 4005,
	5000, 5100, 5200, 5300, 5400, 5500, 5600,
	8000, 8001, 8002, 8003, 8004,
}

func TestEveryDocumentedCodeIsMapped(t *testing.T) {
	for _, code := range documentedCodes {
		st, info, _, _ := details(t, qcerr.FromRetCode("DescribeInstances", code, ""))
		if st.Code() == codes.Unknown || st.Code() == codes.OK {
			t.Errorf("ret_code %d maps to %v", code, st.Code())
		}
		if info.GetReason() != fmt.Sprintf("QINGCLOUD_%d", code) {
			t.Errorf("ret_code %d: reason %q", code, info.GetReason())
		}
		if strings.Contains(st.Message(), "unknown error") {
			t.Errorf("ret_code %d is described as unknown: %q", code, st.Message())
		}
	}
}

func TestFromMutationRetCode(t *testing.T) {
	for _, code := range documentedCodes {
		err := qcerr.FromMutationRetCode("RunInstances", code, "x")
		want := code == 5000 || code == 5100
		if qcerr.MayHaveApplied(err) != want || qcerr.AnswerMayHaveApplied(code) != want {
			t.Errorf("ret_code %d: MayHaveApplied = %v, want %v", code, qcerr.MayHaveApplied(err), want)
		}
		plain := qcerr.FromRetCode("RunInstances", code, "x")
		if status.Code(plain) != status.Code(err) {
			t.Errorf("ret_code %d: the mutation variant changes the code", code)
		}
		if want && !strings.Contains(status.Convert(err).Message(), "may have been applied") {
			t.Errorf("ret_code %d: message %q does not warn", code, status.Convert(err).Message())
		}
		if qcerr.MayHaveApplied(plain) {
			t.Errorf("ret_code %d: FromRetCode says may have applied", code)
		}
	}
}

func TestIsAPIRateLimit(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		want bool
	}{
		{2500, "QuotaExceeded, API request quota of 2000 per 1h0m0s exceeded for access key [X], please try later", true},
		{2500, "quota exceeded, please try later (injected fault)", true},
		{2500, "QuotaExceeded, instance quota [10] exceeded", false},
		{5100, "too many requests", false},
	} {
		if got := qcerr.IsAPIRateLimit(tc.code, tc.msg); got != tc.want {
			t.Errorf("IsAPIRateLimit(%d, %q) = %v", tc.code, tc.msg, got)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	if d, ok := qcerr.RetryDelay(qcerr.FromRetCode("A", 5100, "")); !ok || d != 2*time.Second {
		t.Errorf("5100: %v %v", d, ok)
	}
	if _, ok := qcerr.RetryDelay(qcerr.FromRetCode("A", 2100, "")); ok {
		t.Error("2100 has no RetryInfo")
	}
	if _, ok := qcerr.RetryDelay(fmt.Errorf("plain")); ok {
		t.Error("plain error")
	}
}

func TestBudgetExhausted(t *testing.T) {
	err := qcerr.BudgetExhausted("DescribeInstances", qcerr.Budget{
		Class: "user", ClassLimit: 18, Limit: 20, Window: time.Minute, RetryAfter: 12345 * time.Microsecond,
	})
	st, info, retry, quota := details(t, err)
	if st.Code() != codes.ResourceExhausted || info.GetReason() != qcerr.ReasonBudgetExhausted {
		t.Fatalf("%v %v", st.Code(), info.GetReason())
	}
	md := info.GetMetadata()
	if md["action"] != "DescribeInstances" || md["call_class"] != "user" || md["class_limit"] != "18" || md["limit"] != "20" ||
		md["window_seconds"] != "60" || md["retry_after_seconds"] != "0.012" {
		t.Errorf("metadata %v", md)
	}
	if retry.GetRetryDelay().AsDuration() != 12*time.Millisecond {
		t.Errorf("RetryInfo %v", retry)
	}
	if v := quota.GetViolations(); len(v) != 1 || v[0].GetSubject() != "api_requests/user" {
		t.Errorf("QuotaFailure %v", quota)
	}
	if _, ok := qcerr.RetCode(err); ok || qcerr.MayHaveApplied(err) {
		t.Error("a budget refusal is neither a QingCloud answer nor possibly applied")
	}
	if !strings.Contains(st.Message(), "18 QingCloud API requests per 1m0s") {
		t.Errorf("message %q", st.Message())
	}

	err = qcerr.BudgetExhausted("DescribeInstances", qcerr.Budget{Class: "poll", ClassLimit: 5, Limit: 20, Window: time.Minute,
		Attempts: 2, Last: qcerr.FromRetCode("DescribeInstances", 5100, "ServerBusy")})
	st, _, retry, _ = details(t, err)
	if !strings.Contains(st.Message(), "after 2 attempts") || !strings.Contains(st.Message(), "5100") || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("message %q retry %v", st.Message(), retry)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 8, "short"},
		{"exactly8", 8, "exactly8"},
		{"123456789", 8, "12345678...(9 bytes)"},
		{"ab\u00e9\u00e9", 3, "ab...(6 bytes)"}, // never cuts a rune in two
	} {
		if got := qcerr.Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

package qcerr_test

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// FuzzFromRetCode classifies arbitrary upstream messages: never a panic, never OK, always exactly one
// ErrorInfo with reason QINGCLOUD_<code>, and no signed query string carried into the message.
func FuzzFromRetCode(f *testing.F) {
	for _, s := range []struct {
		code int
		msg  string
	}{
		{1400, "PermissionDenied, resource [eip-5ywkioa5] lease info not ready yet, please try later"},
		{1400, "PermissionDenied, instance [i-2aypaijz] is not running， can not be stopped"},
		{1400, "PermissionDenied, resource [ss-u90rxvl1] is [creating], please try later"},
		{2500, "QuotaExceeded, api requests"},
		{5100, "ServerBusy"},
		{1200, "AuthFailure, see https://api.qingcloud.com/iaas/?access_key_id=K&signature=abc%2B"},
		{0, ""},
		{-1, "\x00\xff"},
	} {
		f.Add(s.code, s.msg)
	}
	f.Fuzz(func(t *testing.T, code int, msg string) {
		err := qcerr.FromRetCode("DescribeInstances", code, msg)
		st := status.Convert(err)
		if st.Code() == codes.OK {
			t.Fatalf("FromRetCode(%d, %q) is OK", code, msg)
		}
		var infos []*errdetails.ErrorInfo
		for _, d := range st.Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				infos = append(infos, ei)
			}
		}
		if len(infos) != 1 || !strings.HasPrefix(infos[0].GetReason(), "QINGCLOUD_") {
			t.Fatalf("FromRetCode(%d, %q): ErrorInfos %v, want exactly one QINGCLOUD_*", code, msg, infos)
		}
		if strings.Contains(st.Message(), "signature=") {
			t.Fatalf("message carries a signed query: %q", st.Message())
		}
		_ = qcerr.Retryable(code, msg)
	})
}

package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// TestCallerInputIsClippedInErrorsAndLogs: megabytes of caller input (an action name, a parameter
// name, an unknown field) come back, and are logged, as a short quote that says how long it was.
func TestCallerInputIsClippedInErrorsAndLogs(t *testing.T) {
	s := newObsStack(t, obsOptions{})
	const maxAnswer = 2 << 10
	huge := strings.Repeat("A", 3<<20)

	_, err := iaasv1.NewCallServiceClient(s.conn).Call(ctxT(t), &iaasv1.CallRequest{Action: huge})
	if status.Code(err) != codes.InvalidArgument || len(err.Error()) > maxAnswer || !strings.Contains(err.Error(), "(3145728 bytes)") {
		t.Errorf("a 3 MiB action name: %d-byte error %.300s, want INVALID_ARGUMENT under %d bytes saying how long the name was", len(err.Error()), err, maxAnswer)
	}
	params := &structpb.Struct{Fields: map[string]*structpb.Value{"Signature" + huge: structpb.NewStringValue("x")}}
	_, err = iaasv1.NewCallServiceClient(s.conn).Call(ctxT(t), &iaasv1.CallRequest{Action: "DescribeZones", Params: params})
	if st := status.Convert(err); len(err.Error()) > maxAnswer || len(st.Proto().String()) > maxAnswer {
		t.Errorf("a 3 MiB parameter name: %d-byte error (%d-byte status) %.300s", len(err.Error()), len(st.Proto().String()), err)
	}
	for _, body := range []string{
		`{"` + huge[:1<<20] + `":1}`,
		`{"action":"DescribeZones","zone":"` + huge[:1<<20] + `"}`,
	} {
		resp, b := s.do(t, "POST", "/v1/iaas:call", body, nil)
		if resp.StatusCode != 400 || len(b) > maxAnswer {
			t.Errorf("REST: HTTP %d with a %d-byte answer %.300s, want 400 under %d bytes", resp.StatusCode, len(b), b, maxAnswer)
		}
	}
	if logs := s.logs.String(); len(logs) > 32<<10 {
		t.Errorf("the calls logged %d bytes", len(logs))
	}
}

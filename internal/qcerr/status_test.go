package qcerr_test

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   codes.Code
		reason string
		msg    string
		meta   map[string]string
		extra  []proto.Message // the details after the ErrorInfo, in order
	}{
		{
			name: "no metadata", err: qcerr.New(codes.Unavailable, qcerr.ReasonShuttingDown, "server shutting down", nil),
			code: codes.Unavailable, reason: "SHUTTING_DOWN", msg: "server shutting down",
		},
		{
			name: "metadata", err: qcerr.New(codes.NotFound, "JOB_NOT_FOUND", "job j-1 not found", map[string]string{"job_id": "j-1"}),
			code: codes.NotFound, reason: "JOB_NOT_FOUND", msg: "job j-1 not found", meta: map[string]string{"job_id": "j-1"},
		},
		{
			name: "further details keep their order",
			err: qcerr.New(codes.ResourceExhausted, "R", "m", nil,
				&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)},
				&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s"}}}),
			code: codes.ResourceExhausted, reason: "R", msg: "m",
			extra: []proto.Message{
				&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)},
				&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s"}}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(tc.err)
			if st.Code() != tc.code || st.Message() != tc.msg {
				t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
			ds := st.Details()
			if len(ds) != 1+len(tc.extra) {
				t.Fatalf("%d details, want %d: %v", len(ds), 1+len(tc.extra), ds)
			}
			info, ok := ds[0].(*errdetails.ErrorInfo)
			if !ok {
				t.Fatalf("first detail is %T, want the ErrorInfo", ds[0])
			}
			want := &errdetails.ErrorInfo{Reason: tc.reason, Domain: qcerr.Domain, Metadata: tc.meta}
			if !proto.Equal(info, want) {
				t.Errorf("ErrorInfo = %v, want %v", info, want)
			}
			for i, e := range tc.extra {
				if !proto.Equal(ds[1+i].(proto.Message), e) {
					t.Errorf("detail %d = %v, want %v", 1+i, ds[1+i], e)
				}
			}
			if got := qcerr.Info(tc.err); !proto.Equal(got, want) {
				t.Errorf("Info = %v, want %v", got, want)
			}
		})
	}
}

func TestBadRequest(t *testing.T) {
	err := qcerr.BadRequest(qcerr.Violation("zone", "zone is required"), qcerr.Violation("image_id", "image_id is required"))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "invalid request: zone is required; image_id is required" {
		t.Errorf("status = %v %q", st.Code(), st.Message())
	}
	if info := qcerr.Info(err); info.GetReason() != qcerr.ReasonInvalidRequest || info.GetDomain() != qcerr.Domain {
		t.Errorf("ErrorInfo = %v", info)
	}
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if d, ok := d.(*errdetails.BadRequest); ok {
			br = d
		}
	}
	want := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "zone", Description: "zone is required"},
		{Field: "image_id", Description: "image_id is required"},
	}}
	if !proto.Equal(br, want) {
		t.Errorf("BadRequest = %v, want %v", br, want)
	}
}

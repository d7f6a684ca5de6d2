package server

import (
	"regexp"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// gatewayFieldError finds the field named by grpc-gateway's own request-decoding errors (JSON body or
// query parameters), which reach us as bare INVALID_ARGUMENT statuses.
var gatewayFieldError = []*regexp.Regexp{
	regexp.MustCompile(`invalid value for [\w.]+ field (\w+)`),
	regexp.MustCompile(`unknown field "([\w.]+)"`),
	regexp.MustCompile(`parsing field "([\w.]+)"`),
	regexp.MustCompile(`field "([\w.]+)"`),
}

// withErrorInfo returns st unchanged when it already carries an ErrorInfo (every error of ours does).
// Errors raised by grpc-gateway itself before the call reached gRPC (undecodable JSON, a query value of
// the wrong type, an unknown path) get one too, so REST clients always find a reason; a decoding error
// also gets a BadRequest naming the parameter.
func withErrorInfo(st *status.Status) *status.Status {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return st
		}
	}
	if st.Code() == codes.InvalidArgument {
		field := "body"
		for _, re := range gatewayFieldError {
			if m := re.FindStringSubmatch(st.Message()); m != nil {
				field = m[1]
				break
			}
		}
		msg := "invalid request: " + field + ": " + st.Message()
		if field == "body" {
			msg = "invalid request: the body is not a JSON object of the request's fields: " + st.Message()
		}
		out, err := status.New(codes.InvalidArgument, msg).WithDetails(
			&errdetails.ErrorInfo{Reason: "INVALID_REQUEST", Domain: qcerr.Domain},
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: st.Message()}}},
		)
		if err != nil {
			return st
		}
		return out
	}
	out, err := st.WithDetails(&errdetails.ErrorInfo{Reason: code.Code_name[int32(st.Code())], Domain: qcerr.Domain})
	if err != nil {
		return st
	}
	return out
}

package server

import (
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

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

// maxGatewayMessage bounds the part of a grpc-gateway error message kept in an answer.
const maxGatewayMessage = 256

// queryError finds the parameter named by an error of queryParser.
var queryError = regexp.MustCompile(`query parameter "([^"]*)"`)

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
	// The gateway's messages quote what the caller sent (names, values): clipped, so that a caller
	// cannot make the server answer or log megabytes.
	gm := qcerr.Clip(st.Message(), maxGatewayMessage)
	if st.Code() == codes.InvalidArgument && queryError.MatchString(gm) {
		// Our query parser's errors, one per parameter: "query parameter "limit" must be ...".
		var vs []*errdetails.BadRequest_FieldViolation
		for _, part := range strings.Split(gm, "; ") {
			if m := queryError.FindStringSubmatch(part); m != nil {
				vs = append(vs, qcerr.Violation(m[1], part))
			}
		}
		return status.Convert(qcerr.BadRequest(vs...))
	}
	if st.Code() == codes.InvalidArgument {
		field := "body"
		for _, re := range gatewayFieldError {
			if m := re.FindStringSubmatch(gm); m != nil {
				field = qcerr.Clip(m[1], qcerr.MaxEcho)
				break
			}
		}
		msg := "invalid request: " + field + ": " + gm
		if field == "body" {
			msg = "invalid request: the body is not a JSON object of the request's fields: " + gm
		}
		return qcerr.Status(codes.InvalidArgument, qcerr.ReasonInvalidRequest, msg, nil,
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{qcerr.Violation(field, gm)}})
	}
	var kept []protoadapt.MessageV1
	for _, d := range st.Details() {
		if m, ok := d.(protoadapt.MessageV1); ok {
			kept = append(kept, m)
		}
	}
	return qcerr.Status(st.Code(), code.Code_name[int32(st.Code())], gm, nil, kept...)
}

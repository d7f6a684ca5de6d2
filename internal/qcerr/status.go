package qcerr

import (
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// ReasonShuttingDown: the server is shutting down and refused or ended the call; retrying (on another
// instance) helps, unless the ErrorInfo says may_have_applied=true (a mutation canceled after it was
// sent): then check its result first.
const ReasonShuttingDown = "SHUTTING_DOWN"

// Status is the one builder of this service's status errors: code and msg, exactly one ErrorInfo
// (reason, [Domain], metadata; meta may be nil), then details in order (BadRequest, RetryInfo,
// QuotaFailure, ...). Every error the service makes goes through it, so every error carries the
// ErrorInfo AIP-193 asks for.
func Status(code codes.Code, reason, msg string, meta map[string]string, details ...protoadapt.MessageV1) *status.Status {
	st := status.New(code, msg)
	all := make([]protoadapt.MessageV1, 0, 1+len(details))
	all = append(all, &errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: meta})
	all = append(all, details...)
	withDetails, err := st.WithDetails(all...)
	if err != nil {
		// Only a detail that cannot be marshalled fails here; the code and message still stand.
		return st
	}
	return withDetails
}

// New is [Status] as an error.
func New(code codes.Code, reason, msg string, meta map[string]string, details ...protoadapt.MessageV1) error {
	return Status(code, reason, msg, meta, details...).Err()
}

// Violation names one bad field of a request and says what to fix.
func Violation(field, desc string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: desc}
}

// BadRequest is the error of a request refused before any upstream call: INVALID_ARGUMENT with the
// message "invalid request: " followed by the violations' descriptions, an ErrorInfo with reason
// [ReasonInvalidRequest], and a BadRequest detail listing each violation.
func BadRequest(violations ...*errdetails.BadRequest_FieldViolation) error {
	msgs := make([]string, len(violations))
	for i, v := range violations {
		msgs[i] = v.GetDescription()
	}
	return New(codes.InvalidArgument, ReasonInvalidRequest, "invalid request: "+strings.Join(msgs, "; "), nil,
		&errdetails.BadRequest{FieldViolations: violations})
}

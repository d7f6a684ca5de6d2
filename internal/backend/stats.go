package backend

import (
	"context"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// Observer is told what a Client does, as it happens, for metrics: package telemetry implements it
// (one per credential profile, labelled by the profile's name). The backend keeps no counters of its
// own. Methods are called concurrently, on the calls' goroutines, and must return at once.
type Observer interface {
	// ObserveCall reports a call that was asked of the Client and has finished; shared is set when
	// it used an identical concurrent call's upstream request (coalescing) instead of its own.
	ObserveCall(action string, class callclass.Class, shared bool)
	// ObserveRefusal reports a request (a call's first attempt or a retry) that the quota budget
	// refused, so it was never sent.
	ObserveRefusal(action string, class callclass.Class)
	// ObserveAttempt reports one upstream attempt and what came of it.
	ObserveAttempt(Attempt)
}

// Attempt is one upstream request of a call.
type Attempt struct {
	// Action is the QingCloud action, as the caller named it (unbounded for CallService: an observer
	// that makes labels of it must bound it).
	Action string
	// Class is the call class (user or poll).
	Class callclass.Class
	// Retry is set on every attempt of a call but the first.
	Retry bool
	// Outcome says what came of the attempt.
	Outcome Outcome
	// RetCode is QingCloud's ret_code: 0 with OutcomeOK, the error code with OutcomeAnswer.
	RetCode int
	// HTTPStatus is the status of the HTTP answer; 0 when none came.
	HTTPStatus int
	// Duration is the time from the start of the attempt until its answer was read (or it failed).
	Duration time.Duration
}

// Outcome classifies an attempt.
type Outcome int

const (
	// OutcomeOK: QingCloud answered ret_code 0.
	OutcomeOK Outcome = iota
	// OutcomeAnswer: QingCloud answered an error (ret_code ≠ 0).
	OutcomeAnswer
	// OutcomeTransportFailure: no usable QingCloud answer (connection, HTTP status, body).
	OutcomeTransportFailure
	// OutcomeCanceled: the caller's context ended (canceled or past its deadline).
	OutcomeCanceled
	// OutcomeLocal: the request could not be built (signing), so it was not sent.
	OutcomeLocal
)

var outcomeNames = [...]string{"ok", "error_answer", "transport_failure", "canceled", "local_failure"}

// String returns the outcome's metric label: ok, error_answer, transport_failure, canceled or
// local_failure.
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// exported maps the retry policy's outcome kinds to Outcome.
func (k outcomeKind) exported() Outcome {
	switch k {
	case outcomeOK:
		return OutcomeOK
	case outcomeAnswer:
		return OutcomeAnswer
	case outcomeContext:
		return OutcomeCanceled
	case outcomeLocal:
		return OutcomeLocal
	}
	return OutcomeTransportFailure
}

// observeAttempt reports attempt n (1 for the first) of a call.
func (c *Client) observeAttempt(action string, class callclass.Class, n int, o outcome, d time.Duration) {
	c.obs.ObserveAttempt(Attempt{
		Action: action, Class: class, Retry: n > 1, Outcome: o.kind.exported(), RetCode: o.retCode,
		HTTPStatus: o.httpStatus, Duration: d,
	})
}

// nopObserver is the Observer of a Client configured without one.
type nopObserver struct{}

func (nopObserver) ObserveCall(string, callclass.Class, bool) {}
func (nopObserver) ObserveRefusal(string, callclass.Class)    {}
func (nopObserver) ObserveAttempt(Attempt)                    {}

// actionKey is the context key of the action of an upstream request.
type actionKey struct{}

// ActionFrom returns the QingCloud action of an upstream request, from the request's context, which
// the Client sets on every attempt; "" for other requests. Tracing transports name spans by it
// without reading the (signed) query or body.
func ActionFrom(ctx context.Context) string {
	a, _ := ctx.Value(actionKey{}).(string)
	return a
}

// withAction returns ctx carrying the action of the requests made under it.
func withAction(ctx context.Context, action string) context.Context {
	return context.WithValue(ctx, actionKey{}, action)
}

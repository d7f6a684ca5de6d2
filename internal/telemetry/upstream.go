package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// Upstream returns the backend.Observer of one credential profile's upstream client (for
// backend.Config.Observer): its calls, coalesced calls, budget refusals and every attempt (by
// action, call class, HTTP status, ret_code and outcome, with its duration) are counted under the
// profile's name. b, when set, is the profile's quota budget, whose limit and remaining requests are
// read at every scrape; profiles that share an access key share its budget. The profile name is a
// label: never pass an access key id. On a nil Telemetry it returns nil (nothing is reported).
func (t *Telemetry) Upstream(profile string, b *budget.Budget) backend.Observer {
	if t == nil {
		return nil
	}
	if profile == "" {
		profile = "default"
	}
	if b != nil {
		t.budgets.add(profile, b)
	}
	return &upstreamObserver{profile: profile, m: t.metrics}
}

// upstreamObserver turns what a backend.Client reports into metrics. Action labels are bounded by
// ActionLabel, since CallService may name any action.
type upstreamObserver struct {
	profile string
	m       *metrics
}

// ObserveCall implements backend.Observer.
func (o *upstreamObserver) ObserveCall(action string, _ callclass.Class, shared bool) {
	a := ActionLabel(action)
	o.m.upCalls.WithLabelValues(o.profile, a).Inc()
	coalesced := o.m.upCoalesced.WithLabelValues(o.profile, a)
	if shared {
		coalesced.Inc()
	}
	// The per-action series start at 0 with the first call, so rates work from the start.
	o.m.upRetries.WithLabelValues(o.profile, a)
	o.m.upRefused.WithLabelValues(o.profile, a)
}

// ObserveRefusal implements backend.Observer.
func (o *upstreamObserver) ObserveRefusal(action string, _ callclass.Class) {
	o.m.upRefused.WithLabelValues(o.profile, ActionLabel(action)).Inc()
}

// ObserveAttempt implements backend.Observer.
func (o *upstreamObserver) ObserveAttempt(at backend.Attempt) {
	if at.Outcome == backend.OutcomeLocal {
		return // never sent
	}
	a, class := ActionLabel(at.Action), at.Class.String()
	code := "error"
	if at.HTTPStatus != 0 {
		code = codeLabel(at.HTTPStatus)
	}
	o.m.upRequests.WithLabelValues(o.profile, a, class, code).Inc()
	o.m.upSeconds.WithLabelValues(o.profile, a, class).Observe(at.Duration.Seconds())
	if at.Retry {
		o.m.upRetries.WithLabelValues(o.profile, a).Inc()
	}
	switch at.Outcome {
	case backend.OutcomeOK, backend.OutcomeAnswer:
		o.m.upRetCodes.WithLabelValues(o.profile, a, strconv.Itoa(at.RetCode)).Inc()
	case backend.OutcomeTransportFailure:
		o.m.upTransportFailures.WithLabelValues(o.profile, a, class).Inc()
	}
}

// HTTPClient returns a client for backend.Config.HTTPClient whose transport is Transport(nil).
func (t *Telemetry) HTTPClient() *http.Client {
	return &http.Client{Transport: t.Transport(nil)}
}

// Transport wraps base (nil: http.DefaultTransport; the server passes backend.NewTransport) for the
// upstream QingCloud client, for tracing:
// user calls, and poll calls that belong to a trace, get an OpenTelemetry client span named after
// the action (backend.ActionFrom), and the W3C traceparent header is sent upstream. The span records
// the URL without its query, because the query of a GET is the signed request (access key id,
// signature); error texts that would contain it are scrubbed. It counts nothing: the backend reports
// attempts to its Observer ([Telemetry.Upstream]).
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	traced := otelhttp.NewTransport(restoreQuery{next: base},
		otelhttp.WithTracerProvider(t.tp),
		// Only the trace context goes to QingCloud, never the caller-controlled W3C baggage.
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			return callclass.From(r.Context()) != callclass.Poll || trace.SpanContextFromContext(r.Context()).IsValid()
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if a := backend.ActionFrom(r.Context()); a != "" {
				return "QingCloud " + a
			}
			return "QingCloud " + r.Method
		}),
	)
	return hideQuery{next: traced}
}

// queryKey carries the signed query from hideQuery to restoreQuery, past the tracing layer.
type queryKey struct{}

// hideQuery takes the (signed) query off the URL the tracing transport inside it sees.
type hideQuery struct{ next http.RoundTripper }

func (h hideQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	query := r.URL.RawQuery
	stripped := r.WithContext(context.WithValue(r.Context(), queryKey{}, query))
	bare := *r.URL
	bare.RawQuery = ""
	bare.ForceQuery = false
	stripped.URL = &bare
	resp, err := h.next.RoundTrip(stripped)
	if err != nil {
		return nil, scrubError(err, query)
	}
	return resp, nil
}

// restoreQuery puts the query back under the tracing transport and tags the client span.
type restoreQuery struct{ next http.RoundTripper }

func (q restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		if a := backend.ActionFrom(r.Context()); a != "" {
			span.SetAttributes(attribute.String("qingcloud.action", a))
		}
	}
	query, _ := r.Context().Value(queryKey{}).(string)
	if query == "" {
		return q.next.RoundTrip(r)
	}
	full := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = query
	full.URL = &u
	return q.next.RoundTrip(full)
}

// scrubError hides the signed query in an error text; the error chain stays (errors.Is works).
func scrubError(err error, query string) error {
	msg := err.Error()
	scrubbed := msg
	if query != "" {
		scrubbed = strings.ReplaceAll(scrubbed, query, "[signed parameters]")
	}
	if i := strings.Index(scrubbed, "signature="); i >= 0 {
		scrubbed = scrubbed[:i] + "[redacted]"
	}
	if scrubbed == msg {
		return err
	}
	return &scrubbedError{msg: scrubbed, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

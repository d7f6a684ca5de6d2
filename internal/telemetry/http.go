package telemetry

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPHandler wraps h, the REST listener's handler, with
//   - an OpenTelemetry server span per request (W3C traceparent/tracestate extracted from the
//     request), except for the paths in untraced (e.g. /metrics, /healthz);
//   - a request id: the X-Request-Id header when it is sane (ValidRequestID), else a new one, set on
//     the request that h sees (so the gateway forwards it to gRPC) and on the response;
//   - the HTTP request counter, by method and status code;
//   - one debug log line per request on log (method, path without query, status, duration); nil
//     discards.
//
// When no span is recorded (Tracing is false) there is no otelhttp middleware: the caller's trace
// context and baggage are only taken from the request headers into its context, as for gRPC (see
// GRPCServerHandler), so that the trace still continues to QingCloud; that is the context otelhttp
// gives the request with a no-op tracer, without its per-request work (its metrics go to the global
// meter provider, which this process never sets).
//
// The wrapper passes http.Flusher through (NDJSON streams flush per message) and implements Unwrap
// for http.ResponseController.
func (t *Telemetry) HTTPHandler(h http.Handler, log *slog.Logger, untraced ...string) http.Handler {
	skip := map[string]bool{}
	for _, p := range untraced {
		skip[p] = true
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = WrapLogger(log)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pickRequestID(r.Header.Values(RequestIDHeader)...)
		ctx := WithCall(r.Context(), &Call{RequestID: id})
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(attribute.String("request_id", id))
		}
		r = withRequestID(r, ctx, id)
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		h.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		t.httpCounter(r.Method, code).Inc()
		if log.Enabled(ctx, slog.LevelDebug) { // the arguments would be boxed for nothing
			log.DebugContext(ctx, "http request", "http.method", r.Method, "http.path", r.URL.Path, "http.status", code, "duration", time.Since(start))
		}
	})
	if t.sdk == nil {
		return propagateHTTP(inner, t.prop, skip)
	}
	return otelhttp.NewHandler(inner, "http",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithFilter(func(r *http.Request) bool { return !skip[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

// withRequestID returns r with the context ctx and the request id id as its only X-Request-Id
// header. The request's header is not changed (a handler must not modify its request): when it
// does not already carry exactly id, the copy gets a copy of the header map with the id set.
func withRequestID(r *http.Request, ctx context.Context, id string) *http.Request {
	r2 := r.WithContext(ctx)
	if vs := r.Header[requestIDKey]; len(vs) != 1 || vs[0] != id {
		r2.Header = maps.Clone(r.Header)
		if r2.Header == nil {
			r2.Header = http.Header{}
		}
		r2.Header[requestIDKey] = []string{id}
	}
	return r2
}

// requestIDKey is RequestIDHeader in net/http's canonical form, its key in http.Header.
const requestIDKey = "X-Request-Id"

// propagateHTTP is HTTPHandler's tracing while no span is recorded: the caller's trace context and
// baggage, if the request carries any, go into the request's context (none for untraced paths).
func propagateHTTP(next http.Handler, prop propagation.TextMapPropagator, untraced map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !untraced[r.URL.Path] && carriesTraceContext(r.Header) {
			r = r.WithContext(prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		next.ServeHTTP(w, r)
	})
}

// carriesTraceContext reports whether h has one of the headers the propagator reads.
func carriesTraceContext(h http.Header) bool {
	for _, k := range propagatedHeaders {
		if len(h[k]) > 0 {
			return true
		}
	}
	return false
}

// propagatedHeaders are propagatedKeys in net/http's canonical form.
var propagatedHeaders = []string{"Traceparent", "Tracestate", "Baggage"}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

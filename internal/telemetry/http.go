package telemetry

import (
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
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
		r = r.Clone(ctx)
		r.Header.Set(RequestIDHeader, id)
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		h.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		t.metrics.httpRequests.WithLabelValues(httpMethodLabel(r.Method), codeLabel(code)).Inc()
		log.DebugContext(ctx, "http request", "http.method", r.Method, "http.path", r.URL.Path, "http.status", code, "duration", time.Since(start))
	})
	return otelhttp.NewHandler(inner, "http",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithFilter(func(r *http.Request) bool { return !skip[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

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

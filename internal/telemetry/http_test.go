package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestHTTPHandlerWithoutTracing: with tracing off the REST handler still continues the caller's
// trace (and baggage) in the request's context, except on untraced paths; the request id is set on
// the request the inner handler sees and on the answer, without changing the caller's request.
func TestHTTPHandlerWithoutTracing(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type seen struct {
		sc        trace.SpanContext
		team      string
		ids       []string
		recording bool
	}
	var got seen
	h := tel.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = seen{
			sc:        trace.SpanContextFromContext(r.Context()),
			team:      baggage.FromContext(r.Context()).Member("team").Value(),
			ids:       r.Header.Values(RequestIDHeader),
			recording: trace.SpanFromContext(r.Context()).IsRecording(),
		}
		if RequestID(r.Context()) != r.Header.Get(RequestIDHeader) {
			t.Errorf("the context's request id %q is not the header's %q", RequestID(r.Context()), r.Header.Get(RequestIDHeader))
		}
		w.WriteHeader(http.StatusTeapot)
	}), nil, "/metrics")

	for _, tc := range []struct {
		name      string
		path      string
		header    map[string]string
		wantTrace string // "" means no span context
		wantBag   string
		wantID    string // "" means a new one
	}{
		{"traceparent and baggage", "/v1/x", map[string]string{"traceparent": tp, "baggage": "team=a"}, "4bf92f3577b34da6a3ce929d0e0e4736", "a", ""},
		{"baggage only", "/v1/x", map[string]string{"baggage": "team=b"}, "", "b", ""},
		{"no trace context, a sane id", "/v1/x", map[string]string{"X-Request-Id": "client-1"}, "", "", "client-1"},
		{"malformed traceparent, a bad id", "/v1/x", map[string]string{"traceparent": "00-zz", "X-Request-Id": "bad id\x01"}, "", "", ""},
		{"untraced path", "/metrics", map[string]string{"traceparent": tp, "baggage": "team=a"}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			before := req.Header.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusTeapot {
				t.Errorf("status %d", rec.Code)
			}
			switch {
			case tc.wantTrace == "" && got.sc.IsValid():
				t.Errorf("span context %v, want none", got.sc)
			case tc.wantTrace != "" && (got.sc.TraceID().String() != tc.wantTrace || got.sc.SpanID().String() != "00f067aa0ba902b7" || !got.sc.IsRemote() || !got.sc.IsSampled()):
				t.Errorf("span context %v, want the caller's %s", got.sc, tp)
			}
			if got.team != tc.wantBag {
				t.Errorf("baggage team=%q, want %q", got.team, tc.wantBag)
			}
			if got.recording {
				t.Error("a span is recording with tracing off")
			}
			answer := rec.Header().Values(RequestIDHeader)
			if len(got.ids) != 1 || len(answer) != 1 || got.ids[0] != answer[0] || !ValidRequestID(answer[0]) {
				t.Fatalf("request ids: the handler saw %q, the answer has %q", got.ids, answer)
			}
			if tc.wantID != "" && answer[0] != tc.wantID {
				t.Errorf("request id %q, want the caller's %q", answer[0], tc.wantID)
			}
			if len(req.Header) != len(before) || req.Header.Get(RequestIDHeader) != before.Get(RequestIDHeader) {
				t.Errorf("the caller's request header changed: %v, was %v", req.Header, before)
			}
		})
	}

	// With tracing on, the request gets a recorded server span that continues the caller's trace.
	spans := tracetest.NewSpanRecorder()
	traced, err := New(context.Background(), Options{SpanProcessors: []sdktrace.SpanProcessor{spans}})
	if err != nil {
		t.Fatal(err)
	}
	var sc trace.SpanContext
	var recording bool
	th := traced.HTTPHandler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sc, recording = trace.SpanContextFromContext(r.Context()), trace.SpanFromContext(r.Context()).IsRecording()
	}), nil)
	req := httptest.NewRequest("GET", "/v1/x", nil)
	req.Header.Set("traceparent", tp)
	th.ServeHTTP(httptest.NewRecorder(), req)
	if !recording || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() == "00f067aa0ba902b7" {
		t.Errorf("with tracing on: span context %v (recording %v), want a new span of the caller's trace", sc, recording)
	}
	if n := len(spans.Ended()); n != 1 {
		t.Errorf("%d spans ended, want 1", n)
	}
}

// TestHTTPRequestsCounted: every request counts once under its method (unknown ones as "other") and
// status code, the first and the following ones alike.
func TestHTTPRequestsCounted(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}), nil)
	for _, req := range []struct{ method, path string }{
		{"GET", "/a"}, {"GET", "/b"}, {"GET", "/a"}, {"POST", "/missing"}, {"BREW", "/a"}, {"GET", "/missing"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	for _, want := range []struct {
		method, code string
		n            float64
	}{{"GET", "200", 3}, {"POST", "404", 1}, {"other", "200", 1}, {"GET", "404", 1}} {
		if got := testutil.ToFloat64(tel.metrics.httpRequests.WithLabelValues(want.method, want.code)); got != want.n {
			t.Errorf("%s %s: %v requests, want %v", want.method, want.code, got, want.n)
		}
	}
	if n := testutil.CollectAndCount(tel.metrics.httpRequests); n != 4 {
		t.Errorf("%d series, want 4", n)
	}
}

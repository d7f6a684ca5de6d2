package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc-123":                        true,
		"0f8e2a9c-1d3b-4c5e-8f7a-123456": true,
		"a/b+c=d@e:f_g.h":                true,
		"":                               false,
		"has space":                      false,
		"quote\"":                        false,
		"new\nline":                      false,
		strings.Repeat("a", 128):         true,
		strings.Repeat("a", 129):         false,
	} {
		if got := ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
	id := NewRequestID()
	if len(id) != 32 || !ValidRequestID(id) || id == NewRequestID() {
		t.Fatalf("NewRequestID() = %q: want 32 fresh hex digits", id)
	}
}

func TestScrubError(t *testing.T) {
	base := io.ErrUnexpectedEOF
	q := "access_key_id=AK&action=X&signature=SIG"
	err := scrubError(&wrapErr{"GET /iaas/?" + q + ": boom", base}, q)
	if strings.Contains(err.Error(), "SIG") || strings.Contains(err.Error(), "AK") || !errors.Is(err, base) {
		t.Fatalf("scrubError = %v (Is %v)", err, errors.Is(err, base))
	}
	err = scrubError(&wrapErr{"x signature=SIG&y", base}, "")
	if strings.Contains(err.Error(), "SIG") {
		t.Fatalf("scrubError without query = %v", err)
	}
	if err := scrubError(base, q); err != base {
		t.Fatalf("scrubError changed a clean error: %v", err)
	}
}

type wrapErr struct {
	msg string
	err error
}

func (e *wrapErr) Error() string { return e.msg }
func (e *wrapErr) Unwrap() error { return e.err }

// upstreamServer answers every request with body, as QingCloud would; it records the last query and
// traceparent header.
type upstreamServer struct {
	srv                        *httptest.Server
	mu                         sync.Mutex
	lastQuery, lastTraceparent string
}

func newUpstreamServer(t *testing.T, status int, body string) *upstreamServer {
	u := &upstreamServer{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.lastQuery, u.lastTraceparent = r.URL.RawQuery, r.Header.Get("traceparent")
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// newBackend is a client of endpoint traced by tel, reporting to obs, spending b (nil: unlimited).
func newBackend(t *testing.T, tel *Telemetry, endpoint string, obs backend.Observer, b *budget.Budget) *backend.Client {
	if b == nil {
		b = budget.Unlimited()
	}
	c, err := backend.New(backend.Config{
		Endpoint:    endpoint + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"},
		HTTPClient:  tel.HTTPClient(),
		Budget:      b,
		Observer:    obs,
		MaxAttempts: 2,
		// Quick retries.
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTransportTracesWithoutTheSignedQuery(t *testing.T) {
	up := newUpstreamServer(t, 200, `{"action":"DescribeZonesResponse","ret_code":0}`)
	rec := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	c := newBackend(t, tel, up.srv.URL, tel.Upstream("default", nil), nil)
	ctx, parent := tel.TracerProvider().Tracer("test").Start(context.Background(), "parent")
	if _, err := c.Call(ctx, "DescribeZones", nil, false); err != nil {
		t.Fatal(err)
	}
	parent.End()

	up.mu.Lock()
	query, traceparent := up.lastQuery, up.lastTraceparent
	up.mu.Unlock()
	if !strings.Contains(query, "signature=") || !strings.Contains(query, "access_key_id=AKID") {
		t.Fatalf("upstream got query %q: the transport lost it", query)
	}
	var client0 sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client0 = s
		}
	}
	if client0 == nil {
		t.Fatalf("no client span among %d", len(rec.Ended()))
	}
	if client0.Name() != "QingCloud DescribeZones" {
		t.Errorf("client span name %q", client0.Name())
	}
	for _, a := range client0.Attributes() {
		if v := a.Value.Emit(); strings.Contains(v, "signature") || strings.Contains(v, "AKID") {
			t.Errorf("span attribute %s = %q reveals the signed query", a.Key, v)
		}
	}
	if want := client0.SpanContext().SpanID().String(); !strings.Contains(traceparent, want) {
		t.Errorf("upstream traceparent %q, want span id %s", traceparent, want)
	}

	// A poll call outside any trace gets no span.
	n := len(rec.Ended())
	if _, err := c.Call(callclass.With(context.Background(), callclass.Poll), "DescribeJobs", nil, false); err != nil {
		t.Fatal(err)
	}
	if len(rec.Ended()) != n {
		t.Errorf("a poll call outside a trace was traced")
	}
}

// TestUpstreamMetrics: what the backend reports becomes metrics labelled by profile, with actions
// outside the typed API counted as "other".
func TestUpstreamMetrics(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := newUpstreamServer(t, 200, `{"action":"DescribeZonesResponse","ret_code":0}`)
	busy := newUpstreamServer(t, 200, `{"ret_code":5100,"message":"ServerBusy"}`)
	broken := newUpstreamServer(t, 502, `<html>bad gateway</html>`)
	b, err := budget.New(budget.Config{Limit: 1000, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	obs := tel.Upstream("team-a", b)
	ctx := context.Background()
	c := newBackend(t, tel, ok.srv.URL, obs, b)
	for range 3 {
		if _, err := c.Call(ctx, "DescribeZones", nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Call(callclass.With(ctx, callclass.Poll), "DescribeJobs", nil, false); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Call(ctx, fmt.Sprintf("DescribeNoSuchThing%d", i), nil, false); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = newBackend(t, tel, busy.srv.URL, obs, b).Call(ctx, "DescribeInstances", nil, false) // 2 attempts
	_, _ = newBackend(t, tel, broken.srv.URL, obs, b).Call(ctx, "DescribeVolumes", nil, false) // 2 attempts

	m := tel.metrics
	for _, tc := range []struct {
		name string
		got  prometheus.Collector
		want float64
	}{
		{"requests DescribeZones 200", m.upRequests.WithLabelValues("team-a", "DescribeZones", "user", "200"), 3},
		{"requests DescribeJobs poll", m.upRequests.WithLabelValues("team-a", "DescribeJobs", "poll", "200"), 1},
		{"requests other", m.upRequests.WithLabelValues("team-a", OtherAction, "user", "200"), 3},
		{"requests DescribeVolumes 502", m.upRequests.WithLabelValues("team-a", "DescribeVolumes", "user", "502"), 2},
		{"ret_code 0", m.upRetCodes.WithLabelValues("team-a", "DescribeZones", "0"), 3},
		{"ret_code 5100", m.upRetCodes.WithLabelValues("team-a", "DescribeInstances", "5100"), 2},
		{"transport failures", m.upTransportFailures.WithLabelValues("team-a", "DescribeVolumes", "user"), 2},
		{"no transport failure", m.upTransportFailures.WithLabelValues("team-a", "DescribeZones", "user"), 0},
		{"calls", m.upCalls.WithLabelValues("team-a", "DescribeZones"), 3},
		{"calls other", m.upCalls.WithLabelValues("team-a", OtherAction), 3},
		{"retries", m.upRetries.WithLabelValues("team-a", "DescribeInstances"), 1},
	} {
		if got := testutil.ToFloat64(tc.got); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.upSeconds); n != 5 { // DescribeZones, DescribeJobs, other, DescribeInstances, DescribeVolumes
		t.Errorf("%d duration series, want 5", n)
	}

	// The budget is read at scrape time, under the profile's name.
	want := `
# HELP qingcloud_quota_budget_limit Requests allowed per quota budget window.
# TYPE qingcloud_quota_budget_limit gauge
qingcloud_quota_budget_limit{profile="team-a"} 1000
`
	if err := testutil.GatherAndCompare(tel.Registry(), strings.NewReader(want), MetricBudgetLimit); err != nil {
		t.Fatal(err)
	}
	if v := b.Stats().Remaining; v != 1000-11 {
		t.Errorf("budget remaining %d, want %d (11 attempts)", v, 1000-11)
	}
}

// TestBudgetRefusalsAndCoalescing: the calls the budget refused and those that shared another
// call's request are counted per action.
func TestBudgetRefusalsAndCoalescing(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstreamServer(t, 200, `{"action":"DescribeZonesResponse","ret_code":0}`)
	b, err := budget.New(budget.Config{Limit: 1, Window: time.Hour, PollReserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	c := newBackend(t, tel, up.srv.URL, tel.Upstream("", b), b)
	_, _ = c.Call(context.Background(), "DescribeZones", nil, false)
	_, err = c.Call(context.Background(), "DescribeZones", nil, false)
	if err == nil {
		t.Fatal("a second call within a budget of 1 was not refused")
	}
	m := tel.metrics
	if got := testutil.ToFloat64(m.upRefused.WithLabelValues("default", "DescribeZones")); got != 1 {
		t.Errorf("refused = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.upCoalesced.WithLabelValues("default", "DescribeZones")); got != 0 {
		t.Errorf("coalesced = %v, want 0", got)
	}
	var nilTel *Telemetry
	if nilTel.Upstream("x", nil) != nil {
		t.Error("a nil Telemetry returned an observer")
	}
}

func TestLogHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := WrapLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	if WrapLogger(log) != log {
		t.Fatal("wrapping twice wraps again")
	}
	ctx := WithCall(context.Background(), &Call{RequestID: "rid-1"})
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx = trace.ContextWithSpanContext(ctx, sc)
	log.With("component", "x").InfoContext(ctx, "hello")
	for _, want := range []string{`"request_id":"rid-1"`, `"trace_id":"01000000000000000000000000000000"`, `"span_id":"0200000000000000"`, `"component":"x"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %s lacks %s", buf.String(), want)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(context.Background(), Options{Exporter: "zipkin"}); err == nil || !strings.Contains(err.Error(), "zipkin") {
		t.Fatalf("exporter zipkin: %v", err)
	}
	if _, err := New(context.Background(), Options{Exporter: "stdout", SampleRatio: 2, Stdout: io.Discard}); err == nil {
		t.Fatal("sample ratio 2 accepted")
	}
	var out bytes.Buffer
	tel, err := New(context.Background(), Options{Exporter: "stdout", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider().Tracer("t").Start(context.Background(), "op")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Name":"op"`) {
		t.Fatalf("stdout exporter wrote %q", out.String())
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	// The OTLP exporter connects lazily: building it needs no collector.
	otlp, err := New(context.Background(), Options{Exporter: "otlp", OTLPEndpoint: "127.0.0.1:1", OTLPInsecure: true})
	if err != nil {
		t.Fatalf("otlp exporter: %v", err)
	}
	if !otlp.Tracing() {
		t.Fatal("otlp exporter: tracing is off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = otlp.Shutdown(ctx) // nothing to flush; the unreachable collector must not hang it
}

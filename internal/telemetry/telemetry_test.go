package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

func TestRetCodeMatcher(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"action":"DescribeZonesResponse","zone_set":[],"ret_code":0}`, "0"},
		{`{"ret_code":2100,"message":"ResourceNotFound"}`, "2100"},
		{`{"ret_code" :  "1200" }`, "1200"},
		{`{"ret_code":-1}`, "-1"},
		{`{"message":"no code"}`, ""},
		{`{"x":"\"ret_code\":5","ret_code":5000}`, "5000"},
		{`{""ret_code":7}`, "7"},
		{`{"ret_code":}`, ""},
		{`{"ret_code":12`, "12"},
		{`{"ret_code":1234567890123}`, ""},
		{`<html>502</html>`, ""},
	} {
		// Every split point: the matcher must not depend on how the body is chunked.
		for cut := 0; cut <= len(tc.body); cut++ {
			var m retCodeMatcher
			m.feed([]byte(tc.body[:cut]))
			m.feed([]byte(tc.body[cut:]))
			if got := m.result(); got != tc.want {
				t.Fatalf("%s cut at %d: ret_code %q, want %q", tc.body, cut, got, tc.want)
			}
		}
	}
}

func TestActionParam(t *testing.T) {
	for q, want := range map[string]string{
		"access_key_id=X&action=DescribeInstances&signature=abc": "DescribeInstances",
		"action=RunInstances":               "RunInstances",
		"xaction=Foo&action=Bar":            "Bar",
		"action=describe":                   "",
		"action=Foo%20Bar":                  "",
		"action=" + strings.Repeat("A", 81): "",
		"zone=pek3a":                        "",
		"":                                  "",
	} {
		if got := actionParam(q); got != want {
			t.Errorf("actionParam(%q) = %q, want %q", q, got, want)
		}
	}
}

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

func TestTransportHidesQueryFromSpansAndCounts(t *testing.T) {
	var gotQuery, gotTraceparent string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotTraceparent = r.URL.RawQuery, r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"action":"DescribeZonesResponse","ret_code":0}`)
	}))
	defer up.Close()
	rec := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), Options{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	client := tel.HTTPClient()
	ctx, parent := tel.TracerProvider().Tracer("test").Start(context.Background(), "parent")
	req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/iaas/?access_key_id=AKID&action=DescribeZones&signature=SIGVALUE", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(iotest.OneByteReader(resp.Body))
	resp.Body.Close()
	parent.End()

	if !strings.Contains(gotQuery, "signature=SIGVALUE") {
		t.Fatalf("upstream got query %q: the transport lost it", gotQuery)
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
		if v := a.Value.Emit(); strings.Contains(v, "SIGVALUE") || strings.Contains(v, "AKID") {
			t.Errorf("span attribute %s = %q reveals the signed query", a.Key, v)
		}
	}
	if want := client0.SpanContext().SpanID().String(); !strings.Contains(gotTraceparent, want) {
		t.Errorf("upstream traceparent %q, want span id %s", gotTraceparent, want)
	}
	if got := testutil.ToFloat64(tel.metrics.upRetCodes.WithLabelValues("DescribeZones", "0")); got != 1 {
		t.Errorf("ret_code 0 counted %v times", got)
	}
	if got := testutil.ToFloat64(tel.metrics.upRequests.WithLabelValues("DescribeZones", "user", "200")); got != 1 {
		t.Errorf("requests counted %v times", got)
	}

	// A poll call outside any trace gets no span, but is counted; a POST's action comes from its form.
	n := len(rec.Ended())
	pctx := callclass.With(context.Background(), callclass.Poll)
	req, _ = http.NewRequestWithContext(pctx, "POST", up.URL+"/iaas/", strings.NewReader("action=DescribeJobs&signature=S"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(rec.Ended()) != n {
		t.Errorf("a poll call outside a trace was traced")
	}
	if got := testutil.ToFloat64(tel.metrics.upRequests.WithLabelValues("DescribeJobs", "poll", "200")); got != 1 {
		t.Errorf("poll request counted %v times", got)
	}
}

func TestStatsCollector(t *testing.T) {
	c := &StatsCollector{
		Upstream: func() []UpstreamStats {
			return []UpstreamStats{{
				Actions: map[string]UpstreamActionStats{
					"DescribeInstances": {Calls: 10, Retries: 2, Coalesced: 3, Refused: 1},
					"NoSuchAction1":     {Calls: 1},
					"NoSuchAction2":     {Calls: 2},
				},
				Budget: &BudgetStats{Limit: 2000, Remaining: 1990, Classes: map[string]BudgetClassStats{"user": {Remaining: 1500, Refused: 4}, "poll": {Remaining: 490}, "evil": {}}},
			}}
		},
		Watch: func() WatchStats { return WatchStats{Watches: 5, Pollers: 2, Jobs: 7, Calls: 40, Saved: 60} },
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP qingcloud_upstream_calls_total Calls asked of the upstream client, before coalescing, retries and the quota budget.
# TYPE qingcloud_upstream_calls_total counter
qingcloud_upstream_calls_total{action="DescribeInstances",profile="default"} 10
qingcloud_upstream_calls_total{action="other",profile="default"} 3
# HELP qingcloud_quota_budget_class_remaining Requests of a call class (user, poll) the quota budget would admit now.
# TYPE qingcloud_quota_budget_class_remaining gauge
qingcloud_quota_budget_class_remaining{class="poll",profile="default"} 490
qingcloud_quota_budget_class_remaining{class="user",profile="default"} 1500
# HELP qingcloud_watch_streams Open watch streams (WatchService).
# TYPE qingcloud_watch_streams gauge
qingcloud_watch_streams 5
# HELP qingcloud_watch_upstream_calls_saved_total Upstream calls saved by batching watched ids into shared polls.
# TYPE qingcloud_watch_upstream_calls_saved_total counter
qingcloud_watch_upstream_calls_saved_total 60
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricUpstreamCalls, MetricBudgetClassLeft, MetricWatchStreams, MetricWatchSaved); err != nil {
		t.Fatal(err)
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

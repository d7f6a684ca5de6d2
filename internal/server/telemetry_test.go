package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// upstreamRequest is what the emulator was sent.
type upstreamRequest struct {
	action, traceparent, baggage, signature, accessKeyID string
}

// observedUpstream wraps the emulator and records each request's trace header and signature.
type observedUpstream struct {
	next http.Handler
	mu   sync.Mutex
	reqs []upstreamRequest
}

func (o *observedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		params, _ = url.ParseQuery(string(b))
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, upstreamRequest{
		action: params.Get("action"), traceparent: r.Header.Get("traceparent"), baggage: r.Header.Get("baggage"),
		signature: params.Get("signature"), accessKeyID: params.Get("access_key_id"),
	})
	o.mu.Unlock()
	o.next.ServeHTTP(w, r)
}

func (o *observedUpstream) requests() []upstreamRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]upstreamRequest(nil), o.reqs...)
}

// obsOptions vary the observed stack.
type obsOptions struct {
	keys        map[string]string // emulator accounts; nil: the default pair
	accessKeyID string            // the backend's key; "" the emulator's default
	secret      string            // the backend's secret; "" the emulator's default
	jobPending  time.Duration
	unary       []grpc.UnaryServerInterceptor
	stream      []grpc.StreamServerInterceptor
	noTracing   bool // no span processor: tracing off, as in production without an exporter
}

// obsStack is a facade with telemetry wired as cmd/server wires it (one Telemetry for the server and
// the backend's transport, logs of every component in one buffer at debug level, a span recorder),
// in front of an emulator whose requests are recorded.
type obsStack struct {
	emu      *emulator.Emulator
	upstream *observedUpstream
	conn     *grpc.ClientConn
	rest     string
	restSrv  *httptest.Server
	srv      *server.Server
	tel      *telemetry.Telemetry
	spans    *tracetest.SpanRecorder
	logs     *testutil.SyncBuffer
	hub      *watch.Hub
}

func newObsStack(t *testing.T, o obsOptions) *obsStack {
	t.Helper()
	if o.jobPending == 0 {
		o.jobPending = 20 * time.Millisecond
	}
	if o.accessKeyID == "" {
		o.accessKeyID = emulator.DefaultAccessKeyID
	}
	if o.secret == "" {
		o.secret = emulator.DefaultSecretAccessKey
	}
	s := &obsStack{logs: &testutil.SyncBuffer{}, spans: tracetest.NewSpanRecorder()}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s.emu = emulator.New(emulator.Options{Keys: o.keys, JobPending: o.jobPending, JobWorking: 50 * time.Millisecond, Quota: -1})
	s.upstream = &observedUpstream{next: s.emu}
	up := httptest.NewServer(s.upstream)
	t.Cleanup(up.Close)

	var err error
	topts := telemetry.Options{SpanProcessors: []sdktrace.SpanProcessor{s.spans}}
	if o.noTracing {
		topts.SpanProcessors = nil
	}
	s.tel, err = telemetry.New(context.Background(), topts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.tel.Shutdown(context.Background()) })
	b, err := budget.New(budget.Config{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.New(backend.Config{
		Endpoint:    up.URL + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: o.accessKeyID, SecretAccessKey: o.secret},
		HTTPClient:  s.tel.HTTPClient(),
		Budget:      b,
		Observer:    s.tel.Upstream("default", b),
		Logger:      log.With("component", "backend"),
		// Quick retries, so that tests of failing reads stay fast.
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.hub = watch.NewSingle(be, "pek3a", watch.Options{MinInterval: 20 * time.Millisecond, Logger: log.With("component", "watch")})
	t.Cleanup(s.hub.Close)
	s.srv, err = server.New(server.Config{
		Tenants:            tenant.Single{Upstream: be, Zone: "pek3a"},
		Logger:             log.With("component", "grpc"),
		Telemetry:          s.tel,
		Watch:              s.hub,
		UnaryInterceptors:  o.unary,
		StreamInterceptors: o.stream,
		WatchStats:         s.hub.Stats,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.conn = testutil.ServeBufconn(t, s.srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := s.srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(h)
	t.Cleanup(rest.Close)
	s.rest, s.restSrv = rest.URL, rest
	return s
}

// quiesce waits until every call has finished (REST requests, gRPC calls, watches: the Hub is
// closed), so that their spans have ended and their log lines are written. The stack serves no more.
func (s *obsStack) quiesce() {
	s.hub.Close()
	s.restSrv.Close()
	s.srv.GRPC().GracefulStop()
}

// get performs a REST request and returns the response (body read) and the body.
func (s *obsStack) do(t *testing.T, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.rest+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// scrape returns the text of GET /metrics.
func (s *obsStack) scrape(t *testing.T) string {
	t.Helper()
	resp, body := s.do(t, "GET", "/metrics", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return body
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// metricValue finds the sample of name whose labels include want, in the text exposition format.
// It fails the test when several samples match.
func metricValue(t *testing.T, text, name string, want map[string]string) (float64, bool) {
	t.Helper()
	var found []float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			for _, m := range labelRE.FindAllStringSubmatch(rest[1:end], -1) {
				labels[m[1]] = m[2]
			}
			rest = rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer metric name
		}
		ok := true
		for k, v := range want {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		found = append(found, v)
	}
	if len(found) > 1 {
		t.Fatalf("%s%v matches %d samples", name, want, len(found))
	}
	if len(found) == 0 {
		return 0, false
	}
	return found[0], true
}

func wantMetric(t *testing.T, text, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := metricValue(t, text, name, labels)
	if !ok {
		t.Errorf("no sample %s%v", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetricsContent(t *testing.T) {
	s := newObsStack(t, obsOptions{jobPending: 5 * time.Second})
	ctx := ctxT(t)
	zones := iaasv1.NewZoneServiceClient(s.conn)
	for i := 0; i < 3; i++ {
		if _, err := zones.DescribeZones(ctx, &iaasv1.DescribeZonesRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	inst := iaasv1.NewInstanceServiceClient(s.conn)
	if _, err := inst.TerminateInstances(ctx, &iaasv1.TerminateInstancesRequest{Instances: []string{"i-doesnotx"}}); status.Code(err) != codes.NotFound {
		t.Fatalf("TerminateInstances of an unknown instance: %v", err)
	}
	if _, err := inst.RunInstances(ctx, &iaasv1.RunInstancesRequest{LoginMode: proto.String("passwd")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("RunInstances without image: %v", err)
	}
	call := iaasv1.NewCallServiceClient(s.conn)
	if _, err := call.Call(ctx, &iaasv1.CallRequest{Action: "DescribeZones", Params: &structpb.Struct{}}); err != nil {
		t.Fatalf("Call DescribeZones: %v", err)
	}
	_, _ = call.Call(ctx, &iaasv1.CallRequest{Action: "NoSuchActionAnywhere"})
	if resp, body := s.do(t, "GET", "/v1/iaas/DescribeInstances", "", nil); resp.StatusCode != 200 {
		t.Fatalf("REST DescribeInstances: %d %s", resp.StatusCode, body)
	}
	run, err := inst.RunInstances(ctx, &iaasv1.RunInstancesRequest{ImageId: proto.String("centos7x64d"), InstanceType: proto.String("c1m1"),
		LoginMode: proto.String("passwd"), LoginPasswd: proto.String("Passw0rd1"), Vxnets: []string{"vxnet-0"}, Count: proto.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	// A paginated stream sends one message per item; an open watch stream shows as active.
	all, err := inst.DescribeInstancesAll(ctx, &iaasv1.DescribeInstancesAllRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := all.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("DescribeInstancesAll: %v", err)
		}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := iaasv1.NewWatchServiceClient(s.conn).WatchJobs(wctx, &iaasv1.WatchJobsRequest{JobIds: []string{run.GetJobId()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("WatchJobs: %v", err)
	}

	m := s.scrape(t)
	handled := telemetry.MetricRPCHandled
	wantMetric(t, m, handled, map[string]string{"grpc_service": "qingcloud.iaas.v1.ZoneService", "grpc_method": "DescribeZones", "grpc_type": "unary", "action": "DescribeZones", "grpc_code": "OK"}, 3)
	wantMetric(t, m, handled, map[string]string{"grpc_method": "TerminateInstances", "action": "TerminateInstances", "grpc_code": "NotFound"}, 1)
	wantMetric(t, m, handled, map[string]string{"grpc_method": "RunInstances", "grpc_code": "InvalidArgument"}, 1)
	wantMetric(t, m, handled, map[string]string{"grpc_service": "qingcloud.iaas.v1.CallService", "action": "DescribeZones", "grpc_code": "OK"}, 1)
	wantMetric(t, m, handled, map[string]string{"grpc_service": "qingcloud.iaas.v1.CallService", "action": "other"}, 1)
	wantMetric(t, m, handled, map[string]string{"grpc_method": "DescribeInstances", "action": "DescribeInstances", "grpc_code": "OK"}, 1) // REST
	wantMetric(t, m, handled, map[string]string{"grpc_method": "DescribeInstancesAll", "grpc_type": "server_stream", "action": "DescribeInstances", "grpc_code": "OK"}, 1)
	wantMetric(t, m, telemetry.MetricRPCSeconds+"_count", map[string]string{"grpc_method": "DescribeZones", "action": "DescribeZones"}, 3)
	wantMetric(t, m, telemetry.MetricRPCInFlight, map[string]string{"grpc_service": "qingcloud.iaas.v1.WatchService", "grpc_method": "WatchJobs"}, 1)
	wantMetric(t, m, telemetry.MetricRPCMsgSent, map[string]string{"grpc_method": "DescribeInstancesAll"}, 2)
	if v, _ := metricValue(t, m, telemetry.MetricRPCMsgSent, map[string]string{"grpc_method": "WatchJobs"}); v < 1 {
		t.Errorf("WatchJobs sent %v messages, want at least 1", v)
	}
	wantMetric(t, m, telemetry.MetricHTTPRequests, map[string]string{"method": "GET", "code": "200"}, 1)

	// Upstream, per attempt: the invalid RunInstances never went upstream.
	wantMetric(t, m, telemetry.MetricUpstreamRequests, map[string]string{"action": "DescribeZones", "class": "user", "code": "200"}, 4)
	wantMetric(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "DescribeZones", "ret_code": "0"}, 4)
	wantMetric(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "TerminateInstances", "ret_code": "2100"}, 1)
	wantMetric(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "RunInstances", "ret_code": "0"}, 1)
	wantMetric(t, m, telemetry.MetricUpstreamSeconds+"_count", map[string]string{"action": "DescribeZones", "class": "user"}, 4)
	if v, _ := metricValue(t, m, telemetry.MetricUpstreamRequests, map[string]string{"action": "DescribeJobs", "class": "poll", "code": "200"}); v < 1 {
		t.Errorf("watch polls counted %v times, want at least 1", v)
	}
	if v, _ := metricValue(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "other"}); v != 1 {
		t.Errorf("the unknown action's answer counted %v times under action=other, want 1", v)
	}

	// Backend and watch figures, read at scrape time.
	wantMetric(t, m, telemetry.MetricUpstreamCalls, map[string]string{"profile": "default", "action": "DescribeZones"}, 4)
	wantMetric(t, m, telemetry.MetricBudgetLimit, map[string]string{"profile": "default"}, 2000)
	if v, _ := metricValue(t, m, telemetry.MetricBudgetRemaining, map[string]string{"profile": "default"}); v <= 1900 || v >= 2000 {
		t.Errorf("quota budget remaining %v, want a little less than 2000", v)
	}
	if v, _ := metricValue(t, m, telemetry.MetricBudgetClassLeft, map[string]string{"profile": "default", "class": "poll"}); v <= 0 {
		t.Errorf("poll share of the budget: %v left", v)
	}
	wantMetric(t, m, telemetry.MetricWatchStreams, nil, 1)
	wantMetric(t, m, telemetry.MetricWatchTargets, map[string]string{"kind": "job"}, 1)
	if v, _ := metricValue(t, m, telemetry.MetricWatchCalls, nil); v < 1 {
		t.Errorf("watch upstream calls %v, want at least 1", v)
	}
	if _, ok := metricValue(t, m, "go_goroutines", nil); !ok {
		t.Errorf("no Go runtime metrics")
	}

	// Labels stay bounded: no sample carries an unknown action name.
	if strings.Contains(m, "NoSuchActionAnywhere") {
		t.Errorf("an unknown action name became a label")
	}

	stopWatch()
	s.srv.GRPC().GracefulStop() // returns once the canceled watch's handler and its telemetry are done
	m = s.scrape(t)
	v, _ := metricValue(t, m, telemetry.MetricWatchStreams, nil)
	f, _ := metricValue(t, m, telemetry.MetricRPCInFlight, map[string]string{"grpc_method": "WatchJobs"})
	if v != 0 || f != 0 {
		t.Fatalf("after the watch ended: %v watch streams, %v in flight", v, f)
	}
	wantMetric(t, m, handled, map[string]string{"grpc_method": "WatchJobs", "grpc_type": "server_stream", "grpc_code": "Canceled"}, 1)
}

func TestMetricsRetriesAndCoalescing(t *testing.T) {
	s := newObsStack(t, obsOptions{})
	ctx := ctxT(t)
	// Every attempt of DescribeKeyPairs answers ret_code 5000: the read is retried up to the
	// backend's 5 attempts, then fails with the last answer (INTERNAL).
	s.emu.SetFaults(emulator.Faults{RetCode5000: 1, Actions: []string{"DescribeKeyPairs"}})
	if _, err := iaasv1.NewKeyPairServiceClient(s.conn).DescribeKeyPairs(ctx, &iaasv1.DescribeKeyPairsRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("DescribeKeyPairs under ret_code 5000: %v", err)
	}
	// Every attempt of DescribeImages answers HTTP 502: transport failures, as the backend saw them.
	s.emu.SetFaults(emulator.Faults{HTTP502: 1, Actions: []string{"DescribeImages"}})
	if _, err := iaasv1.NewImageServiceClient(s.conn).DescribeImages(ctx, &iaasv1.DescribeImagesRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("DescribeImages under HTTP 502: %v", err)
	}
	// Identical concurrent reads of a slow action share upstream requests.
	s.emu.SetFaults(emulator.Faults{Latency: 200 * time.Millisecond, Actions: []string{"DescribeVolumes"}})
	const n = 6
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := iaasv1.NewVolumeServiceClient(s.conn).DescribeVolumes(ctx, &iaasv1.DescribeVolumesRequest{}); err != nil {
				t.Errorf("DescribeVolumes: %v", err)
			}
		}()
	}
	wg.Wait()
	s.emu.SetFaults(emulator.Faults{})

	m := s.scrape(t)
	wantMetric(t, m, telemetry.MetricRPCHandled, map[string]string{"action": "DescribeKeyPairs", "grpc_code": "Internal"}, 1)
	wantMetric(t, m, telemetry.MetricUpstreamRequests, map[string]string{"action": "DescribeKeyPairs", "class": "user", "code": "200"}, 5)
	wantMetric(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "DescribeKeyPairs", "ret_code": "5000"}, 5)
	wantMetric(t, m, telemetry.MetricUpstreamRetries, map[string]string{"profile": "default", "action": "DescribeKeyPairs"}, 4)
	wantMetric(t, m, telemetry.MetricUpstreamRequests, map[string]string{"profile": "default", "action": "DescribeImages", "code": "502"}, 5)
	wantMetric(t, m, telemetry.MetricUpstreamTransportFailures, map[string]string{"profile": "default", "action": "DescribeImages", "class": "user"}, 5)
	if _, ok := metricValue(t, m, telemetry.MetricUpstreamRetCodes, map[string]string{"action": "DescribeImages"}); ok {
		t.Errorf("HTTP 502 answers counted as ret_codes")
	}
	wantMetric(t, m, telemetry.MetricUpstreamCalls, map[string]string{"profile": "default", "action": "DescribeVolumes"}, n)
	coalesced, _ := metricValue(t, m, telemetry.MetricUpstreamCoalesced, map[string]string{"profile": "default", "action": "DescribeVolumes"})
	sent, _ := metricValue(t, m, telemetry.MetricUpstreamRequests, map[string]string{"action": "DescribeVolumes", "class": "user"})
	if coalesced < 1 || coalesced+sent != n {
		t.Errorf("DescribeVolumes: %v coalesced and %v sent, want at least 1 coalesced and %d in all", coalesced, sent, n)
	}
}

// spansOf returns the ended spans of trace id tid, which must satisfy ok; call it once the calls of
// the trace have finished (obsStack.quiesce).
func spansOf(t *testing.T, rec *tracetest.SpanRecorder, tid trace.TraceID, ok func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == tid {
			got = append(got, s)
		}
	}
	if !ok(got) {
		var names []string
		for _, s := range got {
			names = append(names, s.SpanKind().String()+" "+s.Name())
		}
		t.Fatalf("spans of trace %s: %v", tid, names)
	}
	return got
}

func findSpan(spans []sdktrace.ReadOnlySpan, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.SpanKind() == kind && s.Name() == name {
			return s
		}
	}
	return nil
}

func TestTracePropagationRESTToUpstream(t *testing.T) {
	s := newObsStack(t, obsOptions{})
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := s.do(t, "GET", "/v1/iaas/DescribeZones", "", map[string]string{
		"traceparent": "00-" + callerTrace + "-00f067aa0ba902b7-01", "baggage": "team=a,secret-ish=x"})
	if resp.StatusCode != 200 {
		t.Fatalf("GET DescribeZones: %d %s", resp.StatusCode, body)
	}
	s.quiesce()
	tid, _ := trace.TraceIDFromHex(callerTrace)
	want := []struct {
		kind trace.SpanKind
		name string
	}{
		{trace.SpanKindServer, "GET /v1/iaas/DescribeZones"},                  // otelhttp on the REST listener
		{trace.SpanKindClient, "qingcloud.iaas.v1.ZoneService/DescribeZones"}, // the gateway's in-process gRPC client
		{trace.SpanKindServer, "qingcloud.iaas.v1.ZoneService/DescribeZones"}, // otelgrpc on the server
		{trace.SpanKindClient, "QingCloud DescribeZones"},                     // the backend's transport
	}
	spans := spansOf(t, s.spans, tid, func(got []sdktrace.ReadOnlySpan) bool {
		for _, w := range want {
			if findSpan(got, w.kind, w.name) == nil {
				return false
			}
		}
		return true
	})
	// Each span is the child of the one before it.
	parent := trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	for _, w := range want {
		sp := findSpan(spans, w.kind, w.name)
		if sp.Parent().SpanID() != parent {
			t.Errorf("%s %q has parent %s, want %s", w.kind, w.name, sp.Parent().SpanID(), parent)
		}
		parent = sp.SpanContext().SpanID()
	}
	upSpan := findSpan(spans, trace.SpanKindClient, "QingCloud DescribeZones")
	var tp string
	for _, r := range s.upstream.requests() {
		if r.action == "DescribeZones" {
			tp = r.traceparent
			if r.baggage != "" {
				t.Errorf("the caller's baggage %q reached QingCloud", r.baggage)
			}
		}
	}
	if wantTP := "00-" + callerTrace + "-" + upSpan.SpanContext().SpanID().String() + "-01"; tp != wantTP {
		t.Errorf("upstream traceparent %q, want %q", tp, wantTP)
	}
	for _, sp := range spans {
		for _, a := range sp.Attributes() {
			if v := a.Value.Emit(); strings.Contains(v, "signature") || strings.Contains(v, emulator.DefaultAccessKeyID) {
				t.Errorf("span %q attribute %s = %q reveals the signed request", sp.Name(), a.Key, v)
			}
		}
	}
	grpcSpan := findSpan(spans, trace.SpanKindServer, "qingcloud.iaas.v1.ZoneService/DescribeZones")
	var rid string
	for _, a := range grpcSpan.Attributes() {
		if a.Key == "request_id" {
			rid = a.Value.AsString()
		}
	}
	if rid == "" || rid != resp.Header.Get("X-Request-Id") {
		t.Errorf("gRPC span request_id %q, response X-Request-Id %q", rid, resp.Header.Get("X-Request-Id"))
	}
}

// With tracing off nothing is recorded, but a REST caller's trace still continues to QingCloud: the
// upstream request carries the caller's trace id and span id (no span of ours in between), never
// its baggage; and the gRPC log line carries the trace id.
func TestTracePropagationRESTWithoutTracing(t *testing.T) {
	s := newObsStack(t, obsOptions{noTracing: true})
	if s.tel.Tracing() {
		t.Fatal("tracing is on")
	}
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp, body := s.do(t, "GET", "/v1/iaas/DescribeZones", "", map[string]string{"traceparent": caller, "baggage": "team=a"})
	if resp.StatusCode != 200 {
		t.Fatalf("GET DescribeZones: %d %s", resp.StatusCode, body)
	}
	// And a call without trace context sends none.
	if resp, body := s.do(t, "GET", "/v1/iaas/DescribeZones", "", nil); resp.StatusCode != 200 {
		t.Fatalf("GET DescribeZones: %d %s", resp.StatusCode, body)
	}
	s.quiesce()
	var tps []string
	for _, r := range s.upstream.requests() {
		if r.action == "DescribeZones" {
			tps = append(tps, r.traceparent)
			if r.baggage != "" {
				t.Errorf("the caller's baggage %q reached QingCloud", r.baggage)
			}
		}
	}
	if len(tps) != 2 || tps[0] != caller || tps[1] != "" {
		t.Errorf("upstream traceparents %q, want [%q \"\"]", tps, caller)
	}
	if n := len(s.spans.Ended()); n != 0 {
		t.Errorf("%d spans recorded with tracing off", n)
	}
	if n := len(logLines(s.logs.String(), `"msg":"finished call"`, `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`)); n != 1 {
		t.Errorf("%d finished-call lines with the caller's trace id, want 1:\n%s", n, s.logs.String())
	}
}

func TestTracePropagationGRPC(t *testing.T) {
	s := newObsStack(t, obsOptions{})
	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "traceparent", "00-"+callerTrace+"-b7ad6b7169203331-01")
	if _, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{}); err != nil {
		t.Fatal(err)
	}
	// Probes, which must not be traced.
	if _, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.do(t, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %d", resp.StatusCode)
	}
	s.quiesce()
	tid, _ := trace.TraceIDFromHex(callerTrace)
	spans := spansOf(t, s.spans, tid, func(got []sdktrace.ReadOnlySpan) bool {
		return findSpan(got, trace.SpanKindServer, "qingcloud.iaas.v1.ZoneService/DescribeZones") != nil &&
			findSpan(got, trace.SpanKindClient, "QingCloud DescribeZones") != nil
	})
	srv := findSpan(spans, trace.SpanKindServer, "qingcloud.iaas.v1.ZoneService/DescribeZones")
	up := findSpan(spans, trace.SpanKindClient, "QingCloud DescribeZones")
	if up.Parent().SpanID() != srv.SpanContext().SpanID() {
		t.Errorf("upstream span's parent %s, want the gRPC server span %s", up.Parent().SpanID(), srv.SpanContext().SpanID())
	}

	// Probes are not traced.
	for _, sp := range s.spans.Ended() {
		if strings.Contains(sp.Name(), "Health") || strings.Contains(sp.Name(), "healthz") {
			t.Errorf("a probe was traced: %s %q", sp.SpanKind(), sp.Name())
		}
	}
}

// logLines returns the JSON log records that contain all of substrs.
func logLines(logs string, substrs ...string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		ok := line != ""
		for _, s := range substrs {
			ok = ok && strings.Contains(line, s)
		}
		if !ok {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

func TestRequestIDRoundTrip(t *testing.T) {
	s := newObsStack(t, obsOptions{})
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)

	t.Run("REST keeps a sane id", func(t *testing.T) {
		resp, _ := s.do(t, "GET", "/v1/iaas/DescribeZones", "", map[string]string{"X-Request-Id": "client-id-42"})
		if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "client-id-42" {
			t.Fatalf("X-Request-Id %v, want [client-id-42]", got)
		}
		if v := resp.Header.Get("Grpc-Metadata-X-Request-Id"); v != "" {
			t.Errorf("the id also came back as Grpc-Metadata-X-Request-Id")
		}
		// The gRPC log line and the backend's line both carry it.
		if n := len(logLines(s.logs.String(), `"request_id":"client-id-42"`, `"msg":"finished call"`, `"qingcloud.action":"DescribeZones"`)); n != 1 {
			t.Errorf("%d finished-call lines with the request id, want 1:\n%s", n, s.logs.String())
		}
		if n := len(logLines(s.logs.String(), `"request_id":"client-id-42"`, `"component":"backend"`)); n != 1 {
			t.Errorf("%d backend lines with the request id, want 1", n)
		}
	})
	t.Run("REST replaces an insane id", func(t *testing.T) {
		resp, _ := s.do(t, "GET", "/v1/iaas/DescribeZones", "", map[string]string{"X-Request-Id": "bad id\"with quotes"})
		if got := resp.Header.Get("X-Request-Id"); !hexID.MatchString(got) {
			t.Fatalf("X-Request-Id %q, want a fresh id", got)
		}
	})
	t.Run("REST errors carry the id", func(t *testing.T) {
		resp, _ := s.do(t, "POST", "/v1/iaas/TerminateInstances", `{"instances":["i-doesnotx"]}`, nil)
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 404 || !hexID.MatchString(id) {
			t.Fatalf("HTTP %d X-Request-Id %q", resp.StatusCode, id)
		}
		if n := len(logLines(s.logs.String(), `"request_id":"`+id+`"`, `"grpc.code":"NotFound"`)); n != 1 {
			t.Errorf("%d NotFound log lines with the request id, want 1", n)
		}
		// Rejected by the gateway before any gRPC call: still an id.
		resp, _ = s.do(t, "POST", "/v1/iaas/RunInstances", `{"count":"many"}`, nil)
		if resp.StatusCode != 400 || !hexID.MatchString(resp.Header.Get("X-Request-Id")) {
			t.Fatalf("bad JSON: HTTP %d X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
	})
	t.Run("gRPC keeps a sane id", func(t *testing.T) {
		var hdr metadata.MD
		ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "grpc-id-7")
		if _, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{}, grpc.Header(&hdr)); err != nil {
			t.Fatal(err)
		}
		if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "grpc-id-7" {
			t.Fatalf("x-request-id %v", got)
		}
	})
	t.Run("gRPC errors and streams get an id", func(t *testing.T) {
		var hdr metadata.MD
		_, err := iaasv1.NewInstanceServiceClient(s.conn).TerminateInstances(ctxT(t), &iaasv1.TerminateInstancesRequest{Instances: []string{"i-doesnotx"}}, grpc.Header(&hdr))
		if status.Code(err) != codes.NotFound || len(hdr.Get("x-request-id")) != 1 || !hexID.MatchString(hdr.Get("x-request-id")[0]) {
			t.Fatalf("TerminateInstances: %v, x-request-id %v", err, hdr.Get("x-request-id"))
		}
		st, err := iaasv1.NewInstanceServiceClient(s.conn).DescribeInstancesAll(metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "stream-id-1"), &iaasv1.DescribeInstancesAllRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := st.Recv(); err != nil {
				break
			}
		}
		if hdr, err := st.Header(); err != nil || len(hdr.Get("x-request-id")) != 1 || hdr.Get("x-request-id")[0] != "stream-id-1" {
			t.Fatalf("stream header %v (%v)", hdr, err)
		}
	})
}

package telemetry

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metric names. docs/observability.md describes each with its labels.
const (
	MetricRPCHandled   = "qingcloud_grpc_server_handled_total"
	MetricRPCSeconds   = "qingcloud_grpc_server_handling_seconds"
	MetricRPCInFlight  = "qingcloud_grpc_server_in_flight"
	MetricRPCMsgSent   = "qingcloud_grpc_server_msg_sent_total"
	MetricHTTPRequests = "qingcloud_http_requests_total"
	// The upstream metrics, reported by the backend through Telemetry.Upstream, all labelled by
	// credential profile.
	MetricUpstreamRequests          = "qingcloud_upstream_requests_total"
	MetricUpstreamSeconds           = "qingcloud_upstream_request_duration_seconds"
	MetricUpstreamRetCodes          = "qingcloud_upstream_ret_codes_total"
	MetricUpstreamTransportFailures = "qingcloud_upstream_transport_failures_total"
	MetricUpstreamCalls             = "qingcloud_upstream_calls_total"
	MetricUpstreamRetries           = "qingcloud_upstream_retries_total"
	MetricUpstreamCoalesced         = "qingcloud_upstream_coalesced_calls_total"
	MetricUpstreamRefused           = "qingcloud_upstream_refused_calls_total"
)

// latencyBuckets suit calls that take from a millisecond (emulator, coalesced reads) to the upstream
// timeout.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// metrics are the vectors the interceptors, the HTTP middleware and the upstream transport update.
type metrics struct {
	rpcHandled   *prometheus.CounterVec
	rpcSeconds   *prometheus.HistogramVec
	rpcInFlight  *prometheus.GaugeVec
	rpcMsgSent   *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	upRequests   *prometheus.CounterVec
	upSeconds    *prometheus.HistogramVec
	upRetCodes   *prometheus.CounterVec
	// upTransportFailures counts attempts without a usable QingCloud answer.
	upTransportFailures *prometheus.CounterVec
	upCalls             *prometheus.CounterVec
	upRetries           *prometheus.CounterVec
	upCoalesced         *prometheus.CounterVec
	upRefused           *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rpcHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRPCHandled,
			Help: "RPCs completed (gRPC and REST, which reaches gRPC in-process), by method, QingCloud action and gRPC status code.",
		}, []string{"grpc_service", "grpc_method", "grpc_type", "action", "grpc_code"}),
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricRPCSeconds,
			Help:    "Time from the start of an RPC to its end, by method and QingCloud action (streams: the whole stream).",
			Buckets: latencyBuckets,
		}, []string{"grpc_service", "grpc_method", "grpc_type", "action"}),
		rpcInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricRPCInFlight,
			Help: "RPCs (and open streams) being served now.",
		}, []string{"grpc_service", "grpc_method", "grpc_type"}),
		rpcMsgSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRPCMsgSent,
			Help: "Messages sent on server streams (pages of auto-paginated lists, watch events).",
		}, []string{"grpc_service", "grpc_method"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHTTPRequests,
			Help: "HTTP requests served by the REST listener, by method and HTTP status code.",
		}, []string{"method", "code"}),
		upRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamRequests,
			Help: "Upstream attempts: HTTP requests sent to QingCloud (retries included), by profile, action, call class (user or poll) and HTTP status code (\"error\" when no answer came).",
		}, []string{"profile", "action", "class", "code"}),
		upSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricUpstreamSeconds,
			Help:    "Time of one upstream attempt, until its answer is read, by profile, action and call class.",
			Buckets: latencyBuckets,
		}, []string{"profile", "action", "class"}),
		upRetCodes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamRetCodes,
			Help: "QingCloud answers by profile, action and ret_code (0 is success).",
		}, []string{"profile", "action", "ret_code"}),
		upTransportFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamTransportFailures,
			Help: "Upstream attempts without a usable QingCloud answer (connection failure, timeout, HTTP error status, unreadable body), by profile, action and call class.",
		}, []string{"profile", "action", "class"}),
		upCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamCalls,
			Help: "Calls asked of the upstream client, before coalescing, retries and the quota budget.",
		}, []string{"profile", "action"}),
		upRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamRetries,
			Help: "Upstream attempts repeated after a retryable failure.",
		}, []string{"profile", "action"}),
		upCoalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamCoalesced,
			Help: "Upstream calls saved by coalescing identical concurrent reads.",
		}, []string{"profile", "action"}),
		upRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamRefused,
			Help: "Calls (or retries) refused locally because the quota budget was spent.",
		}, []string{"profile", "action"}),
	}
	for _, c := range []prometheus.Collector{
		m.rpcHandled, m.rpcSeconds, m.rpcInFlight, m.rpcMsgSent, m.httpRequests,
		m.upRequests, m.upSeconds, m.upRetCodes, m.upTransportFailures, m.upCalls, m.upRetries, m.upCoalesced, m.upRefused,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ActionResolver names the QingCloud action a call runs: from the method table for typed RPCs, from
// the request for CallService (req is nil for streams). It returns "" for calls that are not actions
// and must return only well-formed action names (they appear in logs and spans; metrics bound them
// further with ActionLabel).
type ActionResolver func(fullMethod string, req any) string

// splitMethod splits "/pkg.Service/Method".
func splitMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

func actionLabel(action string) string {
	if action == "" {
		return ""
	}
	return ActionLabel(action)
}

// rpcKey names the metric series of one RPC method, stream type and action.
type rpcKey struct {
	fullMethod, typ, action string
}

// rpcSeries are the metric children of one rpcKey, looked up once: WithLabelValues hashes the label
// values and takes the vector's lock on every call.
type rpcSeries struct {
	inFlight prometheus.Gauge
	seconds  prometheus.Observer
	sent     prometheus.Counter // streams only
	svc      string
	method   string
	action   string                 // label value
	handled  [17]prometheus.Counter // by codes.Code (0..16); others through the vector
	mu       sync.Mutex
}

// series returns the metric children of k, creating them on first use. Methods and actions come
// from the registered services, so the set is bounded.
func (t *Telemetry) series(k rpcKey) *rpcSeries {
	if v, ok := t.rpcs.Load(k); ok {
		return v.(*rpcSeries)
	}
	svc, method := splitMethod(k.fullMethod)
	s := &rpcSeries{svc: svc, method: method, action: actionLabel(k.action)}
	s.inFlight = t.metrics.rpcInFlight.WithLabelValues(svc, method, k.typ)
	s.seconds = t.metrics.rpcSeconds.WithLabelValues(svc, method, k.typ, s.action)
	if k.typ != "unary" {
		s.sent = t.metrics.rpcMsgSent.WithLabelValues(svc, method)
	}
	v, _ := t.rpcs.LoadOrStore(k, s)
	return v.(*rpcSeries)
}

// done records a finished call: its duration and its status code.
func (t *Telemetry) done(s *rpcSeries, typ string, d time.Duration, err error) {
	s.seconds.Observe(d.Seconds())
	code := status.Code(err)
	if int(code) >= len(s.handled) {
		t.metrics.rpcHandled.WithLabelValues(s.svc, s.method, typ, s.action, code.String()).Inc()
	} else {
		s.mu.Lock()
		c := s.handled[code]
		if c == nil {
			c = t.metrics.rpcHandled.WithLabelValues(s.svc, s.method, typ, s.action, code.String())
			s.handled[code] = c
		}
		s.mu.Unlock()
		c.Inc()
	}
	s.inFlight.Dec() // last: a scrape that sees the call gone also sees it counted
}

// httpMethodLabel bounds the method label of HTTP metrics.
func httpMethodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}

// httpKey names a child of the HTTP request counter.
type httpKey struct {
	method string // httpMethodLabel's
	code   int
}

// httpCounter returns the HTTP request counter of a method and status code, looked up in the vector
// once (see rpcSeries). Methods are mapped to a fixed set and status codes are three digits, so the
// set is bounded.
func (t *Telemetry) httpCounter(method string, code int) prometheus.Counter {
	k := httpKey{httpMethodLabel(method), code}
	if c, ok := t.https.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c, _ := t.https.LoadOrStore(k, t.metrics.httpRequests.WithLabelValues(k.method, codeLabel(code)))
	return c.(prometheus.Counter)
}

// codeLabel formats an HTTP status code.
func codeLabel(code int) string { return strconv.Itoa(code) }

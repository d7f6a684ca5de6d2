// Package telemetry is the observability of qingcloud-grpc: Prometheus metrics on a dedicated
// registry, OpenTelemetry traces (W3C trace context from REST through gRPC to the upstream HTTP call),
// request ids, and a slog handler that puts the request id and trace id on every log line.
//
// One [Telemetry] serves the whole process. Build it first ([New]); give every backend client the
// observer of its credential profile ([Telemetry.Upstream], which counts its calls and attempts)
// and [Telemetry.HTTPClient] (or [Telemetry.Transport], which traces them); then pass the Telemetry
// to the server, which installs the gRPC stats handlers and interceptors and serves
// [Telemetry.MetricsHandler] at /metrics.
//
// Nothing here ever records a payload, a credential, a bearer token, a signature or a signed URL:
// labels come from bounded sets (action names of the generated descriptors, status codes, call
// classes), upstream span URLs are recorded without their (signed) query, and the log handler adds
// only ids.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporter names accepted by Options.Exporter.
const (
	// ExporterNone records no spans (the default). Incoming trace context is still passed on, so a
	// caller's trace continues through us to QingCloud.
	ExporterNone = "none"
	// ExporterStdout writes finished spans as JSON lines to Options.Stdout (os.Stdout by default).
	ExporterStdout = "stdout"
	// ExporterOTLP sends spans to an OpenTelemetry collector over OTLP/gRPC.
	ExporterOTLP = "otlp"
)

// DefaultServiceName is the service.name resource attribute when Options.ServiceName is empty.
const DefaultServiceName = "qingcloud-grpc"

// Options configure New. The zero value gives metrics and no span export.
type Options struct {
	// Exporter is "none" (or empty), "stdout" or "otlp".
	Exporter string
	// ServiceName is the service.name of exported spans; empty means DefaultServiceName.
	ServiceName string
	// Stdout receives the stdout exporter's output; nil means os.Stdout.
	Stdout io.Writer
	// OTLPEndpoint is the collector's host:port (or URL) for the otlp exporter. Empty uses the
	// standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables, else
	// localhost:4317.
	OTLPEndpoint string
	// OTLPInsecure sends OTLP without TLS (a collector on the same host or pod).
	OTLPInsecure bool
	// SampleRatio is the share of new traces recorded, in (0, 1]; 0 means 1. A trace that arrives
	// with a sampled parent is always recorded (parent-based sampling).
	SampleRatio float64
	// SpanProcessors are added to the tracer provider, e.g. a tracetest.SpanRecorder in tests. Any
	// processor turns recording on, even with Exporter "none".
	SpanProcessors []sdktrace.SpanProcessor
	// Registry receives the metrics; nil means a new registry with the Go runtime and process
	// collectors. It is never the global default registry unless the caller passes that.
	Registry *prometheus.Registry
}

// Telemetry holds the metrics registry, the tracer provider and the propagator of one process.
type Telemetry struct {
	reg     *prometheus.Registry
	tp      trace.TracerProvider
	sdk     *sdktrace.TracerProvider // nil when no span is recorded
	prop    propagation.TextMapPropagator
	metrics *metrics
	budgets *budgets
	rpcs    sync.Map // rpcKey -> *rpcSeries
	https   sync.Map // httpKey -> prometheus.Counter
}

// New builds the metrics registry and the tracer provider described by opts. Call Shutdown at exit
// to flush spans.
func New(ctx context.Context, opts Options) (*Telemetry, error) {
	t := &Telemetry{
		reg:  opts.Registry,
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	if t.reg == nil {
		t.reg = prometheus.NewRegistry()
		t.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(t.reg)
	if err != nil {
		return nil, err
	}
	t.metrics = m
	t.budgets = &budgets{}
	if err := t.reg.Register(t.budgets); err != nil {
		return nil, err
	}

	exp, err := newExporter(ctx, opts)
	if err != nil {
		return nil, err
	}
	if exp == nil && len(opts.SpanProcessors) == 0 {
		t.tp = noop.NewTracerProvider()
		return t, nil
	}
	ratio := opts.SampleRatio
	if ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("telemetry: sample ratio %v is not in (0, 1]", ratio)
	}
	if ratio == 0 {
		ratio = 1
	}
	name := opts.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		res = resource.NewSchemaless(attribute.String("service.name", name))
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if exp != nil {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	for _, p := range opts.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	t.sdk = sdktrace.NewTracerProvider(tpOpts...)
	t.tp = t.sdk
	return t, nil
}

// newExporter returns the span exporter named by opts.Exporter, or nil for none.
func newExporter(ctx context.Context, opts Options) (sdktrace.SpanExporter, error) {
	switch strings.ToLower(strings.TrimSpace(opts.Exporter)) {
	case "", ExporterNone:
		return nil, nil
	case ExporterStdout:
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case ExporterOTLP:
		var o []otlptracegrpc.Option
		if ep := opts.OTLPEndpoint; ep != "" {
			if strings.Contains(ep, "://") {
				o = append(o, otlptracegrpc.WithEndpointURL(ep))
			} else {
				o = append(o, otlptracegrpc.WithEndpoint(ep))
			}
		}
		if opts.OTLPInsecure {
			o = append(o, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, o...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("telemetry: trace exporter %q is not none, stdout or otlp", opts.Exporter)
	}
}

// Registry returns the Prometheus registry every metric of the process is registered with.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// MetricsHandler serves the registry in the Prometheus exposition format (for GET /metrics).
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{Registry: t.reg, EnableOpenMetrics: false})
}

// TracerProvider returns the provider of every span of the process (a no-op one when tracing is off).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator returns the W3C trace context (and baggage) propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Tracing reports whether spans are recorded (an exporter or a span processor is configured).
func (t *Telemetry) Tracing() bool { return t.sdk != nil }

// Shutdown flushes and stops span export. It is safe to call more than once.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	err := t.sdk.Shutdown(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("telemetry: flushing spans: %w", err)
	}
	return err
}

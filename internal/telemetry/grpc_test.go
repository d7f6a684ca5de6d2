package telemetry

import (
	"context"
	"reflect"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// TestServerHandlerWithoutTracing: with tracing off the server handler is the light one, and it
// still continues the caller's trace (and baggage) in the call's context, except for probes.
func TestServerHandlerWithoutTracing(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.GRPCServerHandler()
	if _, ok := h.(propagateOnly); !ok {
		t.Fatalf("handler with tracing off is %T, want the propagation-only handler", h)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	info := &stats.RPCTagInfo{FullMethodName: "/qingcloud.iaas.v1.ZoneService/DescribeZones"}
	for _, tc := range []struct {
		name      string
		md        metadata.MD
		info      *stats.RPCTagInfo
		wantTrace string // "" means no span context
		wantBag   string
	}{
		{"traceparent and baggage", metadata.Pairs("traceparent", tp, "baggage", "team=a"), info, "4bf92f3577b34da6a3ce929d0e0e4736", "a"},
		{"traceparent only", metadata.Pairs("traceparent", tp), info, "4bf92f3577b34da6a3ce929d0e0e4736", ""},
		{"no trace context", metadata.Pairs("x-request-id", "r1"), info, "", ""},
		{"malformed traceparent", metadata.Pairs("traceparent", "00-zz"), info, "", ""},
		{"health check", metadata.Pairs("traceparent", tp), &stats.RPCTagInfo{FullMethodName: "/grpc.health.v1.Health/Check"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := h.TagRPC(metadata.NewIncomingContext(context.Background(), tc.md), tc.info)
			sc := trace.SpanContextFromContext(ctx)
			switch {
			case tc.wantTrace == "" && sc.IsValid():
				t.Errorf("span context %v, want none", sc)
			case tc.wantTrace != "" && (sc.TraceID().String() != tc.wantTrace || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() || !sc.IsSampled()):
				t.Errorf("span context %v, want the caller's %s", sc, tp)
			}
			if got := baggage.FromContext(ctx).Member("team").Value(); got != tc.wantBag {
				t.Errorf("baggage team=%q, want %q", got, tc.wantBag)
			}
			// No span is started: the span in the context is the caller's, not recording.
			if trace.SpanFromContext(ctx).IsRecording() {
				t.Error("a span is recording with tracing off")
			}
		})
	}
	// Without incoming metadata the context is returned as is.
	ctx := context.Background()
	if got := h.TagRPC(ctx, info); got != ctx {
		t.Error("TagRPC changed a context without metadata")
	}

	// With tracing on, the handler is otelgrpc's.
	traced, err := New(context.Background(), Options{SpanProcessors: []sdktrace.SpanProcessor{tracetest.NewSpanRecorder()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := traced.GRPCServerHandler().(propagateOnly); ok {
		t.Error("with tracing on the server handler records no spans")
	}
}

// TestClientHandlerWithoutTracing: with tracing off the client handler is the light one, and it
// sends the same outgoing metadata as otelgrpc's client handler with a no-op tracer would.
func TestClientHandlerWithoutTracing(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := tel.GRPCClientHandler()
	if _, ok := h.(injectOnly); !ok {
		t.Fatalf("handler with tracing off is %T, want the injection-only handler", h)
	}
	ref := otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(noop.NewTracerProvider()), otelgrpc.WithPropagators(tel.prop))
	caller := tel.prop.Extract(context.Background(), propagation.MapCarrier{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=x", "baggage": "team=a"})
	onlyBaggage := tel.prop.Extract(context.Background(), propagation.MapCarrier{"baggage": "team=b"})
	info := &stats.RPCTagInfo{FullMethodName: "/qingcloud.iaas.v1.ZoneService/DescribeZones"}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		info *stats.RPCTagInfo
	}{
		{"trace context and baggage", caller, info},
		{"baggage only", onlyBaggage, info},
		{"nothing", context.Background(), info},
		{"other outgoing metadata", metadata.AppendToOutgoingContext(caller, "x-request-id", "r1", "Traceparent", "00-stale"), info},
		{"nothing, other outgoing metadata", metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "r1"), info},
		{"health check", caller, &stats.RPCTagInfo{FullMethodName: "/grpc.health.v1.Health/Check"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := metadata.FromOutgoingContext(h.TagRPC(tc.ctx, tc.info))
			want, _ := metadata.FromOutgoingContext(ref.TagRPC(tc.ctx, tc.info))
			if len(got) == 0 && len(want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("outgoing metadata %v, otelgrpc's %v", got, want)
			}
		})
	}
	traced, err := New(context.Background(), Options{SpanProcessors: []sdktrace.SpanProcessor{tracetest.NewSpanRecorder()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := traced.GRPCClientHandler().(injectOnly); ok {
		t.Error("with tracing on the client handler records no spans")
	}
}

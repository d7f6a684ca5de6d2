package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// untracedServices get no spans: probes and tooling would drown the traces of real calls.
var untracedServices = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

func traced(info *stats.RPCTagInfo) bool {
	for _, p := range untracedServices {
		if strings.HasPrefix(info.FullMethodName, p) {
			return false
		}
	}
	return true
}

// GRPCServerHandler is the stats handler for grpc.StatsHandler on the gRPC server: a server span
// per call (health checks and reflection excepted) that continues the caller's W3C trace context.
//
// When no span is recorded (Tracing is false) it is a handler that only takes the caller's trace
// context and baggage from the request metadata into the call's context, so that the trace still
// continues to QingCloud: the same context otelgrpc would give the call with a no-op tracer, without
// otelgrpc's per-call and per-message work (a call that carries no trace context costs one map
// lookup).
func (t *Telemetry) GRPCServerHandler() stats.Handler {
	if t.sdk == nil {
		return propagateOnly{prop: t.prop}
	}
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(t.prop), otelgrpc.WithFilter(traced))
}

// GRPCClientHandler is the stats handler for grpc.WithStatsHandler on a client connection (the
// gateway's in-process connection): a client span per call, whose context it sends as traceparent.
func (t *Telemetry) GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(t.prop), otelgrpc.WithFilter(traced))
}

// propagateOnly is the server stats handler while tracing is off (see GRPCServerHandler).
type propagateOnly struct {
	prop propagation.TextMapPropagator
}

// propagatedKeys are the metadata keys of the propagator New builds (W3C trace context and baggage).
var propagatedKeys = []string{"traceparent", "tracestate", "baggage"}

// TagRPC extracts the caller's trace context, if the call carries any.
func (h propagateOnly) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || !traced(info) {
		return ctx
	}
	for _, k := range propagatedKeys {
		if len(md[k]) > 0 {
			return h.prop.Extract(ctx, mdCarrier(md))
		}
	}
	return ctx
}

// HandleRPC does nothing: no span is recorded.
func (propagateOnly) HandleRPC(context.Context, stats.RPCStats) {}

// TagConn returns ctx.
func (propagateOnly) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn does nothing.
func (propagateOnly) HandleConn(context.Context, stats.ConnStats) {}

// mdCarrier reads and writes gRPC metadata for a propagator (metadata keys are lower case).
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

// untracedServices get no spans: probes and tooling would drown the traces of real calls.
var untracedServices = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

func traced(info *stats.RPCTagInfo) bool { return tracedMethod(info.FullMethodName) }

func tracedMethod(fullMethod string) bool {
	for _, p := range untracedServices {
		if strings.HasPrefix(fullMethod, p) {
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
// otelgrpc's per-call and per-message work (a call that carries no trace context costs three map
// lookups). The server interceptors (UnaryServerInterceptor, StreamServerInterceptor) do the same
// when tracing is off, so a server that has them needs no stats handler then: package server
// installs this one only with tracing on.
func (t *Telemetry) GRPCServerHandler() stats.Handler {
	if t.sdk == nil {
		return propagateOnly{prop: t.prop}
	}
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(t.prop), otelgrpc.WithFilter(traced))
}

// GRPCClientHandler is the stats handler for grpc.WithStatsHandler on a client connection (the
// gateway's in-process connection): a client span per call, whose context it sends as traceparent.
//
// When no span is recorded (Tracing is false) it is a handler that only sends the trace context and
// baggage of the call's context (the REST caller's, see HTTPHandler) in the outgoing metadata: what
// otelgrpc sends with a no-op tracer, without its per-call work (a call without trace context or
// baggage costs two context lookups).
func (t *Telemetry) GRPCClientHandler() stats.Handler {
	if t.sdk == nil {
		return injectOnly{prop: t.prop}
	}
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
	return continueTrace(ctx, h.prop, info.FullMethodName)
}

// continueTrace returns ctx with the caller's trace context and baggage from the incoming metadata,
// when the call carries any and its method is traced; otherwise ctx itself. It reads the three keys
// without copying the metadata, so a call without trace context costs three map lookups.
func continueTrace(ctx context.Context, prop propagation.TextMapPropagator, fullMethod string) context.Context {
	for _, k := range propagatedKeys {
		if len(metadata.ValueFromIncomingContext(ctx, k)) > 0 {
			if !tracedMethod(fullMethod) {
				return ctx
			}
			return prop.Extract(ctx, incomingCarrier{ctx})
		}
	}
	return ctx
}

// continueTrace is continueTrace with t's propagator.
func (t *Telemetry) continueTrace(ctx context.Context, fullMethod string) context.Context {
	return continueTrace(ctx, t.prop, fullMethod)
}

// incomingCarrier reads the incoming gRPC metadata of a context for a propagator, without copying it.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set does nothing: incoming metadata is not written.
func (incomingCarrier) Set(string, string) {}

func (c incomingCarrier) Keys() []string {
	var keys []string
	for _, k := range propagatedKeys {
		if len(metadata.ValueFromIncomingContext(c.ctx, k)) > 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// HandleRPC does nothing: no span is recorded.
func (propagateOnly) HandleRPC(context.Context, stats.RPCStats) {}

// TagConn returns ctx.
func (propagateOnly) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn does nothing.
func (propagateOnly) HandleConn(context.Context, stats.ConnStats) {}

// injectOnly is the client stats handler while tracing is off (see GRPCClientHandler).
type injectOnly struct {
	prop propagation.TextMapPropagator
}

// TagRPC sends the trace context and baggage of ctx, if it has any, as otelgrpc does for every
// method: into a copy of the outgoing metadata, replacing keys of the same name. The propagator
// (W3C trace context and baggage, see New) writes nothing for a context with neither.
func (h injectOnly) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	}
	h.prop.Inject(ctx, outgoingCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// HandleRPC does nothing: no span is recorded.
func (injectOnly) HandleRPC(context.Context, stats.RPCStats) {}

// TagConn returns ctx.
func (injectOnly) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn does nothing.
func (injectOnly) HandleConn(context.Context, stats.ConnStats) {}

// outgoingCarrier writes outgoing gRPC metadata for a propagator.
type outgoingCarrier metadata.MD

func (c outgoingCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c outgoingCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c outgoingCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

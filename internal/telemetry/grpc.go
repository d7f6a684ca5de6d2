package telemetry

import (
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
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
func (t *Telemetry) GRPCServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(t.prop), otelgrpc.WithFilter(traced))
}

// GRPCClientHandler is the stats handler for grpc.WithStatsHandler on a client connection (the
// gateway's in-process connection): a client span per call, whose context it sends as traceparent.
func (t *Telemetry) GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(t.tp), otelgrpc.WithPropagators(t.prop), otelgrpc.WithFilter(traced))
}

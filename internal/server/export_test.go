package server

import "google.golang.org/grpc"

// BareGRPC returns a gRPC server with the action services of s, served by its own handlers
// (serveAction) with its transport options, but none of its interceptors: no telemetry, recovery,
// drain, operation names or idempotency. BenchmarkTransportFloor measures what the facade costs
// without them.
func (s *Server) BareGRPC() *grpc.Server {
	gs := grpc.NewServer(s.transportOptions()...)
	for _, sd := range serviceDescs(s.methods, s.serveAction, s.serveAllPages) {
		gs.RegisterService(sd, struct{}{})
	}
	return gs
}

// DropRESTInterceptors makes the in-process calls of s's REST gateway skip the interceptor chain, as
// BareGRPC does for gRPC (BenchmarkTransportFloor). It is called before s serves any REST call.
func (s *Server) DropRESTInterceptors() { s.inproc.unary, s.inproc.stream = nil, nil }

// Package server wires the qingcloud-grpc API: a gRPC server whose action RPCs are all served by one
// generic handler built from the generated descriptors, health checking and reflection, and a REST
// gateway (grpc-gateway) that reaches the same gRPC server in-process, so REST and gRPC share one
// interceptor chain.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api/naming"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/idempotency"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/operations"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// Config configures a Server.
type Config struct {
	// Tenants picks the upstream and default zone of each call from its context (the caller's
	// credential profile, put there by the auth interceptor), so that no caller can act with another's
	// keys; tenant.Single serves every call with one upstream. Required.
	Tenants tenant.Resolver
	// Logger receives one line per call (never payloads or credentials), with the call's request_id
	// and, when traced, trace_id and span_id. nil discards.
	Logger *slog.Logger
	// Telemetry records metrics, traces calls and assigns request ids; the same one should serve the
	// backend's transport (Telemetry.HTTPClient). nil means a private one with tracing off, whose
	// metrics are still served at /metrics.
	Telemetry *telemetry.Telemetry
	// MetricsElsewhere leaves GET /metrics out of HTTPHandler, for a server that serves MetricsHandler
	// on a listener of its own.
	MetricsElsewhere bool
	// WatchStats, when set, is read at every scrape of /metrics: the watch hub's streams, pollers and
	// calls (watch.Hub.Stats). The backend reports its own figures (Telemetry.Upstream).
	WatchStats func() watch.Stats
	// UnaryInterceptors and StreamInterceptors run after the built-in ones, in this order: the
	// telemetry interceptor (request id, metrics, the "finished call" line), recovery, the drain
	// (refusals and cancellations of Shutdown), then these (auth, rate limits).
	// With tracing on, the otelgrpc stats handler sees every call before any interceptor.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// ServerOptions are passed to grpc.NewServer (TLS credentials, a tap handle that checks callers
	// before their messages are read, ...).
	ServerOptions []grpc.ServerOption
	// CheckCaller, when set, runs on every REST request for the API before its body is read (auth:
	// Authenticator.CheckHTTP); the gRPC status it returns is the answer, and the body is never read.
	// GET /healthz, /openapi.json and /metrics are not checked.
	CheckCaller func(*http.Request) error
	// Watch serves WatchService (job and resource streams). nil leaves it unimplemented. Shutdown
	// closes it when it has a Close method (as *watch.Hub does), which ends its streams.
	Watch iaasv1.WatchServiceServer
	// Operations serves google.longrunning.Operations (package operations), over gRPC and REST
	// (/v1/operations). nil leaves it unimplemented.
	Operations longrunningpb.OperationsServer
	// Idempotency, when set, keeps the outcomes of mutations sent with an idempotency key (package
	// idempotency), so that a retry with the same key gets the first call's outcome. nil ignores keys.
	Idempotency idempotency.Store
	// Limits bounds connections on both listeners (timeouts, keepalive, header size, streams); unset
	// fields take DefaultLimits. The REST listener's http.Server gets them from ConfigureHTTP.
	Limits Limits
}

// Server is the qingcloud-grpc API server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	grpc    *grpc.Server
	health  *health.Server
	methods []*api.Method
	tel     *telemetry.Telemetry
	inproc  *inProcess
	limits  Limits
	drain   *drain

	mu          sync.Mutex
	stopping    bool           // Shutdown has begun
	https       []*http.Server // served by ServeHTTP, stopped by Shutdown
	healthOnly  []*grpc.Server // served by ServeHealth, stopped by Shutdown
	metricsOnly []*http.Server // served by ServeMetrics, stopped by Shutdown
}

// New builds the gRPC server and registers every action RPC, CallService, health and reflection.
func New(cfg Config) (*Server, error) {
	if cfg.Tenants == nil {
		return nil, errors.New("server: Config.Tenants is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = telemetry.WrapLogger(log)
	tel := cfg.Telemetry
	if tel == nil {
		var err error
		if tel, err = telemetry.New(context.Background(), telemetry.Options{}); err != nil {
			return nil, err
		}
	}
	if cfg.WatchStats != nil {
		if err := tel.Registry().Register(watchCollector(cfg.WatchStats)); err != nil {
			return nil, fmt.Errorf("server: register the watch metrics: %w", err)
		}
	}
	if err := api.Check(); err != nil {
		return nil, err
	}
	methods := api.Methods()
	if len(methods) == 0 {
		return nil, errors.New("server: no action RPCs registered (is the generated package linked?)")
	}
	s := &Server{cfg: cfg, log: log, methods: methods, tel: tel, health: health.NewServer(), limits: cfg.Limits.withDefaults(), drain: newDrain()}

	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic serving a call", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error; the server logged the details")
	})
	// Order (conventions §4): the otelgrpc stats handler when tracing is on (outside every
	// interceptor), then the telemetry interceptor (trace context when tracing is off, request ids,
	// metrics, the "finished call" line), and recovery. Recovery sits right after telemetry rather
	// than last so that it also covers the interceptors of Config (auth, rate limits): grpc-go does
	// not recover panics, and metrics and logs still see a panic as INTERNAL. The drain (Shutdown)
	// comes next.
	unary := append([]grpc.UnaryServerInterceptor{
		tel.UnaryServerInterceptor(s.resolveAction, log),
		recovery.UnaryServerInterceptor(rec),
		s.drain.unary(),
	}, cfg.UnaryInterceptors...)
	// After authentication (cfg's interceptors): operation names on delayed actions' answers, replayed
	// answers included, then idempotency keys.
	unary = append(unary, operations.HeaderInterceptor(s.defaultZone))
	if cfg.Idempotency != nil {
		g, err := idempotency.New(idempotency.Options{Store: cfg.Idempotency, Tenant: s.tenantName, Mutation: mutation, Detach: s.drain.detach})
		if err != nil {
			return nil, err
		}
		unary = append(unary, g.UnaryServerInterceptor())
	}
	stream := append([]grpc.StreamServerInterceptor{
		tel.StreamServerInterceptor(s.resolveAction, log),
		recovery.StreamServerInterceptor(rec),
		s.drain.stream(),
	}, cfg.StreamInterceptors...)
	// With tracing off no stats handler is installed: the telemetry interceptor continues the
	// caller's trace itself, and grpc-go then builds no per-call stats events (a small call: 26
	// allocations and its incoming metadata copied twice fewer).
	var serverStats stats.Handler
	var opts []grpc.ServerOption
	if tel.Tracing() {
		serverStats = tel.GRPCServerHandler()
		opts = append(opts, grpc.StatsHandler(serverStats))
	}
	s.inproc = newInProcess(unary, stream, tel.GRPCClientHandler(), serverStats)
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	opts = append(opts, s.transportOptions()...)
	opts = append(opts, cfg.ServerOptions...)

	s.grpc = grpc.NewServer(opts...)
	reg := inprocRegistrar{srv: s.grpc, p: s.inproc} // the gateway calls these services in process
	for _, sd := range serviceDescs(methods, s.serveAction, s.serveAllPages) {
		reg.RegisterService(sd, struct{}{})
		s.health.SetServingStatus(sd.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	iaasv1.RegisterCallServiceServer(reg, &callService{s: s})
	s.health.SetServingStatus(iaasv1.CallService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	if cfg.Watch != nil {
		iaasv1.RegisterWatchServiceServer(reg, cfg.Watch)
		s.health.SetServingStatus(iaasv1.WatchService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	if cfg.Operations != nil {
		longrunningpb.RegisterOperationsServer(reg, cfg.Operations)
		s.health.SetServingStatus(longrunningpb.Operations_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// serveAction is the one generic handler behind every action RPC.
func (s *Server) serveAction(ctx context.Context, m *api.Method, req proto.Message) (proto.Message, error) {
	be, zone, err := s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := prepare(req, zone); err != nil {
		return nil, err
	}
	return be.InvokeMethod(ctx, m, req)
}

// resolveAction names the QingCloud action of a call, for metrics, logs and spans: the method's
// action for typed RPCs, the request's (when well-formed) for CallService, "" otherwise.
func (s *Server) resolveAction(fullMethod string, req any) string {
	if m := api.ByFullMethod(fullMethod); m != nil {
		return m.Action
	}
	if r, ok := req.(*iaasv1.CallRequest); ok && naming.ValidAction(r.GetAction()) {
		return r.GetAction()
	}
	return ""
}

// tenant returns the upstream and default zone for the call in ctx.
func (s *Server) tenant(ctx context.Context) (tenant.Upstream, string, error) {
	t, err := s.cfg.Tenants.Lookup(ctx)
	if err != nil {
		return nil, "", err
	}
	return t.Upstream, t.Zone, nil
}

// defaultZone is the default zone of the caller's tenant ("" when it has none).
func (s *Server) defaultZone(ctx context.Context) string {
	t, err := s.cfg.Tenants.Lookup(ctx)
	if err != nil {
		return ""
	}
	return t.Zone
}

// tenantName names the caller's tenant, which scopes its idempotency keys.
func (s *Server) tenantName(ctx context.Context) (string, error) {
	t, err := s.cfg.Tenants.Lookup(ctx)
	if err != nil {
		return "", err
	}
	return t.Profile, nil
}

// mutation reports whether a call changes something: a typed action RPC that is not read-only, or a
// CallService call of such an action.
func mutation(fullMethod string, req any) bool {
	if m := api.ByFullMethod(fullMethod); m != nil {
		return !m.ReadOnly
	}
	if r, ok := req.(*iaasv1.CallRequest); ok {
		return !api.ReadOnly(r.GetAction())
	}
	return false
}

// Methods lists the action RPCs the server serves.
func (s *Server) Methods() []*api.Method { return s.methods }

// transportOptions are the gRPC server options that shape how calls are served, apart from the
// interceptors and the caller's ServerOptions: the stream workers and the Limits.
func (s *Server) transportOptions() []grpc.ServerOption {
	// Calls run on a pool of GOMAXPROCS goroutines (a new one only when all are busy) instead of a
	// new goroutine each: a small call 2.11–2.23 → 1.98–2.02 × the direct call
	// (docs/bench-upstream.md); a long-lived watch stream simply keeps its worker.
	return append([]grpc.ServerOption{grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0)))}, s.limits.grpcOptions()...)
}

// GRPC returns the underlying gRPC server, for registering further services before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Telemetry returns the server's telemetry (metrics registry, tracer provider).
func (s *Server) Telemetry() *telemetry.Telemetry { return s.tel }

// MetricsHandler serves the Prometheus metrics; HTTPHandler mounts it at GET /metrics.
func (s *Server) MetricsHandler() http.Handler { return s.tel.MetricsHandler() }

// Health returns the health server, to flip statuses (e.g. NOT_SERVING during shutdown).
func (s *Server) Health() *health.Server { return s.health }

// Serve accepts gRPC connections on l until Shutdown or Stop.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Stop closes every gRPC connection and listener at once, and cancels the REST calls in flight
// (Shutdown is the graceful way).
func (s *Server) Stop() {
	s.health.Shutdown()
	s.inproc.stop()
	s.grpc.Stop()
}

// dialInProcess opens a client connection to this server that serves every call in process (see
// inProcess): the gateway's calls go through the same interceptors and stats handlers as a network
// client's, without serializing their messages.
func (s *Server) dialInProcess() (*grpc.ClientConn, error) { return s.inproc.dial() }

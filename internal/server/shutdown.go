package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// healthWatchGrace is how long a health Watch stream stays open after shutdown begins, so that it
// delivers NOT_SERVING before it ends (health Watch streams never end by themselves, and would
// otherwise hold the graceful stop until the grace period runs out).
const healthWatchGrace = 200 * time.Millisecond

// maxAnswerReserve caps the part of the shutdown grace period kept for the answers of canceled calls
// (see Shutdown).
const maxAnswerReserve = 2 * time.Second

// errCallsCut is the cause of the context of the calls Shutdown cancels.
var errCallsCut = errors.New("server shutting down: the grace period ended before the call did")

// ServeHTTP serves hs on l (over TLS when hs.TLSConfig is set) until Shutdown, which stops it with
// the rest of the server. hs is usually built around HTTPHandler (or MetricsHandler) and
// ConfigureHTTP.
func (s *Server) ServeHTTP(hs *http.Server, l net.Listener) error {
	if !s.track(l, func() { s.https = append(s.https, hs) }) {
		return http.ErrServerClosed
	}
	if hs.TLSConfig != nil {
		return hs.ServeTLS(l, "", "")
	}
	return hs.Serve(l)
}

// ServeHealth serves only the health service on l, in plaintext and without a token, until Shutdown;
// it shares the server's statuses, so it reports NOT_SERVING as soon as shutdown begins.
func (s *Server) ServeHealth(l net.Listener) error {
	// The connection limits of the API's listeners, and small messages only: anyone may reach it.
	hs := grpc.NewServer(append(s.limits.grpcOptions(), grpc.Creds(insecure.NewCredentials()), grpc.MaxRecvMsgSize(MaxHealthMessageBytes))...)
	healthpb.RegisterHealthServer(hs, s.health)
	if !s.track(l, func() { s.healthOnly = append(s.healthOnly, hs) }) {
		return grpc.ErrServerStopped
	}
	return hs.Serve(l)
}

// ServeMetrics serves only GET /metrics on l, in plaintext, until Shutdown, which stops it last so
// that scrapes see the drain.
func (s *Server) ServeMetrics(l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	ms := &http.Server{Handler: mux}
	s.ConfigureHTTP(ms) // the connection limits of the API's listeners
	if !s.track(l, func() { s.metricsOnly = append(s.metricsOnly, ms) }) {
		return http.ErrServerClosed
	}
	return ms.Serve(l)
}

// track records a listener's server for Shutdown with add (run under s.mu); once shutdown has begun
// it closes l instead and reports false.
func (s *Server) track(l net.Listener, add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		_ = l.Close()
		return false
	}
	add()
	return true
}

// Shutdown stops the server; it is the one shutdown sequence of the process:
//
//  1. health turns NOT_SERVING (load balancers stop sending calls), on the plaintext health listener
//     too; health Watch streams end shortly after;
//  2. new calls are refused with UNAVAILABLE, reason SHUTTING_DOWN (clients retry elsewhere), and the
//     HTTP servers stop accepting connections;
//  3. watch streams end with UNAVAILABLE (Config.Watch, when it has a Close method, as *watch.Hub);
//  4. calls in flight run on, over gRPC and REST, until they end or the grace period nearly ends;
//  5. at ctx's deadline minus a reserve (half the time left, at most 2 s), the calls still running
//     are canceled, and each answers within the reserve: a mutation that may have reached QingCloud
//     with CANCELED and ErrorInfo may_have_applied=true (check before repeating it), anything else
//     with UNAVAILABLE (safe to retry); REST callers get the same in the JSON body;
//  6. when ctx ends, connections still open are closed; the health and metrics listeners close last.
//
// Without a deadline, the calls are canceled when ctx ends and then get the reserve to answer.
// Shutdown returns nil when every call ended before the connections were closed (having been
// canceled or not), and an error saying so when some were cut. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	s.drain.begin()
	if w, ok := s.cfg.Watch.(interface{ Close() }); ok {
		w.Close()
	}
	s.mu.Lock()
	s.stopping = true // ServeHTTP and ServeHealth serve no more
	https := append([]*http.Server(nil), s.https...)
	healthOnly := append([]*grpc.Server(nil), s.healthOnly...)
	metricsOnly := append([]*http.Server(nil), s.metricsOnly...)
	s.mu.Unlock()
	defer func() {
		for _, hs := range healthOnly {
			hs.Stop()
		}
		for _, ms := range metricsOnly {
			_ = ms.Close()
		}
	}()

	// Stop gracefully: refuse new connections, let the calls in flight finish. http.Server.Shutdown
	// notices idle connections by polling at growing intervals (up to 500 ms), so once no call is in
	// flight each HTTP server is asked again, to see its last answers out without that delay.
	stopCtx, stopCancel := context.WithCancel(context.Background())
	defer stopCancel()
	grpcDone := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(grpcDone) }()
	var httpDone []chan struct{}
	var kick []func()
	for _, hs := range https {
		done := make(chan struct{})
		var once sync.Once
		stop := func() {
			_ = hs.Shutdown(stopCtx)
			once.Do(func() { close(done) })
		}
		go stop()
		httpDone = append(httpDone, done)
		kick = append(kick, func() { go stop() })
	}
	allDone := make(chan struct{})
	go func() {
		<-grpcDone
		for _, c := range httpDone {
			<-c
		}
		close(allDone)
	}()

	reserve := maxAnswerReserve
	var cutAt <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		reserve = min(time.Until(deadline)/2, maxAnswerReserve)
		t := time.NewTimer(time.Until(deadline) - reserve)
		defer t.Stop()
		cutAt = t.C
	}
	idle := s.drain.idle
	canceled := -1 // not yet
	for {
		select {
		case <-allDone:
			if canceled > 0 {
				s.log.Warn("shutdown grace period ended: canceled the calls still running; each was answered (CANCELED with may_have_applied=true when it may have reached QingCloud)", "canceled", canceled)
			}
			return nil
		case <-idle:
			idle = nil
			for _, k := range kick {
				k()
			}
			continue
		case <-cutAt:
		case <-ctx.Done():
			if canceled >= 0 {
				// The grace period is over: close every connection. GracefulStop returns only once
				// the cut calls' handlers have, which is not waited for.
				s.grpc.Stop()
				s.inproc.stop() // the REST calls, as closing the in-process connection did
				for _, hs := range https {
					_ = hs.Close()
				}
				return fmt.Errorf("shutdown grace period ended; closed the connections of calls still running (%d calls were canceled before)", canceled)
			}
		}
		cutAt = nil
		canceled = s.drain.cutCalls()
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), reserve)
			defer cancel()
		}
	}
}

// drain refuses new calls once shutdown has begun, and cancels the calls still running when the grace
// period nearly ends. Health checks stay answered (NOT_SERVING).
type drain struct {
	mu       sync.Mutex
	draining bool
	calls    map[*int]context.CancelCauseFunc // calls in flight
	done     chan struct{}                    // closed by begin
	idle     chan struct{}                    // closed once draining with no call in flight
}

func newDrain() *drain {
	return &drain{calls: map[*int]context.CancelCauseFunc{}, done: make(chan struct{}), idle: make(chan struct{})}
}

// begin starts refusing new calls.
func (d *drain) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.draining {
		d.draining = true
		close(d.done)
		d.checkIdleLocked()
	}
}

func (d *drain) checkIdleLocked() {
	if d.draining && len(d.calls) == 0 {
		select {
		case <-d.idle:
		default:
			close(d.idle)
		}
	}
}

// enter admits a call (nil, nil when shutting down) and returns its context, which cutCalls cancels,
// and the function to call when it ends.
func (d *drain) enter(ctx context.Context) (context.Context, func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return nil, nil
	}
	ctx, release := d.trackLocked(ctx)
	return ctx, release
}

// detach returns a context for work a call goes on with after its caller went away (the first call of
// an idempotency key): free of the caller's cancellation, but canceled by cutCalls like a call, and
// waited for by the drain until its release.
func (d *drain) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.trackLocked(context.WithoutCancel(ctx))
}

// trackLocked derives a context that cutCalls cancels and that the drain counts as in flight until
// its release is called. d.mu is held.
func (d *drain) trackLocked(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	key := new(int)
	d.calls[key] = cancel
	return ctx, func() {
		cancel(nil)
		d.mu.Lock()
		delete(d.calls, key)
		d.checkIdleLocked()
		d.mu.Unlock()
	}
}

// cutCalls cancels every call in flight and returns how many there were.
func (d *drain) cutCalls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cancel := range d.calls {
		cancel(errCallsCut)
	}
	return len(d.calls)
}

func isHealth(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// errShuttingDown is the error of calls that arrive during shutdown: UNAVAILABLE, which clients retry
// (on another instance, behind a load balancer).
func errShuttingDown() error {
	return qcerr.New(codes.Unavailable, qcerr.ReasonShuttingDown, "server shutting down; retry the call", nil)
}

// answerCut is the answer of a call that Shutdown canceled (ctx's cause is errCallsCut). A call that
// still ended on its own keeps its answer; one that ended because of the cancellation says so: a
// mutation that may have reached QingCloud is CANCELED with may_have_applied=true (repeating it
// could apply it twice), anything else (a read, or a mutation never sent) is UNAVAILABLE (nothing was
// applied: retry elsewhere).
func answerCut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errCallsCut) || status.Code(err) != codes.Canceled {
		return err
	}
	action := qcerr.Info(err).GetMetadata()["action"]
	if qcerr.MayHaveApplied(err) && action != "" && !api.ReadOnly(action) {
		return qcerr.New(codes.Canceled, qcerr.ReasonShuttingDown,
			fmt.Sprintf("server shutting down: QingCloud %s was canceled after it was sent and may have been applied: check the result before repeating it", action),
			map[string]string{"action": action, "may_have_applied": "true"})
	}
	meta := map[string]string{"may_have_applied": "false"}
	if action != "" {
		meta["action"] = action
	}
	return qcerr.New(codes.Unavailable, qcerr.ReasonShuttingDown, "server shutting down before the call ended; nothing was applied: retry the call", meta)
}

func (d *drain) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if isHealth(info.FullMethod) {
			return handler(ctx, req)
		}
		cctx, leave := d.enter(ctx)
		if leave == nil {
			return nil, errShuttingDown()
		}
		defer leave()
		resp, err := handler(cctx, req)
		return resp, answerCut(cctx, err)
	}
}

func (d *drain) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !isHealth(info.FullMethod) {
			ctx, leave := d.enter(ss.Context())
			if leave == nil {
				return errShuttingDown()
			}
			defer leave()
			return answerCut(ctx, handler(srv, &ctxStream{ServerStream: ss, ctx: ctx}))
		}
		// A health Watch: end it shortly after shutdown begins.
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		go func() {
			select {
			case <-d.done:
				t := time.NewTimer(healthWatchGrace)
				defer t.Stop()
				select {
				case <-t.C:
					cancel()
				case <-ctx.Done():
				}
			case <-ctx.Done():
			}
		}()
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream is a ServerStream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

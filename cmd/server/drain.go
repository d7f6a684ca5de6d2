package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// healthWatchGrace is how long a health Watch stream stays open after shutdown begins, so that it
// delivers NOT_SERVING before it ends (health Watch streams never end by themselves, and would
// otherwise hold GracefulStop until the grace period runs out).
const healthWatchGrace = 200 * time.Millisecond

// drain refuses new calls once shutdown has begun. Health checks stay answered (NOT_SERVING).
type drain struct {
	once sync.Once
	done chan struct{}
}

func newDrain() *drain { return &drain{done: make(chan struct{})} }

// begin starts refusing new calls.
func (d *drain) begin() { d.once.Do(func() { close(d.done) }) }

func (d *drain) draining() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func isHealth(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// errShuttingDown is the error of calls that arrive during shutdown: UNAVAILABLE, which clients retry
// (on another instance, behind a load balancer).
func errShuttingDown() error {
	st, err := status.New(codes.Unavailable, "server shutting down; retry the call").WithDetails(
		&errdetails.ErrorInfo{Reason: "SHUTTING_DOWN", Domain: qcerr.Domain})
	if err != nil {
		return status.Error(codes.Unavailable, "server shutting down; retry the call")
	}
	return st.Err()
}

func (d *drain) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if d.draining() && !isHealth(info.FullMethod) {
			return nil, errShuttingDown()
		}
		return handler(ctx, req)
	}
}

func (d *drain) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !isHealth(info.FullMethod) {
			if d.draining() {
				return errShuttingDown()
			}
			return handler(srv, ss)
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

package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// UnaryServerInterceptor is the one per-call interceptor of the gRPC server, first in its chain. For
// every unary call it
//
//   - continues the caller's trace when tracing is off (see GRPCServerHandler: with tracing on, the
//     otelgrpc stats handler did it and started the server span),
//   - assigns the request id (the caller's x-request-id when sane, else a new one), sends it back as
//     response header metadata and puts it, with the action resolve names, in the call's context
//     (CallFrom) and on the server span,
//   - records the call in the RPC metrics,
//   - writes the "finished call" line to log (nil discards) at FinishedCallLevel of its code, with the
//     fields of docs/observability.md.
//
// Everything else in the chain (recovery, auth, ...) runs inside it, so the metrics and the line see
// every outcome, a recovered panic included.
func (t *Telemetry) UnaryServerInterceptor(resolve ActionResolver, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		action := ""
		if resolve != nil {
			action = resolve(info.FullMethod, req)
		}
		ctx = t.begin(ctx, info.FullMethod, action, grpc.SetHeader)
		s := t.series(rpcKey{info.FullMethod, "unary", action})
		s.inFlight.Inc()
		resp, err := handler(ctx, req)
		d := time.Since(start)
		t.done(s, "unary", d, err)
		logFinished(ctx, log, s, "unary", start, d, err)
		return resp, err
	}
}

// StreamServerInterceptor is the streaming counterpart of UnaryServerInterceptor; it also counts the
// messages each stream sends.
func (t *Telemetry) StreamServerInterceptor(resolve ActionResolver, log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		action := ""
		if resolve != nil {
			action = resolve(info.FullMethod, nil)
		}
		ctx := t.begin(ss.Context(), info.FullMethod, action, func(ctx context.Context, md metadata.MD) error { return ss.SetHeader(md) })
		typ := streamType(info)
		s := t.series(rpcKey{info.FullMethod, typ, action})
		s.inFlight.Inc()
		err := handler(srv, &observedStream{ServerStream: ss, ctx: ctx, sent: s.sent})
		d := time.Since(start)
		t.done(s, typ, d, err)
		logFinished(ctx, log, s, typ, start, d, err)
		return err
	}
}

// begin continues the caller's trace (tracing off), assigns the call its request id, sends it back
// with setHeader and annotates the current span. The returned context carries the Call.
func (t *Telemetry) begin(ctx context.Context, fullMethod, action string, setHeader func(context.Context, metadata.MD) error) context.Context {
	if t.sdk == nil {
		ctx = t.continueTrace(ctx, fullMethod)
	}
	c := &callCtx{Context: ctx, call: Call{RequestID: incomingRequestID(ctx), Action: action}}
	_ = setHeader(ctx, metadata.MD{RequestIDHeader: {c.call.RequestID}})
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("request_id", c.call.RequestID))
		if action != "" {
			span.SetAttributes(attribute.String("qingcloud.action", action))
		}
	}
	return c
}

// callCtx is a context carrying a Call: context.WithValue and the Call in one allocation.
type callCtx struct {
	context.Context
	call Call
}

func (c *callCtx) Value(key any) any {
	if key == (callKey{}) {
		return &c.call
	}
	return c.Context.Value(key)
}

// observedStream carries the call's context and counts sent messages.
type observedStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent prometheus.Counter
}

func (s *observedStream) Context() context.Context { return s.ctx }

func (s *observedStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Inc()
	}
	return err
}

// FinishedCallLevel is the level of the "finished call" line of a call that ended with code c: debug
// for OK (a line per successful call at info level cost a small call about 1 % of its CPU, and the
// metrics count those calls), info for the caller's errors (Canceled, InvalidArgument, NotFound,
// AlreadyExists, Unauthenticated), warn for DeadlineExceeded, PermissionDenied, ResourceExhausted,
// FailedPrecondition, Aborted, OutOfRange and Unavailable, error for the rest (server faults).
func FinishedCallLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK:
		return slog.LevelDebug
	case codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// Keys and values of the "finished call" line (docs/observability.md). The line had these since it
// was go-grpc-middleware's, and keeps them.
const (
	msgFinishedCall = "finished call"
	keyAction       = "qingcloud.action"
)

// logFinished writes the "finished call" line of a call that took d from start and ended with err.
// Nothing is built unless log takes the line's level. io.EOF counts as success.
func logFinished(ctx context.Context, log *slog.Logger, s *rpcSeries, typ string, start time.Time, d time.Duration, err error) {
	if log == nil {
		return
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	code := status.Code(err)
	lvl := FinishedCallLevel(code)
	if !log.Enabled(ctx, lvl) {
		return
	}
	var buf [13]slog.Attr
	attrs := buf[:0]
	if c := CallFrom(ctx); c != nil && c.Action != "" {
		attrs = append(attrs, slog.String(keyAction, c.Action))
	}
	attrs = append(attrs,
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", s.svc),
		slog.String("grpc.method", s.method),
		slog.String("grpc.method_type", typ),
	)
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("grpc.start_time", start.Format(time.RFC3339)))
	if dl, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", dl.Format(time.RFC3339)))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	attrs = append(attrs, slog.String("grpc.time_ms", timeMillis(d)))
	log.LogAttrs(ctx, lvl, msgFinishedCall, attrs...)
}

// timeMillis formats d in milliseconds with microsecond precision, as a float32 in its shortest form
// (e.g. "0.123"), as go-grpc-middleware's line did.
func timeMillis(d time.Duration) string {
	ms := float32(d.Nanoseconds()/1000) / 1000
	return strconv.FormatFloat(float64(ms), 'g', -1, 32)
}

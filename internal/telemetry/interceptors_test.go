package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// lineService is a gRPC service whose calls end as their request says: {"code": n} fails with code n,
// {"panic": true} panics, {"eof": true} returns io.EOF, {"sends": n} makes the stream send n messages first.
var lineService = grpc.ServiceDesc{
	ServiceName: "test.Lines",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := &structpb.Struct{}
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) { return lineOutcome(req.(*structpb.Struct), nil) }
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Lines/Unary"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := &structpb.Struct{}
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			_, err := lineOutcome(in, ss)
			return err
		},
	}},
}

func lineOutcome(in *structpb.Struct, ss grpc.ServerStream) (any, error) {
	f := in.GetFields()
	if ss != nil {
		for range int(f["sends"].GetNumberValue()) {
			if err := ss.SendMsg(&structpb.Struct{}); err != nil {
				return nil, err
			}
		}
	}
	if f["panic"].GetBoolValue() {
		panic("boom")
	}
	if f["eof"].GetBoolValue() {
		return nil, io.EOF
	}
	if c := codes.Code(f["code"].GetNumberValue()); c != codes.OK {
		return nil, status.Error(c, "failed as asked: "+c.String())
	}
	return &structpb.Struct{}, nil
}

// lineServer serves lineService with the given interceptors and returns a client connection.
func lineServer(t *testing.T, unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	srv.RegisterService(&lineService, struct{}{})
	return testutil.ServeBufconn(t, srv)
}

// TestFinishedCallLineAsMiddleware checks that the "finished call" line the telemetry interceptors
// write is the line go-grpc-middleware's logging interceptor wrote before them, with the options the
// server gave it (docs/observability.md): same message, level, keys in the same order and values,
// request and trace ids, for unary calls and streams, successes, errors of each level and a
// recovered panic. Only the times differ.
func TestFinishedCallLineAsMiddleware(t *testing.T) {
	tel, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(fullMethod string, req any) string {
		if strings.HasSuffix(fullMethod, "/Unary") {
			return "DescribeZones"
		}
		return ""
	}
	newLog := func(w *testutil.SyncBuffer) *slog.Logger {
		return WrapLogger(slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		return status.Error(codes.Internal, "internal error; the server logged the details")
	})

	var ours, theirs testutil.SyncBuffer
	oursConn := lineServer(t,
		[]grpc.UnaryServerInterceptor{tel.UnaryServerInterceptor(resolve, newLog(&ours)), recovery.UnaryServerInterceptor(rec)},
		[]grpc.StreamServerInterceptor{tel.StreamServerInterceptor(resolve, newLog(&ours)), recovery.StreamServerInterceptor(rec)})

	// The chain before: telemetry without a line, then go-grpc-middleware's logging interceptor.
	mwLog := newLog(&theirs)
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		mwLog.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	opts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(func(c codes.Code) logging.Level {
			if c == codes.OK {
				return logging.LevelDebug
			}
			return logging.DefaultServerCodeToLevel(c)
		}),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			if c := CallFrom(ctx); c != nil && c.Action != "" {
				return logging.Fields{"qingcloud.action", c.Action}
			}
			return nil
		}),
	}
	theirsConn := lineServer(t,
		[]grpc.UnaryServerInterceptor{tel.UnaryServerInterceptor(resolve, nil), logging.UnaryServerInterceptor(logger, opts...), recovery.UnaryServerInterceptor(rec)},
		[]grpc.StreamServerInterceptor{tel.StreamServerInterceptor(resolve, nil), logging.StreamServerInterceptor(logger, opts...), recovery.StreamServerInterceptor(rec)})

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type call struct {
		name     string
		stream   bool
		req      map[string]any
		md       []string
		deadline bool
	}
	calls := []call{
		{name: "ok", req: map[string]any{}},
		{name: "ok with request id and trace", req: map[string]any{}, md: []string{"x-request-id", "rid-1", "traceparent", traceparent}},
		{name: "ok with deadline", req: map[string]any{}, deadline: true},
		{name: "panic", req: map[string]any{"panic": true}},
		{name: "io.EOF", req: map[string]any{"eof": true}},
		{name: "stream io.EOF", stream: true, req: map[string]any{"eof": true}},
		{name: "stream ok", stream: true, req: map[string]any{"sends": 2}},
		{name: "stream error after sends", stream: true, req: map[string]any{"sends": 1, "code": float64(codes.Unavailable)}},
		{name: "stream panic", stream: true, req: map[string]any{"panic": true}},
	}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		calls = append(calls, call{name: c.String(), req: map[string]any{"code": float64(c)}})
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			var lines [2]map[string]any
			for i, conn := range []*grpc.ClientConn{oursConn, theirsConn} {
				buf := []*testutil.SyncBuffer{&ours, &theirs}[i]
				before := len(buf.String())
				in, err := structpb.NewStruct(c.req)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if len(c.md) > 0 {
					ctx = metadata.AppendToOutgoingContext(ctx, c.md...)
				}
				if c.deadline {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Hour)
					defer cancel()
				}
				if c.stream {
					st, err := conn.NewStream(ctx, &lineService.Streams[0], "/test.Lines/Stream")
					if err != nil {
						t.Fatal(err)
					}
					if err := st.SendMsg(in); err != nil {
						t.Fatal(err)
					}
					_ = st.CloseSend()
					for st.RecvMsg(&structpb.Struct{}) == nil {
					}
				} else {
					_ = conn.Invoke(ctx, "/test.Lines/Unary", in, &structpb.Struct{})
				}
				// The line is written before the status is sent, so the call's end orders it.
				line := strings.TrimSpace(buf.String()[before:])
				if line == "" {
					t.Fatal("no finished call line")
				}
				if strings.Count(line, "\n") != 0 {
					t.Fatalf("more than one line:\n%s", line)
				}
				lines[i] = orderedLine(t, line)
			}
			if got, want := fmt.Sprint(lines[0]["keys"]), fmt.Sprint(lines[1]["keys"]); got != want {
				t.Errorf("keys\n ours   %s\n theirs %s", got, want)
			}
			for k, want := range lines[1] {
				if k == "keys" || k == "time" || k == "grpc.time_ms" || k == "grpc.start_time" || k == "request_id" && !strings.Contains(fmt.Sprint(c.md), "rid-1") {
					continue
				}
				if got := lines[0][k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: ours %v, theirs %v", k, got, want)
				}
			}
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(lines[0]["grpc.start_time"])); err != nil {
				t.Errorf("grpc.start_time %v: %v", lines[0]["grpc.start_time"], err)
			}
		})
	}
}

// orderedLine decodes a JSON log line into its values and, under "keys", its keys in order.
func orderedLine(t *testing.T, line string) map[string]any {
	t.Helper()
	out := map[string]any{}
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	out["keys"] = keys
	return out
}

// TestTimeMillisFormat: grpc.time_ms is formatted as fmt's %v of the float32 milliseconds, as
// go-grpc-middleware did.
func TestTimeMillisFormat(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 123456 * time.Nanosecond, time.Millisecond, 1500 * time.Microsecond,
		999999 * time.Microsecond, time.Second, 100 * time.Second, 1000 * time.Second, 3 * time.Hour, 987654321 * time.Microsecond} {
		ms := float32(d.Nanoseconds()/1000) / 1000
		if got, want := timeMillis(d), fmt.Sprintf("%v", ms); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

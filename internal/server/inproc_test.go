package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// The in-process connection is checked against the real thing: the same services and interceptors
// served by a grpc.Server over bufconn, every answer compared (message, header and trailer metadata,
// status with details).

// echo is the test service. Its request (a Struct) says what to do: "header"/"trailer" set metadata,
// "send_header" sends the header early, "fail" picks an error ("status", "plain", "context"), "n"
// the number of stream messages, "mutate" changes the request and the answer after use.
type echo struct {
	mu   sync.Mutex
	kept []*structpb.Struct // answers kept by the handler, to check the caller got copies
}

func (e *echo) answer(ctx context.Context, req *structpb.Struct) (*structpb.Struct, error) {
	f := req.GetFields()
	if h := f["header"].GetStringValue(); h != "" {
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-h", h)); err != nil {
			return nil, err
		}
	}
	if f["send_header"].GetBoolValue() {
		if err := grpc.SendHeader(ctx, metadata.Pairs("x-early", "1")); err != nil {
			return nil, err
		}
	}
	if tr := f["trailer"].GetStringValue(); tr != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-t", tr))
	}
	md, _ := metadata.FromIncomingContext(ctx)
	_, hasDeadline := ctx.Deadline()
	out, _ := structpb.NewStruct(map[string]any{
		"x_req":        fmt.Sprint(md.Get("x-req")),
		"content_type": fmt.Sprint(md.Get("content-type")),
		"user_agent":   len(md.Get("user-agent")),
		"deadline":     hasDeadline,
		"leaked":       ctx.Value(clientKey{}) != nil,
		"echo":         f["echo"].GetStringValue(),
	})
	switch f["fail"].GetStringValue() {
	case "status":
		st, _ := status.New(codes.FailedPrecondition, "not now").WithDetails(&errdetails.ErrorInfo{Reason: "BUSY", Domain: "test"})
		return nil, st.Err()
	case "wrapped":
		return nil, fmt.Errorf("wrapped: %w", status.Error(codes.NotFound, "gone"))
	case "plain":
		return nil, errors.New("plain failure")
	case "context":
		return nil, context.DeadlineExceeded
	}
	if f["mutate"].GetBoolValue() {
		req.Fields["echo"] = structpb.NewStringValue("changed by the handler")
		e.mu.Lock()
		e.kept = append(e.kept, out)
		e.mu.Unlock()
	}
	return out, nil
}

type clientKey struct{}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := new(structpb.Struct)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, r any) (any, error) { return srv.(*echo).answer(ctx, r.(*structpb.Struct)) }
			if interceptor == nil {
				return h(ctx, req)
			}
			return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Echo/Unary"}, h)
		},
	}, {
		MethodName: "Block",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(structpb.Struct)); err != nil {
				return nil, err
			}
			blocked <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			req := new(structpb.Struct)
			if err := ss.RecvMsg(req); err != nil {
				return err
			}
			n := int(req.GetFields()["n"].GetNumberValue())
			f := req.GetFields()
			if h := f["header"].GetStringValue(); h != "" {
				_ = ss.SetHeader(metadata.Pairs("x-h", h))
			}
			if tr := f["trailer"].GetStringValue(); tr != "" {
				ss.SetTrailer(metadata.Pairs("x-t", tr))
			}
			msg := &structpb.Struct{Fields: map[string]*structpb.Value{}}
			for i := range n {
				msg.Fields["i"] = structpb.NewNumberValue(float64(i)) // the same message, reused
				if err := ss.SendMsg(msg); err != nil {
					return err
				}
			}
			if f["fail"].GetStringValue() != "" {
				return status.Error(codes.Aborted, "stream failed")
			}
			return nil
		},
	}},
}

var blocked = make(chan struct{}, 1)

// order records the interceptors' order of entry.
type order struct {
	mu  sync.Mutex
	got []string
}

func (o *order) unary(name string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		o.mu.Lock()
		o.got = append(o.got, name+" "+info.FullMethod)
		o.mu.Unlock()
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-seen-by", name))
		return h(ctx, req)
	}
}

func (o *order) stream(name string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		o.mu.Lock()
		o.got = append(o.got, name+" "+info.FullMethod)
		o.mu.Unlock()
		return h(srv, ss)
	}
}

func (o *order) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

// twin serves echo over bufconn and in process, with the same interceptors.
type twin struct {
	loop, inproc *grpc.ClientConn
	p            *inProcess
	svc          *echo
	order        *order
}

func newTwin(t *testing.T) *twin {
	t.Helper()
	o := &order{}
	unary := []grpc.UnaryServerInterceptor{o.unary("a"), o.unary("b"), o.unary("c")}
	stream := []grpc.StreamServerInterceptor{o.stream("a"), o.stream("b")}
	p := newInProcess(unary, stream, nil, nil)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	svc := &echo{}
	inprocRegistrar{srv: srv, p: p}.RegisterService(&echoDesc, svc)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	loop, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loop.Close(); _ = in.Close() })
	return &twin{loop: loop, inproc: in, p: p, svc: svc, order: o}
}

// outcome is everything a caller can observe of a call.
type outcome struct {
	Reply   []*structpb.Struct
	Header  metadata.MD
	Trailer metadata.MD
	Status  *status.Status
	Order   []string
}

// differs says how o differs from want ("" if it does not).
func (o outcome) differs(want outcome) string {
	var d []string
	if len(o.Reply) != len(want.Reply) {
		d = append(d, fmt.Sprintf("%d messages, want %d", len(o.Reply), len(want.Reply)))
	} else {
		for i := range o.Reply {
			if !proto.Equal(o.Reply[i], want.Reply[i]) {
				d = append(d, fmt.Sprintf("message %d: %v, want %v", i, o.Reply[i], want.Reply[i]))
			}
		}
	}
	if !reflect.DeepEqual(o.Header, want.Header) {
		d = append(d, fmt.Sprintf("header %v, want %v", o.Header, want.Header))
	}
	if !reflect.DeepEqual(o.Trailer, want.Trailer) {
		d = append(d, fmt.Sprintf("trailer %v, want %v", o.Trailer, want.Trailer))
	}
	if !proto.Equal(o.Status.Proto(), want.Status.Proto()) {
		d = append(d, fmt.Sprintf("status %v, want %v", o.Status.Proto(), want.Status.Proto()))
	}
	if !slices.Equal(o.Order, want.Order) {
		d = append(d, fmt.Sprintf("interceptors %v, want %v", o.Order, want.Order))
	}
	return strings.Join(d, "; ")
}

func unaryOutcome(ctx context.Context, tw *twin, conn *grpc.ClientConn, req *structpb.Struct) outcome {
	var o outcome
	reply := new(structpb.Struct)
	err := conn.Invoke(ctx, "/test.Echo/Unary", req, reply, grpc.Header(&o.Header), grpc.Trailer(&o.Trailer))
	if err == nil {
		o.Reply = []*structpb.Struct{reply}
	}
	o.Status = status.Convert(err)
	o.Order = tw.order.take()
	return o
}

func streamOutcome(ctx context.Context, tw *twin, conn *grpc.ClientConn, req *structpb.Struct) outcome {
	var o outcome
	cs, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Stream")
	if err == nil {
		err = cs.SendMsg(req)
	}
	if err == nil {
		err = cs.CloseSend()
	}
	if err == nil {
		o.Header, err = cs.Header()
	}
	for err == nil {
		m := new(structpb.Struct)
		if err = cs.RecvMsg(m); err == nil {
			o.Reply = append(o.Reply, m)
		}
	}
	if err == io.EOF {
		err = nil
	}
	if cs != nil {
		o.Trailer = cs.Trailer()
	}
	o.Status = status.Convert(err)
	o.Order = tw.order.take()
	return o
}

func TestInProcessMatchesLoopback(t *testing.T) {
	tw := newTwin(t)
	st := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name   string
		stream bool
		req    map[string]any
		md     []string
		dl     bool
	}{
		{name: "plain", req: map[string]any{"echo": "hi"}},
		{name: "metadata in and out", req: map[string]any{"header": "h1", "trailer": "t1"}, md: []string{"x-req", "r1", "x-req", "r2"}},
		{name: "header sent early", req: map[string]any{"send_header": true, "header": "late"}},
		{name: "deadline", req: map[string]any{}, dl: true},
		{name: "status with details", req: map[string]any{"fail": "status", "header": "h", "trailer": "t"}},
		{name: "wrapped status", req: map[string]any{"fail": "wrapped"}},
		{name: "plain error", req: map[string]any{"fail": "plain"}},
		{name: "context error", req: map[string]any{"fail": "context"}},
		{name: "stream", stream: true, req: map[string]any{"n": 3, "header": "h", "trailer": "t"}},
		{name: "stream without header", stream: true, req: map[string]any{"n": 0}},
		{name: "stream fails after messages", stream: true, req: map[string]any{"n": 2, "fail": "x", "trailer": "t"}},
		{name: "stream fails at once", stream: true, req: map[string]any{"fail": "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2]outcome
			for i, conn := range []*grpc.ClientConn{tw.loop, tw.inproc} {
				ctx := context.WithValue(context.Background(), clientKey{}, "client only")
				if len(tc.md) > 0 {
					ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
				}
				if tc.dl {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, time.Hour)
					defer cancel()
				}
				if tc.stream {
					got[i] = streamOutcome(ctx, tw, conn, st(tc.req))
				} else {
					got[i] = unaryOutcome(ctx, tw, conn, st(tc.req))
				}
			}
			if d := got[1].differs(got[0]); d != "" {
				t.Errorf("in process differs from the loopback connection: %s", d)
			}
			if tc.name == "plain" && (len(got[1].Order) != 3 || got[1].Reply[0].GetFields()["leaked"].GetBoolValue()) {
				t.Errorf("in process: interceptors %v, answer %v", got[1].Order, got[1].Reply)
			}
		})
	}
}

// The handler's request is not the caller's: the handler's changes stay on its side. A unary answer
// is handed over (handOver): the caller gets the handler's answer, field for field, without a copy.
func TestInProcessCopiesMessages(t *testing.T) {
	tw := newTwin(t)
	req, _ := structpb.NewStruct(map[string]any{"mutate": true, "echo": "mine"})
	reply := new(structpb.Struct)
	if err := tw.inproc.Invoke(context.Background(), "/test.Echo/Unary", req, reply); err != nil {
		t.Fatal(err)
	}
	if got := req.GetFields()["echo"].GetStringValue(); got != "mine" {
		t.Errorf("the handler changed the caller's request: echo = %q", got)
	}
	if kept := tw.svc.kept[len(tw.svc.kept)-1]; !proto.Equal(reply, kept) || reply.GetFields()["echo"].GetStringValue() != "mine" {
		t.Errorf("the caller got %v, the handler answered %v", reply, kept)
	}
	// A stream handler reuses its message after each SendMsg; each message received is its own.
	req, _ = structpb.NewStruct(map[string]any{"n": 3})
	o := streamOutcome(context.Background(), tw, tw.inproc, req)
	var is []float64
	for _, m := range o.Reply {
		is = append(is, m.GetFields()["i"].GetNumberValue())
	}
	if o.Status.Code() != codes.OK || !slices.Equal(is, []float64{0, 1, 2}) {
		t.Errorf("stream: %v, messages %v", o.Status.Code(), is)
	}
}

// The caller's deadline is the handler's, and cancelling the caller cancels the handler.
func TestInProcessDeadlineAndCancel(t *testing.T) {
	tw := newTwin(t)
	dl := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	var seen time.Time
	p := tw.p
	p.methods["/test.Echo/Deadline"] = inprocMethod{impl: tw.svc, unary: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		seen, _ = ctx.Deadline()
		return &structpb.Struct{}, dec(new(structpb.Struct))
	}}
	if err := tw.inproc.Invoke(ctx, "/test.Echo/Deadline", &structpb.Struct{}, new(structpb.Struct)); err != nil {
		t.Fatal(err)
	}
	if !seen.Equal(dl) {
		t.Errorf("handler deadline %v, want %v", seen, dl)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- tw.inproc.Invoke(ctx, "/test.Echo/Block", &structpb.Struct{}, new(structpb.Struct)) }()
	<-blocked
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call: %v, want CANCELED", err)
	}
	if err := tw.inproc.Invoke(context.Background(), "/test.Echo/Nope", &structpb.Struct{}, new(structpb.Struct)); status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method: %v, want UNIMPLEMENTED", err)
	}
}

// A request larger than a server would receive is refused as the server refuses it.
func TestInProcessRequestBound(t *testing.T) {
	tw := newTwin(t)
	big := &structpb.Struct{Fields: map[string]*structpb.Value{"echo": structpb.NewStringValue(string(make([]byte, maxRecvMsgSize)))}}
	var codesSeen []codes.Code
	for _, conn := range []*grpc.ClientConn{tw.loop, tw.inproc} {
		err := conn.Invoke(context.Background(), "/test.Echo/Unary", big, new(structpb.Struct))
		codesSeen = append(codesSeen, status.Code(err))
	}
	if !slices.Equal(codesSeen, []codes.Code{codes.ResourceExhausted, codes.ResourceExhausted}) {
		t.Errorf("a request above 4 MiB: %v (loopback, in process), want RESOURCE_EXHAUSTED", codesSeen)
	}
	if proto.Size(big) <= maxRecvMsgSize {
		t.Fatal("the test request is not above the bound")
	}
}

// stop cancels the calls in flight and refuses new ones, as closing the connection did.
func TestInProcessStop(t *testing.T) {
	tw := newTwin(t)
	errc := make(chan error, 1)
	go func() {
		errc <- tw.inproc.Invoke(context.Background(), "/test.Echo/Block", &structpb.Struct{}, new(structpb.Struct))
	}()
	<-blocked
	tw.p.stop()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("call in flight at stop: %v, want CANCELED", err)
	}
	if err := tw.inproc.Invoke(context.Background(), "/test.Echo/Unary", &structpb.Struct{}, new(structpb.Struct)); status.Code(err) != codes.Unavailable {
		t.Errorf("call after stop: %v, want UNAVAILABLE", err)
	}
}

// Cancelling a stream's caller ends its handler: a handler blocked sending gets its context's error.
func TestInProcessStreamCancel(t *testing.T) {
	tw := newTwin(t)
	handlerErr := make(chan error, 1)
	desc := &grpc.StreamDesc{StreamName: "Endless", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		if err := ss.RecvMsg(new(structpb.Struct)); err != nil {
			handlerErr <- err
			return err
		}
		for {
			if err := ss.SendMsg(&structpb.Struct{}); err != nil {
				handlerErr <- err
				return err
			}
		}
	}}
	tw.p.methods["/test.Echo/Endless"] = inprocMethod{impl: tw.svc, stream: desc}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs, err := tw.inproc.NewStream(ctx, desc, "/test.Echo/Endless")
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(&structpb.Struct{}); err != nil {
		t.Fatal(err)
	}
	_ = cs.CloseSend()
	if err := cs.RecvMsg(new(structpb.Struct)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-handlerErr; status.Code(err) != codes.Canceled {
		t.Errorf("handler's send after the caller cancelled: %v, want CANCELED", err)
	}
	for {
		if err := cs.RecvMsg(new(structpb.Struct)); err != nil {
			if status.Code(err) != codes.Canceled {
				t.Errorf("caller's receive after cancelling: %v, want CANCELED", err)
			}
			break
		}
	}
}

// handOver gives the caller every field the handler set, presence included, and its unknown fields;
// a nil answer of the right type is an empty message, as it is over a connection.
func TestHandOver(t *testing.T) {
	full := &iaasv1.DescribeInstancesResponse{
		Action:     proto.String("DescribeInstancesResponse"),
		RetCode:    proto.Int32(0), // set to its zero value: present
		TotalCount: proto.Int32(2),
		InstanceSet: []*iaasv1.Instance{
			{InstanceId: proto.String("i-1"), CreateTime: timestamppb.New(time.Unix(1700000000, 5)), DnsAliases: []*iaasv1.DnsAlias{}},
			{InstanceId: proto.String("i-2"), Eip: &iaasv1.Eip{EipId: proto.String("eip-1")}},
		},
	}
	withUnknown := proto.Clone(full).(*iaasv1.DescribeInstancesResponse)
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "later field"))
	for _, tc := range []struct {
		name string
		resp proto.Message
		want proto.Message
	}{
		{"every kind of field", full, full},
		{"unknown fields", withUnknown, withUnknown},
		{"empty", &iaasv1.DescribeInstancesResponse{}, &iaasv1.DescribeInstancesResponse{}},
		{"nil of the right type", (*iaasv1.DescribeInstancesResponse)(nil), &iaasv1.DescribeInstancesResponse{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := &iaasv1.DescribeInstancesResponse{Action: proto.String("stale"), InstanceSet: []*iaasv1.Instance{{}}}
			if err := handOver(reply, tc.resp); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(reply, tc.want) {
				t.Errorf("reply %v, want %v", reply, tc.want)
			}
			if string(reply.ProtoReflect().GetUnknown()) != string(tc.want.ProtoReflect().GetUnknown()) {
				t.Errorf("unknown fields %q, want %q", reply.ProtoReflect().GetUnknown(), tc.want.ProtoReflect().GetUnknown())
			}
			if tc.want == full && (reply.RetCode == nil || reply.InstanceSet[0] != full.InstanceSet[0]) {
				t.Errorf("ret_code present %v, first instance handed over %v", reply.RetCode != nil, reply.InstanceSet[0] == full.InstanceSet[0])
			}
		})
	}
	for _, resp := range []any{nil, "not a message"} {
		if err := handOver(new(iaasv1.DescribeInstancesResponse), resp); status.Code(err) != codes.Internal {
			t.Errorf("handOver of %v: %v, want INTERNAL", resp, err)
		}
	}
}

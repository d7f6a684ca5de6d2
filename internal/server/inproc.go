package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// inProcess serves the REST gateway's gRPC calls without a transport: the handlers of the services
// registered on the server run in the caller's process and goroutine (a goroutine per stream), through
// the server's interceptor chains and the otelgrpc stats handlers of both ends, with the messages
// copied (proto.Merge) rather than serialized and framed, and a unary answer handed over without a
// copy (handOver). A call sees what it would see over a
// connection: incoming metadata (the gateway's outgoing metadata plus :authority, content-type and
// user-agent), the caller's deadline and cancellation but none of its context values, a peer, header
// and trailer metadata set with grpc.SetHeader/SetTrailer or the stream's, the status conversion of
// grpc-go (a non-status error becomes UNKNOWN, a context error its code) and the 4 MiB bound on a
// request message. ServerOptions' interceptors and tap handles are not run (Config has none of the
// first; the REST path checks callers with Config.CheckCaller instead of the tap).
type inProcess struct {
	methods map[string]inprocMethod // by full method name, "/pkg.Service/Method"
	unary   grpc.UnaryServerInterceptor
	stream  grpc.StreamServerInterceptor
	// clientStats and serverStats are the stats handlers of the gateway's side and the server's side.
	clientStats, serverStats []stats.Handler
	maxRecv                  int

	mu       sync.RWMutex // guards stopping
	stopping bool
	stopCtx  context.Context // cancelled by stop: in-flight calls are cut
	cancel   context.CancelFunc
}

// inprocMethod is one registered method: its handler and the implementation it is registered with.
type inprocMethod struct {
	impl   any
	unary  grpc.MethodHandler
	stream *grpc.StreamDesc
}

// maxRecvMsgSize is grpc-go's default bound on a received message, which the server keeps.
const maxRecvMsgSize = 4 << 20

func newInProcess(unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor, clientStats, serverStats stats.Handler) *inProcess {
	p := &inProcess{
		methods: map[string]inprocMethod{},
		unary:   chainUnary(unary),
		stream:  chainStream(stream),
		maxRecv: maxRecvMsgSize,
	}
	if clientStats != nil {
		p.clientStats = append(p.clientStats, clientStats)
	}
	if serverStats != nil {
		p.serverStats = append(p.serverStats, serverStats)
	}
	p.stopCtx, p.cancel = context.WithCancel(context.Background())
	return p
}

// inprocRegistrar registers a service on the gRPC server and for in-process calls.
type inprocRegistrar struct {
	srv *grpc.Server
	p   *inProcess
}

// RegisterService implements grpc.ServiceRegistrar.
func (r inprocRegistrar) RegisterService(sd *grpc.ServiceDesc, impl any) {
	r.srv.RegisterService(sd, impl)
	for i := range sd.Methods {
		r.p.methods["/"+sd.ServiceName+"/"+sd.Methods[i].MethodName] = inprocMethod{impl: impl, unary: sd.Methods[i].Handler}
	}
	for i := range sd.Streams {
		r.p.methods["/"+sd.ServiceName+"/"+sd.Streams[i].StreamName] = inprocMethod{impl: impl, stream: &sd.Streams[i]}
	}
}

// dial returns a client connection whose every call is served in process: its interceptors answer
// the calls and never invoke the connection's transport, which is never dialled.
func (p *inProcess) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///in-process",
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			return nil, errors.New("server: the in-process connection has no transport")
		}),
		grpc.WithTransportCredentials(insecureCreds()),
		grpc.WithUnaryInterceptor(p.invoke),
		grpc.WithStreamInterceptor(p.newStream),
	)
}

// stop refuses new calls and cancels the calls in flight.
func (p *inProcess) stop() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.cancel()
}

// begin refuses a call once the server has stopped, as a closed connection would.
func (p *inProcess) begin() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopping {
		return status.Error(codes.Unavailable, "the server has stopped")
	}
	return nil
}

// inprocAddr is the address of both ends of an in-process call.
type inprocAddr struct{}

func (inprocAddr) Network() string { return "inprocess" }
func (inprocAddr) String() string  { return "in-process" }

var inprocPeer = &peer.Peer{Addr: inprocAddr{}, LocalAddr: inprocAddr{}}

// userAgent is what grpc-go's client sends as user-agent.
var userAgent = "grpc-go/" + grpc.Version

// callOptions are the call options of the gateway's calls that carry results back.
type callOptions struct {
	header, trailer *metadata.MD
	peer            *peer.Peer
}

func parseCallOptions(opts []grpc.CallOption) callOptions {
	var co callOptions
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			co.header = o.HeaderAddr
		case grpc.TrailerCallOption:
			co.trailer = o.TrailerAddr
		case grpc.PeerCallOption:
			co.peer = o.PeerAddr
		}
	}
	return co
}

// call is the state of one in-process call shared by both ends.
type call struct {
	method string
	cctx   context.Context // the client's, tagged by its stats handlers
	sctx   context.Context // the server's
	cancel context.CancelFunc
	begin  time.Time

	mu         sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent bool
	sentHeader chan struct{} // closed when the header is sent
}

// start opens a call: the client's stats, a server context with the client's deadline and
// cancellation, its incoming metadata, peer and transport stream, and the server's stats.
func (p *inProcess) start(ctx context.Context, method string, serverStreams, clientStreams bool) (*call, error) {
	c := &call{method: method, begin: time.Now(), sentHeader: make(chan struct{})}
	for _, h := range p.clientStats {
		ctx = h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method, FailFast: true})
		h.HandleRPC(ctx, &stats.Begin{Client: true, BeginTime: c.begin, FailFast: true, IsClientStream: clientStreams, IsServerStream: serverStreams})
	}
	c.cctx = ctx
	if err := ctx.Err(); err != nil {
		return c, status.FromContextError(err).Err()
	}
	in, _ := metadata.FromOutgoingContext(ctx) // a copy, keys in lower case
	if in == nil {
		in = make(metadata.MD, 3)
	}
	in[":authority"] = []string{"in-process"}
	in["content-type"] = []string{"application/grpc"}
	in["user-agent"] = append(in["user-agent"], userAgent)

	sctx, cancel := context.WithCancel(detached{ctx})
	stopCut := context.AfterFunc(p.stopCtx, cancel)
	c.cancel = func() { stopCut(); cancel() }
	sctx = metadata.NewIncomingContext(sctx, in)
	sctx = peer.NewContext(sctx, inprocPeer)
	sctx = grpc.NewContextWithServerTransportStream(sctx, (*transportStream)(c))
	for _, h := range p.serverStats {
		sctx = h.TagRPC(sctx, &stats.RPCTagInfo{FullMethodName: method})
		h.HandleRPC(sctx, &stats.InHeader{FullMethod: method, Header: in.Copy(), RemoteAddr: inprocAddr{}})
		h.HandleRPC(sctx, &stats.Begin{BeginTime: c.begin, IsClientStream: clientStreams, IsServerStream: serverStreams})
	}
	c.sctx = sctx
	return c, nil
}

// endServer records the end of a call in the server's stats handlers, with its status.
func (p *inProcess) endServer(c *call, appErr error) {
	if c.sctx == nil {
		return
	}
	for _, h := range p.serverStats {
		h.HandleRPC(c.sctx, &stats.End{BeginTime: c.begin, EndTime: time.Now(), Error: appErr})
	}
}

// endClient records the end of a call in the client's stats handlers, with the client's status.
func (p *inProcess) endClient(c *call, err error) {
	for _, h := range p.clientStats {
		h.HandleRPC(c.cctx, &stats.End{Client: true, BeginTime: c.begin, EndTime: time.Now(), Error: err})
	}
}

// sendHeader marks the header sent (at most once).
func (c *call) sendHeader() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.headerSent {
		c.headerSent = true
		close(c.sentHeader)
	}
}

// clientHeader is the header metadata the client sees, as grpc-go's client does. A server that ends
// a call without having sent or set a header answers trailers-only, and the client then has no header
// (nil); this happens to a unary call only when it fails, since an answer is sent after a header.
// Otherwise the header carries the server's metadata and the content-type.
func (c *call) clientHeader(trailersOnly bool) metadata.MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	if trailersOnly && !c.headerSent && len(c.header) == 0 {
		return nil
	}
	md := c.header.Copy()
	if md == nil {
		md = metadata.MD{}
	}
	md["content-type"] = []string{"application/grpc"}
	return md
}

// clientTrailer is the trailer metadata the client sees, as grpc-go's client does: the server's,
// the content-type of a trailers-only answer, and the status proto of an error with details.
func (c *call) clientTrailer(trailersOnly bool, st error) metadata.MD {
	c.mu.Lock()
	defer c.mu.Unlock()
	md := c.trailer.Copy()
	if md == nil {
		md = metadata.MD{}
	}
	if trailersOnly && !c.headerSent && len(c.header) == 0 {
		md["content-type"] = []string{"application/grpc"}
	}
	if p := status.Convert(st).Proto(); len(p.GetDetails()) > 0 {
		if b, err := proto.Marshal(p); err == nil {
			md["grpc-status-details-bin"] = []string{string(b)}
		}
	}
	return md
}

// transportStream is a call as grpc.ServerTransportStream: grpc.SetHeader and friends on the
// server's context.
type transportStream call

// errHeaderSent is grpc-go's refusal of header metadata after the header was sent.
var errHeaderSent = status.Error(codes.Internal, "transport: the stream is done or WriteHeader was already called")

func (t *transportStream) Method() string { return t.method }

func (t *transportStream) SetHeader(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.headerSent {
		return errHeaderSent
	}
	t.header = metadata.Join(t.header, md)
	return nil
}

func (t *transportStream) SendHeader(md metadata.MD) error {
	if err := t.SetHeader(md); err != nil {
		return err
	}
	(*call)(t).sendHeader()
	return nil
}

func (t *transportStream) SetTrailer(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

// appStatus converts a handler's error as grpc-go's server does.
func appStatus(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.FromContextError(err).Err()
}

// copyIn fills dst, a fresh message of the handler, from src, the caller's, refusing what a server
// would refuse to receive.
func (p *inProcess) copyIn(dst, src any) error {
	d, ok1 := dst.(proto.Message)
	s, ok2 := src.(proto.Message)
	if !ok1 || !ok2 {
		return status.Errorf(codes.Internal, "grpc: in-process message of type %T into %T", src, dst)
	}
	if n := proto.Size(s); n > p.maxRecv {
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, p.maxRecv)
	}
	proto.Reset(d)
	proto.Merge(d, s)
	return nil
}

// copyOut fills reply, the caller's message, from the handler's answer.
func copyOut(reply, resp any) error {
	d, ok1 := reply.(proto.Message)
	s, ok2 := resp.(proto.Message)
	if !ok1 || !ok2 || s == nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: the answer is %T, want a message", resp)
	}
	proto.Reset(d)
	proto.Merge(d, s)
	return nil
}

// handOver fills reply, the caller's message, with the fields of resp, the answer of a unary
// handler, without copying what they hold: lists, maps and messages are shared. A unary handler
// is done with its answer when it returns, and neither the gateway nor grpc-go's server ever
// changes an answer (they only read it to write it), so sharing it is safe where the stream's
// messages, which a handler may reuse once SendMsg returns, are copied. An answer of another type
// than reply is copied by proto.Merge, which refuses it as before.
func handOver(reply, resp any) error {
	d, ok1 := reply.(proto.Message)
	s, ok2 := resp.(proto.Message)
	if !ok1 || !ok2 || s == nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: the answer is %T, want a message", resp)
	}
	dm, sm := d.ProtoReflect(), s.ProtoReflect()
	if dm.Descriptor() != sm.Descriptor() {
		proto.Reset(d)
		proto.Merge(d, s)
		return nil
	}
	proto.Reset(d)
	sm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dm.Set(fd, v)
		return true
	})
	if u := sm.GetUnknown(); len(u) > 0 {
		dm.SetUnknown(u)
	}
	return nil
}

func unknownMethod(method string) error {
	svc, m := "", method
	if i := strings.LastIndex(method, "/"); i > 0 {
		svc, m = method[1:i], method[i+1:]
	}
	return status.Errorf(codes.Unimplemented, "unknown method %v for service %v", m, svc)
}

// invoke serves a unary call (grpc.UnaryClientInterceptor; the transport's invoker is never called).
func (p *inProcess) invoke(ctx context.Context, method string, req, reply any, _ *grpc.ClientConn, _ grpc.UnaryInvoker, opts ...grpc.CallOption) (err error) {
	co := parseCallOptions(opts)
	if co.peer != nil {
		*co.peer = *inprocPeer
	}
	m, ok := p.methods[method]
	if !ok || m.unary == nil {
		return unknownMethod(method)
	}
	if err := p.begin(); err != nil {
		return err
	}
	c, err := p.start(ctx, method, false, false)
	if err != nil {
		p.endClient(c, err)
		return err
	}
	defer c.cancel()
	resp, appErr := m.unary(m.impl, c.sctx, func(dst any) error { return p.copyIn(dst, req) }, p.unary)
	appErr = appStatus(appErr)
	if appErr == nil {
		appErr = handOver(reply, resp)
	}
	if co.header != nil {
		*co.header = c.clientHeader(appErr != nil)
	}
	if co.trailer != nil {
		*co.trailer = c.clientTrailer(appErr != nil, appErr)
	}
	p.endServer(c, appErr)
	p.endClient(c, appErr)
	return appErr
}

// newStream opens a stream (grpc.StreamClientInterceptor; the transport's streamer is never called):
// its handler runs in a goroutine of its own, and messages pass through unbuffered channels, so the
// server sends only as fast as the gateway writes.
func (p *inProcess) newStream(ctx context.Context, desc *grpc.StreamDesc, _ *grpc.ClientConn, method string, _ grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	co := parseCallOptions(opts)
	if co.peer != nil {
		*co.peer = *inprocPeer
	}
	m, ok := p.methods[method]
	if !ok || m.stream == nil {
		return nil, unknownMethod(method)
	}
	if err := p.begin(); err != nil {
		return nil, err
	}
	c, err := p.start(ctx, method, desc.ServerStreams, desc.ClientStreams)
	if err != nil {
		p.endClient(c, err)
		return nil, err
	}
	s := &inprocStream{p: p, c: c, co: co, reqs: make(chan proto.Message, 1), resps: make(chan proto.Message), done: make(chan struct{}), closeSend: make(chan struct{})}
	// Like grpc-go's client, the stream ends when its context does, whether or not RecvMsg is called.
	s.stopWatch = context.AfterFunc(c.cctx, func() { s.clientEnd(status.FromContextError(c.cctx.Err()).Err()) })
	ss := &serverStream{s: s}
	info := &grpc.StreamServerInfo{FullMethod: method, IsClientStream: m.stream.ClientStreams, IsServerStream: m.stream.ServerStreams}
	go func() {
		var err error
		if p.stream == nil {
			err = m.stream.Handler(m.impl, ss)
		} else {
			err = p.stream(m.impl, ss, info, m.stream.Handler)
		}
		err = appStatus(err)
		p.endServer(c, err)
		s.finish(err)
	}()
	return s, nil
}

// inprocStream is both ends of an in-process stream.
type inprocStream struct {
	p  *inProcess
	c  *call
	co callOptions

	reqs      chan proto.Message // client → server, one message buffered as a transport would
	stopWatch func() bool        // stops the watch of the client's context
	closeSend chan struct{}      // closed by CloseSend
	closeOnce sync.Once
	resps     chan proto.Message // server → client
	done      chan struct{}      // closed when the handler has returned
	status    error              // the handler's status, set before done closes
	endOnce   sync.Once
}

// finish ends the stream with the handler's status.
func (s *inprocStream) finish(err error) {
	s.status = err
	s.c.mu.Lock()
	if !s.c.headerSent && len(s.c.header) > 0 {
		s.c.headerSent = true // grpc-go sends a set header in a frame of its own before the status
		close(s.c.sentHeader)
	}
	s.c.mu.Unlock()
	close(s.done)
	s.c.cancel()
}

// finalStatus is the handler's status once it has returned, else nil.
func (s *inprocStream) finalStatus() error {
	select {
	case <-s.done:
		return s.status
	default:
		return nil
	}
}

// clientEnd reports the end of the stream to the client's stats handlers and call options, once.
func (s *inprocStream) clientEnd(err error) {
	s.endOnce.Do(func() {
		s.stopWatch()
		if s.co.header != nil {
			*s.co.header = s.c.clientHeader(true)
		}
		if s.co.trailer != nil {
			*s.co.trailer = s.c.clientTrailer(true, s.finalStatus())
		}
		s.p.endClient(s.c, err)
	})
}

// Header implements grpc.ClientStream.
func (s *inprocStream) Header() (metadata.MD, error) {
	select {
	case <-s.c.sentHeader:
		return s.c.clientHeader(false), nil
	case <-s.done:
		select {
		case <-s.c.sentHeader:
			return s.c.clientHeader(false), nil
		default:
			return nil, s.status
		}
	case <-s.c.cctx.Done():
		return nil, status.FromContextError(s.c.cctx.Err()).Err()
	}
}

// Trailer implements grpc.ClientStream; it is complete once RecvMsg has returned an error.
func (s *inprocStream) Trailer() metadata.MD {
	select {
	case <-s.done:
		return s.c.clientTrailer(true, s.status)
	default:
		return nil
	}
}

// CloseSend implements grpc.ClientStream.
func (s *inprocStream) CloseSend() error {
	s.closeOnce.Do(func() { close(s.closeSend) })
	return nil
}

// Context implements grpc.ClientStream.
func (s *inprocStream) Context() context.Context { return s.c.cctx }

// SendMsg implements grpc.ClientStream: the server receives a copy.
func (s *inprocStream) SendMsg(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: in-process message of type %T", m)
	}
	msg = proto.Clone(msg)
	select {
	case s.reqs <- msg:
		return nil
	default:
	}
	select {
	case s.reqs <- msg:
		return nil
	case <-s.done:
		return io.EOF // grpc-go: the status is for RecvMsg
	case <-s.c.cctx.Done():
		return io.EOF
	}
}

// RecvMsg implements grpc.ClientStream.
func (s *inprocStream) RecvMsg(m any) error {
	select {
	case r := <-s.resps:
		return copyOut(m, r)
	case <-s.done:
		err := s.status
		if err == nil {
			err = io.EOF
		}
		s.clientEnd(s.status)
		return err
	case <-s.c.cctx.Done():
		err := status.FromContextError(s.c.cctx.Err()).Err()
		s.clientEnd(err)
		return err
	}
}

// serverStream is the server's end of an in-process stream.
type serverStream struct{ s *inprocStream }

func (ss *serverStream) SetHeader(md metadata.MD) error {
	return (*transportStream)(ss.s.c).SetHeader(md)
}

func (ss *serverStream) SendHeader(md metadata.MD) error {
	return (*transportStream)(ss.s.c).SendHeader(md)
}

func (ss *serverStream) SetTrailer(md metadata.MD) { _ = (*transportStream)(ss.s.c).SetTrailer(md) }

func (ss *serverStream) Context() context.Context { return ss.s.c.sctx }

// SendMsg sends a copy of m: the handler may reuse m once SendMsg returns.
func (ss *serverStream) SendMsg(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %T is not a message", m)
	}
	ss.s.c.sendHeader()
	msg = proto.Clone(msg)
	select {
	case ss.s.resps <- msg:
		return nil
	case <-ss.s.c.sctx.Done():
		return status.FromContextError(ss.s.c.sctx.Err()).Err()
	}
}

func (ss *serverStream) RecvMsg(m any) error {
	select {
	case r := <-ss.s.reqs:
		return ss.s.p.copyIn(m, r)
	case <-ss.s.closeSend:
		select { // a message sent before CloseSend is still delivered
		case r := <-ss.s.reqs:
			return ss.s.p.copyIn(m, r)
		default:
			return io.EOF
		}
	case <-ss.s.c.sctx.Done():
		return status.FromContextError(ss.s.c.sctx.Err()).Err()
	}
}

// detached is a context with the deadline and cancellation of its parent and none of its values: a
// server's context shares nothing else with its client's.
type detached struct{ parent context.Context }

func (d detached) Deadline() (time.Time, bool) { return d.parent.Deadline() }
func (d detached) Done() <-chan struct{}       { return d.parent.Done() }
func (d detached) Err() error                  { return d.parent.Err() }
func (d detached) Value(any) any               { return nil }

// AfterFunc lets context.WithCancel on a detached context follow its parent without a goroutine.
func (d detached) AfterFunc(f func()) func() bool { return context.AfterFunc(d.parent, f) }

func (d detached) String() string { return fmt.Sprintf("server.detached(%v)", d.parent) }

// chainUnary composes interceptors as grpc.ChainUnaryInterceptor does: the first is the outermost.
func chainUnary(ints []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return ints[0](ctx, req, info, unaryNext(ints, 0, info, handler))
	}
}

func unaryNext(ints []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(ints)-1 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ints[i+1](ctx, req, info, unaryNext(ints, i+1, info, final))
	}
}

// chainStream composes interceptors as grpc.ChainStreamInterceptor does: the first is the outermost.
func chainStream(ints []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return ints[0](srv, ss, info, streamNext(ints, 0, info, handler))
	}
}

func streamNext(ints []grpc.StreamServerInterceptor, i int, info *grpc.StreamServerInfo, final grpc.StreamHandler) grpc.StreamHandler {
	if i == len(ints)-1 {
		return final
	}
	return func(srv any, ss grpc.ServerStream) error {
		return ints[i+1](srv, ss, info, streamNext(ints, i+1, info, final))
	}
}

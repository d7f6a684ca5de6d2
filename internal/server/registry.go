package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// unaryFunc serves one action RPC once its request is decoded.
type unaryFunc func(ctx context.Context, m *api.Method, req proto.Message) (proto.Message, error)

// streamFunc serves one server-streaming action RPC, sending each message with send.
type streamFunc func(ctx context.Context, m *api.Method, req proto.Message, send func(proto.Message) error) error

// serviceDescs builds the grpc.ServiceDesc tables for the action RPCs (api.Methods), one per proto
// service, every method dispatching to serve. This replaces the per-service code that
// protoc-gen-go-grpc would otherwise require us to write.
func serviceDescs(methods []*api.Method, serve unaryFunc, serveStream streamFunc) []*grpc.ServiceDesc {
	byService := map[protoreflect.FullName]*grpc.ServiceDesc{}
	var order []protoreflect.FullName
	for _, m := range methods {
		svc := m.Desc.Parent().(protoreflect.ServiceDescriptor)
		sd, ok := byService[svc.FullName()]
		if !ok {
			sd = &grpc.ServiceDesc{
				ServiceName: string(svc.FullName()),
				HandlerType: (*any)(nil),
				Metadata:    svc.ParentFile().Path(),
			}
			byService[svc.FullName()] = sd
			order = append(order, svc.FullName())
		}
		if m.Streams() {
			sd.Streams = append(sd.Streams, grpc.StreamDesc{
				StreamName:    string(m.Desc.Name()),
				Handler:       streamHandler(m, serveStream),
				ServerStreams: true,
			})
			continue
		}
		sd.Methods = append(sd.Methods, grpc.MethodDesc{
			MethodName: string(m.Desc.Name()),
			Handler:    methodHandler(m, serve),
		})
	}
	out := make([]*grpc.ServiceDesc, 0, len(order))
	for _, n := range order {
		out = append(out, byService[n])
	}
	return out
}

func methodHandler(m *api.Method, serve unaryFunc) grpc.MethodHandler {
	// Built once, not per call: the handler the interceptors call, and the info they get for the
	// service every action is registered with (struct{}{}, the same for the in-process channel).
	handler := func(ctx context.Context, r any) (any, error) {
		return serve(ctx, m, r.(proto.Message))
	}
	info := &grpc.UnaryServerInfo{Server: struct{}{}, FullMethod: m.FullMethod}
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := m.Input.New().Interface()
		if err := dec(req); err != nil {
			return nil, err
		}
		if interceptor == nil {
			return handler(ctx, req)
		}
		if srv != info.Server {
			return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: m.FullMethod}, handler)
		}
		return interceptor(ctx, req, info, handler)
	}
}

func streamHandler(m *api.Method, serve streamFunc) grpc.StreamHandler {
	return func(srv any, stream grpc.ServerStream) error {
		req := m.Input.New().Interface()
		if err := stream.RecvMsg(req); err != nil {
			return err
		}
		return serve(stream.Context(), m, req, func(msg proto.Message) error { return stream.SendMsg(msg) })
	}
}

package server

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// APIPackage is the proto package whose action RPCs the server serves generically.
const APIPackage protoreflect.FullName = "qingcloud.iaas.v1"

// ActionMethod is one RPC backed by a QingCloud action.
type ActionMethod struct {
	Desc   protoreflect.MethodDescriptor
	Action *iaasv1.Action
	// FullMethod is the gRPC method name, "/qingcloud.iaas.v1.InstanceService/RunInstances".
	FullMethod string
	Input      protoreflect.MessageType
	Output     protoreflect.MessageType
}

// ActionMethods lists every RPC of APIPackage that carries a (qingcloud.iaas.v1.action) option, sorted by
// full method name. These are the RPCs the generic handler serves; the list is derived from the
// generated descriptors, so adding an action means adding only its proto.
func ActionMethods() ([]*ActionMethod, error) {
	var out []*ActionMethod
	var err error
	protoregistry.GlobalFiles.RangeFilesByPackage(APIPackage, func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := 0; i < svcs.Len(); i++ {
			methods := svcs.Get(i).Methods()
			for j := 0; j < methods.Len(); j++ {
				md := methods.Get(j)
				a, ok := proto.GetExtension(md.Options(), iaasv1.E_Action).(*iaasv1.Action)
				if !ok || a == nil || a.GetName() == "" {
					continue
				}
				if md.IsStreamingClient() || md.IsStreamingServer() != (a.GetItemField() != "") {
					err = fmt.Errorf("server: %s: only the paginating variants of list actions (item_field set) may stream, and only from the server", md.FullName())
					return false
				}
				m := &ActionMethod{Desc: md, Action: a, FullMethod: fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())}
				if m.Input, err = protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName()); err != nil {
					err = fmt.Errorf("server: %s input: %w", md.FullName(), err)
					return false
				}
				if m.Output, err = protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName()); err != nil {
					err = fmt.Errorf("server: %s output: %w", md.FullName(), err)
					return false
				}
				out = append(out, m)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullMethod < out[j].FullMethod })
	return out, nil
}

// Streams reports whether the RPC is the server-streaming, paginating variant of a list action.
func (m *ActionMethod) Streams() bool { return m.Action.GetItemField() != "" }

// unaryFunc serves one action RPC once its request is decoded.
type unaryFunc func(ctx context.Context, m *ActionMethod, req proto.Message) (proto.Message, error)

// streamFunc serves one server-streaming action RPC, sending each message with send.
type streamFunc func(ctx context.Context, m *ActionMethod, req proto.Message, send func(proto.Message) error) error

// serviceDescs builds the grpc.ServiceDesc tables for the action RPCs, one per proto service,
// every method dispatching to serve. This replaces the per-service code that protoc-gen-go-grpc
// would otherwise require us to write.
func serviceDescs(methods []*ActionMethod, serve unaryFunc, serveStream streamFunc) []*grpc.ServiceDesc {
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

func methodHandler(m *ActionMethod, serve unaryFunc) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := m.Input.New().Interface()
		if err := dec(req); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, r any) (any, error) {
			return serve(ctx, m, r.(proto.Message))
		}
		if interceptor == nil {
			return handler(ctx, req)
		}
		return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: m.FullMethod}, handler)
	}
}

func streamHandler(m *ActionMethod, serve streamFunc) grpc.StreamHandler {
	return func(srv any, stream grpc.ServerStream) error {
		req := m.Input.New().Interface()
		if err := stream.RecvMsg(req); err != nil {
			return err
		}
		return serve(stream.Context(), m, req, func(msg proto.Message) error { return stream.SendMsg(msg) })
	}
}

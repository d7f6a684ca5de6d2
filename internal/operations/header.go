package operations

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// HeaderKey is the response header metadata that names the operation of a delayed action's answer,
// "operations/<job_id>" (one value per job). Over REST it is the X-Qingcloud-Operation header.
const HeaderKey = "x-qingcloud-operation"

// HeaderInterceptor tells the caller of every delayed action its operation names: when an answer
// carries a job_id (a string or a list, typed or through CallService), it sets HeaderKey. zone is the
// zone the request named (after the default zone was applied); defaultZone returns the caller's
// default zone, so that names of jobs in other zones carry their zone.
func HeaderInterceptor(defaultZone func(ctx context.Context) string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return resp, err
		}
		m, ok := resp.(proto.Message)
		if !ok {
			return resp, nil
		}
		ids := JobIDs(m)
		if len(ids) == 0 {
			return resp, nil
		}
		zone := requestZone(req)
		if zone != "" && zone == defaultZone(ctx) {
			zone = ""
		}
		md := metadata.MD{}
		for _, id := range ids {
			if validJobID(id) {
				md.Append(HeaderKey, Name{Zone: zone, JobID: id}.String())
			}
		}
		if md.Len() > 0 {
			_ = grpc.SetHeader(ctx, md)
		}
		return resp, nil
	}
}

// JobIDs returns the job ids of an answer: its job_id field (a string or a list of strings), or the
// job_id key of a CallService answer.
func JobIDs(m proto.Message) []string {
	if s, ok := m.(*structpb.Struct); ok {
		return structJobIDs(s.GetFields()["job_id"])
	}
	if r, ok := m.(interface{ GetResponse() *structpb.Struct }); ok {
		return structJobIDs(r.GetResponse().GetFields()["job_id"])
	}
	pm := m.ProtoReflect()
	fd := pm.Descriptor().Fields().ByName("job_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || !pm.Has(fd) {
		return nil
	}
	if fd.IsList() {
		l := pm.Get(fd).List()
		out := make([]string, 0, l.Len())
		for i := 0; i < l.Len(); i++ {
			out = append(out, l.Get(i).String())
		}
		return out
	}
	return []string{pm.Get(fd).String()}
}

// structJobIDs reads a job_id value of a JSON answer.
func structJobIDs(v *structpb.Value) []string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return []string{k.StringValue}
	case *structpb.Value_ListValue:
		var out []string
		for _, e := range k.ListValue.GetValues() {
			if s, ok := e.GetKind().(*structpb.Value_StringValue); ok {
				out = append(out, s.StringValue)
			}
		}
		return out
	}
	return nil
}

// requestZone is the zone field of a request, if it has one.
func requestZone(req any) string {
	m, ok := req.(proto.Message)
	if !ok {
		return ""
	}
	pm := m.ProtoReflect()
	fd := pm.Descriptor().Fields().ByName("zone")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return pm.Get(fd).String()
}

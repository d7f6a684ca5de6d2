package server

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api/naming"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// callService implements CallService: any action by name, with Struct parameters.
type callService struct {
	iaasv1.UnimplementedCallServiceServer
	s *Server
}

// Call checks the request, flattens the parameters and returns the upstream JSON as a Struct.
func (c *callService) Call(ctx context.Context, req *iaasv1.CallRequest) (*iaasv1.CallResponse, error) {
	action := req.GetAction()
	if !naming.ValidAction(action) {
		return nil, qcerr.BadRequest(qcerr.Violation("action",
			fmt.Sprintf("action %q is not a QingCloud action name (PascalCase letters and digits, e.g. DescribeInstances)", qcerr.Clip(action, qcerr.MaxEcho))))
	}
	var vs []*errdetails.BadRequest_FieldViolation
	for k := range req.GetParams().GetFields() {
		if why, ok := api.Reserved(k); ok {
			k = qcerr.Clip(k, qcerr.MaxEcho)
			vs = append(vs, qcerr.Violation("params."+k, fmt.Sprintf("parameter %q cannot be passed: %s", k, why)))
		}
	}
	if len(vs) > 0 {
		return nil, qcerr.BadRequest(vs...)
	}
	be, defaultZone, err := c.s.tenant(ctx)
	if err != nil {
		return nil, err
	}
	// CallService sends a zone when one is named or configured; zone-less actions need none.
	z := zone.Resolve(req.GetZone(), defaultZone)
	if z != "" {
		if v := zone.Violation(z); v != nil {
			return nil, qcerr.BadRequest(v)
		}
	}
	post := false
	if m := api.ByAction(action); m != nil {
		post = m.Post
		if err := checkTyped(m, req.GetParams(), z); err != nil {
			return nil, err
		}
	}
	params, err := codec.EncodeStruct(req.GetParams())
	if err != nil {
		return nil, qcerr.BadRequest(qcerr.Violation("params", err.Error()))
	}
	if z != "" {
		params["zone"] = z
	}
	body, err := be.Call(ctx, action, params, post)
	if err != nil {
		return nil, err
	}
	out := &structpb.Struct{}
	if err := protojson.Unmarshal(body, out); err != nil {
		return nil, qcerr.Transport(action, "upstream answer is not a JSON object: "+err.Error(), true)
	}
	return &iaasv1.CallResponse{Response: out}, nil
}

// checkTyped validates Struct parameters of an action of the typed set against its request message:
// every known parameter must have the right type, and required parameters must be present. Unknown
// parameters pass through, since QingCloud adds parameters faster than the spec does.
func checkTyped(m *api.Method, params *structpb.Struct, z string) error {
	msg := m.Input.New()
	fields := m.Input.Descriptor().Fields()
	var vs []*errdetails.BadRequest_FieldViolation
	bad := map[string]bool{} // wire names with the wrong type: not reported missing as well
	for k, v := range params.GetFields() {
		fd := api.FieldByWireName(m.Input.Descriptor(), k)
		if fd == nil {
			continue
		}
		bad[k] = true
		one, err := json.Marshal(map[string]json.RawMessage{string(fd.Name()): mustJSON(v)})
		if err != nil {
			vs = append(vs, qcerr.Violation("params."+k, err.Error()))
			continue
		}
		scratch := m.Input.New().Interface()
		if err := protojson.Unmarshal(one, scratch); err != nil {
			vs = append(vs, qcerr.Violation("params."+k, fmt.Sprintf("parameter %s of %s has the wrong type: want %s", k, m.Action, typeName(fd))))
			continue
		}
		delete(bad, k)
		proto.Merge(msg.Interface(), scratch)
	}
	if zf := fields.ByName("zone"); zf != nil && z != "" {
		msg.Set(zf, protoreflect.ValueOfString(z))
	}
	// Every problem at once: wrong types, and the rest of the checks (missing required parameters,
	// paging bounds) on what was well-typed.
	for _, v := range requestViolations(msg.Interface(), "") {
		if !bad[v.GetField()] {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		return qcerr.BadRequest(vs...)
	}
	return nil
}

func mustJSON(v *structpb.Value) json.RawMessage {
	b, err := protojson.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func typeName(fd protoreflect.FieldDescriptor) string {
	var t string
	switch fd.Kind() {
	case protoreflect.MessageKind:
		t = "object (" + string(fd.Message().Name()) + ")"
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		t = "integer"
	case protoreflect.BoolKind:
		t = "boolean"
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		t = "number"
	default:
		t = fd.Kind().String()
	}
	if fd.IsList() {
		if fd.Kind() == protoreflect.MessageKind {
			return "list of objects (" + string(fd.Message().Name()) + ")"
		}
		return "list of " + t + "s"
	}
	return t
}

package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// fillRequired sets every REQUIRED field of m (recursively) to a plausible value.
func fillRequired(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		bs, _ := proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
		required := false
		for _, b := range bs {
			required = required || b == annotations.FieldBehavior_REQUIRED
		}
		if !required {
			continue
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			if fd.Kind() == protoreflect.MessageKind {
				e := l.NewElement()
				fillRequired(e.Message())
				l.Append(e)
			} else {
				l.Append(scalar(fd))
			}
			continue
		}
		if fd.Kind() == protoreflect.MessageKind {
			fillRequired(m.Mutable(fd).Message())
			continue
		}
		m.Set(fd, scalar(fd))
	}
}

func scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("x-" + string(fd.Name()))
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(1)
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(1)
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(1)
	}
	return fd.Default()
}

// reachedUpstream reports whether err is nil or a QingCloud answer (ErrorInfo reason QINGCLOUD_*), so the
// RPC was routed, validated, sent, answered and mapped.
func reachedUpstream(err error) bool {
	if err == nil {
		return true
	}
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && strings.HasPrefix(ei.GetReason(), "QINGCLOUD_") {
			return true
		}
	}
	return false
}

// TestEveryRPCOverGRPCAndREST calls every generated action RPC, over gRPC and over REST, against the
// emulator, with its required fields filled in.
func TestEveryRPCOverGRPCAndREST(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	if err := api.Check(); err != nil {
		t.Fatal(err)
	}
	methods := api.Methods()
	var unary, streams int
	for _, m := range methods {
		if m.Streams() {
			streams++
		} else {
			unary++
		}
	}
	if unary != 261 || streams < 40 {
		t.Fatalf("registered %d unary action RPCs and %d paginating streams, want 261 and >= 40", unary, streams)
	}
	for _, m := range methods {
		t.Run(string(m.Desc.Name()), func(t *testing.T) {
			ctx := ctxT(t)
			req := m.Input.New()
			fillRequired(req)
			if m.Streams() {
				st, err := s.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, m.FullMethod)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.SendMsg(req.Interface()); err != nil {
					t.Fatal(err)
				}
				_ = st.CloseSend()
				for {
					out := m.Output.New().Interface()
					if err := st.RecvMsg(out); err == io.EOF {
						break
					} else if err != nil {
						if !reachedUpstream(err) {
							t.Fatalf("gRPC stream %s: %v", m.FullMethod, err)
						}
						break
					}
				}
			} else {
				resp := m.Output.New().Interface()
				if err := s.conn.Invoke(ctx, m.FullMethod, req.Interface(), resp); !reachedUpstream(err) {
					t.Fatalf("gRPC %s: %v", m.FullMethod, err)
				}
			}
			restCheck(t, ctx, s.rest, m, req.Interface())
		})
	}
}

// restCheck calls the RPC's REST binding and checks the gateway routed it: a 200, or a QingCloud error body.
func restCheck(t *testing.T, ctx context.Context, base string, m *api.Method, req proto.Message) {
	t.Helper()
	rule, _ := proto.GetExtension(m.Desc.Options(), annotations.E_Http).(*annotations.HttpRule)
	var hreq *http.Request
	var err error
	switch {
	case rule.GetGet() != "":
		q, qerr := queryString(req)
		if qerr != nil {
			t.Fatal(qerr)
		}
		hreq, err = http.NewRequestWithContext(ctx, "GET", base+rule.GetGet()+"?"+q, nil)
	case rule.GetPost() != "":
		body, merr := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
		if merr != nil {
			t.Fatal(merr)
		}
		hreq, err = http.NewRequestWithContext(ctx, "POST", base+rule.GetPost(), bytes.NewReader(body))
	default:
		t.Fatalf("%s has no REST binding", m.FullMethod)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return
	}
	if !strings.Contains(string(b), `"reason":"QINGCLOUD_`) {
		t.Fatalf("REST %s: HTTP %d %s", hreq.URL.Path, resp.StatusCode, b)
	}
}

// queryString renders a request's populated scalar and list fields as URL query parameters.
func queryString(m proto.Message) (string, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return "", err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(b, st); err != nil {
		return "", err
	}
	var parts []string
	for k, v := range st.GetFields() {
		switch x := v.GetKind().(type) {
		case *structpb.Value_ListValue:
			for _, e := range x.ListValue.GetValues() {
				parts = append(parts, k+"="+valueText(e))
			}
		default:
			parts = append(parts, k+"="+valueText(v))
		}
	}
	return strings.Join(parts, "&"), nil
}

func valueText(v *structpb.Value) string {
	b, _ := protojson.Marshal(v)
	return strings.Trim(string(b), `"`)
}

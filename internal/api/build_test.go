package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// rpc is one method of a synthetic service.
type rpc struct {
	name, action, itemField string
	serverStreams           bool
}

// synthetic builds a registry holding one file of package Package with service S of rpcs (each taking
// Req and returning Resp, which has a repeated Item item_set), and the dynamic types of its messages.
func synthetic(t *testing.T, rpcs ...rpc) (*protoregistry.Files, *protoregistry.Types) {
	t.Helper()
	str, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("synthetic.proto"),
		Package: proto.String(string(Package)),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("zone"), Number: proto.Int32(1), Type: str, Label: opt}}},
			{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("item_id"), Number: proto.Int32(1), Type: str, Label: opt}}},
			{Name: proto.String("Resp"), Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("item_set"), Number: proto.Int32(1), Type: msg, Label: rep, TypeName: proto.String(".qingcloud.iaas.v1.Item")}}},
		},
	}
	svc := &descriptorpb.ServiceDescriptorProto{Name: proto.String("S")}
	for _, r := range rpcs {
		mo := &descriptorpb.MethodOptions{}
		if r.action != "" {
			proto.SetExtension(mo, iaasv1.E_Action, &iaasv1.Action{Name: r.action, ReadOnly: true, ItemField: r.itemField})
		}
		svc.Method = append(svc.Method, &descriptorpb.MethodDescriptorProto{
			Name: proto.String(r.name), InputType: proto.String(".qingcloud.iaas.v1.Req"), OutputType: proto.String(".qingcloud.iaas.v1.Resp"),
			ServerStreaming: proto.Bool(r.serverStreams), Options: mo,
		})
	}
	fdp.Service = []*descriptorpb.ServiceDescriptorProto{svc}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	files, types := &protoregistry.Files{}, &protoregistry.Types{}
	if err := files.RegisterFile(fd); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		if err := types.RegisterMessage(dynamicpb.NewMessageType(fd.Messages().Get(i))); err != nil {
			t.Fatal(err)
		}
	}
	return files, types
}

func TestBuildRefusesInconsistentTables(t *testing.T) {
	tests := []struct {
		name string
		rpcs []rpc
		want string // "" = consistent
	}{
		{"consistent", []rpc{{name: "DescribeItems", action: "DescribeItems"}, {name: "DescribeItemsAll", action: "DescribeItems", itemField: "item_set", serverStreams: true}, {name: "Plain"}}, ""},
		{"streams without item_field", []rpc{{name: "DescribeItems", action: "DescribeItems", serverStreams: true}}, "only the paginating variants"},
		{"item_field without streaming", []rpc{{name: "DescribeItems", action: "DescribeItems", itemField: "item_set"}}, "only the paginating variants"},
		{"pages without a unary RPC", []rpc{{name: "DescribeItemsAll", action: "DescribeItems", itemField: "item_set", serverStreams: true}}, "which has no unary RPC"},
		{"pages a field that is no list", []rpc{{name: "DescribeItems", action: "DescribeItems"}, {name: "DescribeItemsAll", action: "DescribeItems", itemField: "zone", serverStreams: true}}, "not a repeated message field"},
		{"two RPCs, one action", []rpc{{name: "DescribeItems", action: "DescribeItems"}, {name: "DescribeItems2", action: "DescribeItems"}}, "both call action DescribeItems"},
		{"malformed action name", []rpc{{name: "DescribeItems", action: "Describe Items"}}, "not a QingCloud action name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := build(synthetic(t, tc.rpcs...))
			if tc.want == "" {
				if tab.err != nil {
					t.Fatal(tab.err)
				}
				if len(tab.methods) != 2 || tab.byAction["DescribeItems"] == nil || tab.byFull["/qingcloud.iaas.v1.S/DescribeItemsAll"] == nil {
					t.Errorf("table %+v", tab)
				}
				if len(tab.kinds) != 0 {
					t.Errorf("kinds %+v: the request takes no ids", tab.kinds)
				}
				return
			}
			if tab.err == nil || !strings.Contains(tab.err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", tab.err, tc.want)
			}
		})
	}
}

func TestBuildNeedsTheMessageTypes(t *testing.T) {
	files, _ := synthetic(t, rpc{name: "DescribeItems", action: "DescribeItems"})
	tab := build(files, &protoregistry.Types{})
	if tab.err == nil || !strings.Contains(tab.err.Error(), "input") || len(tab.methods) != 0 {
		t.Errorf("err = %v, methods %d; want the missing input type reported and the method left out", tab.err, len(tab.methods))
	}
}

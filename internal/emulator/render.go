package emulator

import (
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// render turns a generated qingcloud.iaas.v1 message into the JSON object QingCloud sends: keys are
// the fields' wire names, only populated fields are present, integers and floats are JSON numbers
// (protojson would quote 64-bit integers), timestamps are RFC 3339 UTC with whole seconds, enums are
// their names, and Struct, Value and ListValue are their JSON.
func render(m protoreflect.Message) map[string]any {
	out := make(map[string]any, m.Descriptor().Fields().Len())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[api.WireName(fd)] = renderField(fd, v)
		return true
	})
	return out
}

func renderField(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = renderValue(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		out := map[string]any{}
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			out[k.String()] = renderValue(fd.MapValue(), mv)
			return true
		})
		return out
	}
	return renderValue(fd, v)
}

func renderValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case "google.protobuf.Timestamp":
			return jtime(m.Interface().(*timestamppb.Timestamp).AsTime())
		case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
			b, err := protojson.Marshal(m.Interface())
			if err != nil {
				return nil
			}
			return json.RawMessage(b)
		}
		return render(m)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	case protoreflect.BytesKind:
		return v.Bytes()
	}
	return v.Interface() // string, bool, int32/int64/uint32/uint64, float32/float64
}

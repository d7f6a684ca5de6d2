package api

import (
	"sync"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// WireName returns the QingCloud name of a field, as a request parameter and as a key of an answer:
// its (qingcloud.iaas.v1.wire_name) option when set (a name that is no valid proto identifier, such
// as skip-slave-start), otherwise its proto field name.
func WireName(fd protoreflect.FieldDescriptor) string {
	return fieldsOf(fd.ContainingMessage()).wire[fd.Index()]
}

// IsRequired reports whether the spec requires a field: it is marked (google.api.field_behavior) =
// REQUIRED.
func IsRequired(fd protoreflect.FieldDescriptor) bool {
	return fieldsOf(fd.ContainingMessage()).required[fd.Index()]
}

// FieldByWireName returns the field of md whose [WireName] is name, or nil.
func FieldByWireName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	return fieldsOf(md).byWire[name]
}

// messageFields is what the options say about the fields of one message, by fd.Index().
type messageFields struct {
	wire     []string
	required []bool
	byWire   map[string]protoreflect.FieldDescriptor
}

var fieldCache sync.Map // protoreflect.MessageDescriptor -> *messageFields

// fieldsOf returns the cached messageFields of md, reading the field options once per message.
func fieldsOf(md protoreflect.MessageDescriptor) *messageFields {
	if v, ok := fieldCache.Load(md); ok {
		return v.(*messageFields)
	}
	fields := md.Fields()
	mf := &messageFields{
		wire:     make([]string, fields.Len()),
		required: make([]bool, fields.Len()),
		byWire:   make(map[string]protoreflect.FieldDescriptor, fields.Len()),
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := string(fd.Name())
		if w, _ := proto.GetExtension(fd.Options(), iaasv1.E_WireName).(string); w != "" {
			name = w
		}
		mf.wire[i] = name
		mf.byWire[name] = fd
		bs, _ := proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
		for _, b := range bs {
			if b == annotations.FieldBehavior_REQUIRED {
				mf.required[i] = true
			}
		}
	}
	v, _ := fieldCache.LoadOrStore(md, mf)
	return v.(*messageFields)
}

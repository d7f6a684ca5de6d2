// Package codec converts between the qingcloud.iaas.v1 proto messages and QingCloud's wire format, by
// protobuf reflection only: there is no per-message code, so a new action needs nothing but its proto.
//
// Requests go one way, as flat parameters ([Encode], [EncodeStruct]):
//
//   - the parameter name is the proto field name, or the field's (qingcloud.iaas.v1.wire_name) option;
//   - only populated fields are sent (proto3 optional presence); a set empty string is sent as "name=";
//   - a repeated scalar becomes name.1, name.2, ... (1-based);
//   - a repeated message becomes name.N.field for each populated scalar field of element N; inside an
//     element a repeated scalar is joined with "," and a nested message, Struct or map is JSON text;
//   - booleans are 1 and 0, integers decimal, floating point numbers without an exponent for ordinary
//     values, timestamps 2006-01-02T15:04:05Z in UTC;
//   - any other singular message, Struct, map (and a Value holding an object or a list) is compact JSON
//     text, as QingCloud expects for parameters such as env or private_ips.
//
// Responses come back as JSON and are decoded tolerantly ([Decode]) in one pass over the bytes, with a
// plan of each message type worked out on first use from its descriptor (and, for generated types, the
// layout of the Go struct, whose fields are then written directly): unknown fields are ignored, values
// of a near-miss type are converted where the intent is clear (a numeric string into an integer, 0 or 1
// into a bool, ...), and values that cannot be made to fit are skipped and reported together in a
// [*MismatchError], which callers treat as a warning.
package codec

import (
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// fieldIndex caches, per message descriptor, the wire name of every field ([api.WireName], the one
// rule) and the JSON keys that select a field when decoding.
type fieldIndex struct {
	// wire is the wire name of each field, by fd.Index().
	wire []string
	// byKey maps the wire name, the proto name and the JSON name of each field to the field.
	byKey map[string]keyEntry
}

// keyEntry is one JSON key that selects a field.
type keyEntry struct {
	fd protoreflect.FieldDescriptor
	// alias is set when the key is not the field's wire name (its proto or JSON name); a document that
	// carries both the wire name and an alias is decoded from the wire name.
	alias bool
}

var indexes sync.Map // protoreflect.MessageDescriptor -> *fieldIndex

// indexOf returns the cached fieldIndex of md.
func indexOf(md protoreflect.MessageDescriptor) *fieldIndex {
	if v, ok := indexes.Load(md); ok {
		return v.(*fieldIndex)
	}
	fields := md.Fields()
	ix := &fieldIndex{wire: make([]string, fields.Len()), byKey: make(map[string]keyEntry, fields.Len())}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := api.WireName(fd)
		ix.wire[i] = name
		ix.byKey[name] = keyEntry{fd: fd}
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		for _, k := range []string{string(fd.Name()), fd.JSONName()} {
			if _, taken := ix.byKey[k]; !taken {
				ix.byKey[k] = keyEntry{fd: fd, alias: true}
			}
		}
	}
	v, _ := indexes.LoadOrStore(md, ix)
	return v.(*fieldIndex)
}

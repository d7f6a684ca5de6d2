package server

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// prepare fills the default zone into req (when it has an empty zone field; the rule is package
// zone's) and checks the zone and the spec's required parameters, so that a bad request is refused before any upstream call.
func prepare(req proto.Message, defaultZone string) error {
	m := req.ProtoReflect()
	var violations []*errdetails.BadRequest_FieldViolation
	if zf := m.Descriptor().Fields().ByName("zone"); zf != nil && zf.Kind() == protoreflect.StringKind && !zf.IsList() {
		z := zone.Resolve(m.Get(zf).String(), defaultZone)
		if z != "" {
			m.Set(zf, protoreflect.ValueOfString(z))
		}
		if v := zone.Violation(z); v != nil {
			violations = append(violations, v)
		}
	}
	violations = append(violations, missingRequired(m, "")...)
	if len(violations) == 0 {
		return nil
	}
	return qcerr.BadRequest(violations...)
}

// missingRequired walks m and reports every field marked REQUIRED that is not set.
func missingRequired(m protoreflect.Message, prefix string) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := prefix + api.WireName(fd)
		if api.IsRequired(fd) {
			missing := !m.Has(fd)
			if fd.IsList() {
				missing = m.Get(fd).List().Len() == 0
			}
			if missing {
				out = append(out, qcerr.Violation(name, fmt.Sprintf("%s is required", name)))
				continue
			}
		}
		if fd.Kind() != protoreflect.MessageKind || fd.Message().ParentFile().Package() != api.Package || fd.IsMap() {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			for j := 0; j < l.Len(); j++ {
				out = append(out, missingRequired(l.Get(j).Message(), fmt.Sprintf("%s.%d.", name, j+1))...)
			}
		case m.Has(fd):
			out = append(out, missingRequired(m.Get(fd).Message(), name+".")...)
		}
	}
	return out
}

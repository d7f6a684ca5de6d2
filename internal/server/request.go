package server

import (
	"fmt"
	"regexp"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// prepare fills the default zone into req (when it has an unset zone field) and checks the spec's
// required parameters, so that a bad request is refused before any upstream call.
func prepare(req proto.Message, defaultZone string) error {
	m := req.ProtoReflect()
	var violations []*errdetails.BadRequest_FieldViolation
	if zf := m.Descriptor().Fields().ByName("zone"); zf != nil && zf.Kind() == protoreflect.StringKind && !zf.IsList() {
		if !m.Has(zf) && defaultZone != "" {
			m.Set(zf, protoreflect.ValueOfString(defaultZone))
		}
		if v := zoneViolation(m.Get(zf).String()); v != nil {
			violations = append(violations, v)
		}
	}
	violations = append(violations, missingRequired(m, "")...)
	if len(violations) == 0 {
		return nil
	}
	return qcerr.BadRequest(violations...)
}

// zoneRE matches zone ids (pek3a, sh1a, ap2a), as the server's own zone setting must.
var zoneRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

// zoneViolation describes what is wrong with the zone of a request, or returns nil when it is a zone
// id. A zone is sent upstream as a signed parameter, so a malformed one could never inject anything;
// it is refused here so that it costs no upstream call (and quota) and gets a clear answer.
func zoneViolation(z string) *errdetails.BadRequest_FieldViolation {
	switch {
	case z == "":
		return qcerr.Violation("zone", "zone is required: set it in the request or configure a default zone on the server")
	case !zoneRE.MatchString(z):
		return qcerr.Violation("zone", fmt.Sprintf("zone %q must be a lower-case zone ID such as pek3a", z))
	}
	return nil
}

// missingRequired walks m and reports every field marked REQUIRED that is not set.
func missingRequired(m protoreflect.Message, prefix string) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := prefix + WireName(fd)
		if isRequired(fd) {
			missing := !m.Has(fd)
			if fd.IsList() {
				missing = m.Get(fd).List().Len() == 0
			}
			if missing {
				out = append(out, qcerr.Violation(name, fmt.Sprintf("%s is required", name)))
				continue
			}
		}
		if fd.Kind() != protoreflect.MessageKind || fd.Message().ParentFile().Package() != APIPackage || fd.IsMap() {
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

func isRequired(fd protoreflect.FieldDescriptor) bool {
	bs, _ := proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	for _, b := range bs {
		if b == annotations.FieldBehavior_REQUIRED {
			return true
		}
	}
	return false
}

// WireName is the QingCloud name of a field: its wire_name option, or else its proto name.
func WireName(fd protoreflect.FieldDescriptor) string {
	if w, _ := proto.GetExtension(fd.Options(), iaasv1.E_WireName).(string); w != "" {
		return w
	}
	return string(fd.Name())
}

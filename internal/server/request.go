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
	if vs := requestViolations(req, defaultZone); len(vs) > 0 {
		return qcerr.BadRequest(vs...)
	}
	return nil
}

// requestViolations is prepare's checks, returning every violation found.
func requestViolations(req proto.Message, defaultZone string) []*errdetails.BadRequest_FieldViolation {
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
	violations = append(violations, pagingViolations(m)...)
	return append(violations, missingRequired(m, "")...)
}

// pagingViolations checks the offset and limit of a paged action's request: QingCloud returns at most
// PageSize items per call and would silently return fewer for a larger limit (or its default for 0),
// and refuses a negative offset only after spending an API call; all three are refused here, the same
// way, saying what is accepted.
func pagingViolations(m protoreflect.Message) []*errdetails.BadRequest_FieldViolation {
	fields := m.Descriptor().Fields()
	offsetF, limitF := fields.ByName("offset"), fields.ByName("limit")
	if offsetF == nil || limitF == nil || offsetF.IsList() || limitF.IsList() {
		return nil
	}
	var out []*errdetails.BadRequest_FieldViolation
	if m.Has(limitF) {
		if l := m.Get(limitF).Int(); l < 1 || l > PageSize {
			out = append(out, qcerr.Violation("limit", fmt.Sprintf("limit must be from 1 to %d (the most QingCloud returns per call), not %d: page with offset, or use the auto-paging <Action>All stream", PageSize, l)))
		}
	}
	if m.Has(offsetF) {
		if o := m.Get(offsetF).Int(); o < 0 {
			out = append(out, qcerr.Violation("offset", fmt.Sprintf("offset must be 0 or more, not %d", o)))
		}
	}
	return out
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

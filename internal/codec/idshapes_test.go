package codec_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

// QingCloud answers some id fields in either shape: CreateSnapshots' job_id is a string in the 2013
// spec and a list in production since 2024 (QingCloud's Go SDK changed the field to parse it), and
// other actions are known to have drifted the same way. The decoder must accept both shapes for every
// id field of every message: a scalar where a list is declared is a one-element list, and a
// one-element list where a scalar is declared is its only element.

// idField reports whether fd holds resource or job ids: a string field named job_id or *_id, a
// repeated string field named job_ids or *_ids, or a repeated string field of a response (the
// created ids: instances, volumes, snapshots, ...).
func idField(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() != protoreflect.StringKind || fd.IsMap() {
		return false
	}
	name := api.WireName(fd)
	if fd.IsList() {
		return strings.HasSuffix(name, "_ids") ||
			strings.HasSuffix(string(fd.ContainingMessage().Name()), "Response")
	}
	return strings.HasSuffix(name, "_id")
}

// idFields returns every id field of every message of package qingcloud.iaas.v1 (nested messages
// included).
func idFields(t *testing.T) []protoreflect.FieldDescriptor {
	t.Helper()
	var out []protoreflect.FieldDescriptor
	var walk func(protoreflect.MessageDescriptors)
	walk = func(msgs protoreflect.MessageDescriptors) {
		for i := 0; i < msgs.Len(); i++ {
			md := msgs.Get(i)
			if md.IsMapEntry() {
				continue
			}
			fields := md.Fields()
			for j := 0; j < fields.Len(); j++ {
				if idField(fields.Get(j)) {
					out = append(out, fields.Get(j))
				}
			}
			walk(md.Messages())
		}
	}
	protoregistry.GlobalFiles.RangeFilesByPackage("qingcloud.iaas.v1", func(fd protoreflect.FileDescriptor) bool {
		walk(fd.Messages())
		return true
	})
	if len(out) < 100 {
		t.Fatalf("found only %d id fields; the descriptors are not registered or idField is wrong", len(out))
	}
	return out
}

func TestDecodeIDShapes(t *testing.T) {
	var jobID, jobIDs bool
	for _, fd := range idFields(t) {
		md := fd.ContainingMessage()
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			t.Fatalf("%s: %v", md.FullName(), err)
		}
		name := api.WireName(fd)
		jobID = jobID || name == "job_id"
		jobIDs = jobIDs || name == "job_ids"
		const id = "j-0123abcd"
		shapes := map[string]string{
			"declared shape":      `{"` + name + `":"` + id + `"}`,
			"other shape":         `{"` + name + `":["` + id + `"]}`,
			"other shape, padded": `{"` + name + `": [ "` + id + `" ] }`,
		}
		if fd.IsList() {
			shapes["declared shape"] = `{"` + name + `":["` + id + `"]}`
			shapes["other shape"] = `{"` + name + `":"` + id + `"}`
			delete(shapes, "other shape, padded")
		}
		for shape, doc := range shapes {
			m := mt.New()
			err := codec.Decode([]byte(doc), m.Interface())
			var got []string
			if fd.IsList() {
				l := m.Get(fd).List()
				for i := 0; i < l.Len(); i++ {
					got = append(got, l.Get(i).String())
				}
			} else if m.Has(fd) {
				got = []string{m.Get(fd).String()}
			}
			var mismatch *codec.MismatchError
			if err != nil && !errors.As(err, &mismatch) {
				t.Fatalf("%s.%s %s %s: %v", md.FullName(), name, shape, doc, err)
			}
			if err != nil || len(got) != 1 || got[0] != id {
				t.Errorf("%s.%s (%s) from %s: got %q, err %v; want [%q]", md.Name(), name, shape, doc, got, err, id)
			}
		}
	}
	if !jobID || !jobIDs {
		t.Fatalf("job_id seen %v, job_ids seen %v: both must be among the checked fields", jobID, jobIDs)
	}
}

package codec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// allKindsProto is a message with a field of every kind and shape Decode handles, the well-known
// types included, and a field with a wire name, a proto name and a JSON name. It is decoded as a
// dynamic message, so it also covers the reflective paths that generated types skip.
const allKindsProto = `
name: "codectest/all.proto" package: "codectest" syntax: "proto3"
dependency: ["google/protobuf/struct.proto", "google/protobuf/duration.proto", "google/protobuf/timestamp.proto",
  "google/protobuf/wrappers.proto", "google/protobuf/field_mask.proto", "qingcloud/iaas/v1/options.proto"]
enum_type { name: "Color" value { name: "RED" number: 0 } value { name: "GREEN" number: 1 } }
message_type {
  name: "All"
  field { name: "s" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "i32" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "i64" number: 3 type: TYPE_INT64 label: LABEL_OPTIONAL }
  field { name: "u32" number: 4 type: TYPE_UINT32 label: LABEL_OPTIONAL }
  field { name: "u64" number: 5 type: TYPE_UINT64 label: LABEL_OPTIONAL }
  field { name: "si32" number: 6 type: TYPE_SINT32 label: LABEL_OPTIONAL }
  field { name: "f32" number: 7 type: TYPE_FLOAT label: LABEL_OPTIONAL }
  field { name: "f64" number: 8 type: TYPE_DOUBLE label: LABEL_OPTIONAL }
  field { name: "b" number: 9 type: TYPE_BOOL label: LABEL_OPTIONAL }
  field { name: "by" number: 10 type: TYPE_BYTES label: LABEL_OPTIONAL }
  field { name: "e" number: 11 type: TYPE_ENUM type_name: ".codectest.Color" label: LABEL_OPTIONAL }
  field { name: "rs" number: 12 type: TYPE_STRING label: LABEL_REPEATED }
  field { name: "ri" number: 13 type: TYPE_INT32 label: LABEL_REPEATED }
  field { name: "child" number: 14 type: TYPE_MESSAGE type_name: ".codectest.All" label: LABEL_OPTIONAL }
  field { name: "children" number: 15 type: TYPE_MESSAGE type_name: ".codectest.All" label: LABEL_REPEATED }
  field { name: "ms" number: 16 type: TYPE_MESSAGE type_name: ".codectest.All.MsEntry" label: LABEL_REPEATED }
  field { name: "mi" number: 17 type: TYPE_MESSAGE type_name: ".codectest.All.MiEntry" label: LABEL_REPEATED }
  field { name: "mb" number: 18 type: TYPE_MESSAGE type_name: ".codectest.All.MbEntry" label: LABEL_REPEATED }
  field { name: "v" number: 19 type: TYPE_MESSAGE type_name: ".google.protobuf.Value" label: LABEL_OPTIONAL }
  field { name: "rv" number: 20 type: TYPE_MESSAGE type_name: ".google.protobuf.Value" label: LABEL_REPEATED }
  field { name: "lv" number: 21 type: TYPE_MESSAGE type_name: ".google.protobuf.ListValue" label: LABEL_OPTIONAL }
  field { name: "st" number: 22 type: TYPE_MESSAGE type_name: ".google.protobuf.Struct" label: LABEL_OPTIONAL }
  field { name: "d" number: 23 type: TYPE_MESSAGE type_name: ".google.protobuf.Duration" label: LABEL_OPTIONAL }
  field { name: "w" number: 24 type: TYPE_MESSAGE type_name: ".google.protobuf.Int64Value" label: LABEL_OPTIONAL }
  field { name: "ws" number: 25 type: TYPE_MESSAGE type_name: ".google.protobuf.StringValue" label: LABEL_OPTIONAL }
  field { name: "ts" number: 26 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" label: LABEL_OPTIONAL }
  field { name: "rts" number: 27 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" label: LABEL_REPEATED }
  field { name: "mv" number: 28 type: TYPE_MESSAGE type_name: ".codectest.All.MvEntry" label: LABEL_REPEATED }
  field { name: "fm" number: 29 type: TYPE_MESSAGE type_name: ".google.protobuf.FieldMask" label: LABEL_OPTIONAL }
  field { name: "max_size" json_name: "max_size" number: 30 type: TYPE_INT64 label: LABEL_OPTIONAL
          options { [qingcloud.iaas.v1.wire_name]: "max-size" } }
  field { name: "re" number: 31 type: TYPE_ENUM type_name: ".codectest.Color" label: LABEL_REPEATED }
  field { name: "rlv" number: 32 type: TYPE_MESSAGE type_name: ".google.protobuf.ListValue" label: LABEL_REPEATED }
  field { name: "rst" number: 33 type: TYPE_MESSAGE type_name: ".google.protobuf.Struct" label: LABEL_REPEATED }
  field { name: "camel_case" number: 34 type: TYPE_STRING label: LABEL_OPTIONAL }
  nested_type { name: "MsEntry" options { map_entry: true }
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL } }
  nested_type { name: "MiEntry" options { map_entry: true }
    field { name: "key" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL } }
  nested_type { name: "MbEntry" options { map_entry: true }
    field { name: "key" number: 1 type: TYPE_BOOL label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_MESSAGE type_name: ".codectest.All" label: LABEL_OPTIONAL } }
  nested_type { name: "MvEntry" options { map_entry: true }
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
    field { name: "value" number: 2 type: TYPE_MESSAGE type_name: ".google.protobuf.Value" label: LABEL_OPTIONAL } }
}`

// allKinds returns the descriptor of codectest.All.
func allKinds(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	var fdp descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(allKindsProto), &fdp); err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("All")
}

// differentialSeeds are documents that exercise every tolerance rule, duplicates and aliases.
var differentialSeeds = []string{
	`{"s":1.50,"i32":"7","i64":" 9007199254740993 ","u32":4.0,"u64":"1e3","si32":true,"f32":"1.5","f64":1e-400,"b":"TRUE","by":"aGk=","e":"GREEN"}`,
	`{"s":{"b":1,"a":"<x>"},"i32":3000000000,"u32":-1,"f32":1e39,"b":2,"by":5,"e":{"x":1},"rs":"one","ri":["1",null,"x",2.5]}`,
	`{"child":{"child":{"s":"deep"}},"children":[{"s":"a"},null,"",{"i32":{}}],"ms":{"a":"1","b":2,"c":null},"mi":{"1":"2","x":3,"2":{}}}`,
	`{"mb":{"true":{"s":"t"},"0":{"s":"f"},"maybe":{}},"v":{"a":[1,"x",null,true,{"b":1e999}]},"rv":[null,1,"s",[],{}]}`,
	`{"lv":"single","st":"{\"k\":[1,2]}","d":"1.5s","w":"12","ws":{"a":1},"ts":"2013-08-28 14:26:03","rts":["2013-08-28T14:26:03Z","","bad",5]}`,
	`{"mv":{"a":null,"b":[1]},"fm":"a,b","max_size":1,"max-size":2,"max_size":3,"re":["GREEN",1,"BLUE"],"rlv":[1,[2]],"rst":[{},"{}","x"]}`,
	`{"s":"a","s":"b","i32":{},"i32":5,"i64":7,"i64":{},"children":[{"s":"x"}],"children":[{"s":"y"}],"ms":{"a":{},"a":"2"}}`,
	`{"camelCase":"alias","camel_case":"wire","camelCase":"alias again","st":{"a":1e999,"a":2},"v":"{\"x\":1}"}`,
	`{"d":{"seconds":1},"d":"3s","w":null,"ts":{},"ts":"2013-08-28T22:26:03+08:00","lv":[[],{}],"e":1.0,"e":"7"}`,
	`{"ret_code":0,"message":"hi","RET_CODE":"1","instance_set":[{"instance_id":"i-1","vxnets":"vxnet-0","eip":"{\"eip_id\":\"e\"}"}]}`,
	`{"instance_set":[{"instance_id":"i-\u00e9\ud83d\ude00\ud800x","image":" {\"image_id\":1} "}],"instanceSet":[{"instance_id":"alias"}]}`,
	`{"role_count":{"master":"1","slave":2,"bad":{}},"app_info":{"enable":true},"endpoints":"{\"client\":{\"port\":2181}}","backup":{"m":"false"}}`,
	`{"instance_set":[` + strings.Repeat(`{"vcpus_current":"x"},`, 120) + `{}]}`,
	strings.Repeat(`{"children":[{},`, 40) + `{"i32":{}}` + strings.Repeat(`]}`, 40),
	`{"a":1} x`, `[1,2]`, `"str"`, `null`, ` `, `{"a":[1,]}`, `{"s":"\x01"}`, "{\"s\":\"\xff\xfe\"}", `{"s":"\u12"}`,
	`{"s":01}`, `{"s":-}`, `{"s":1.}`, `{"s":1e}`, `{"s":tru}`, `{"s" 1}`, `{"s":1,}`, `{,}`, `{"s":[1}`,
}

// FuzzDecodeDifferential decodes the same bytes with Decode and with refDecode, the decoder it replaced
// (encoding/json into map[string]any, then a protoreflect walk), into a generated response, a generated
// resource with free-form fields, and a dynamic message with every kind: both must agree on the kind
// of error, on the message filled and on the values skipped.
func FuzzDecodeDifferential(f *testing.F) {
	for _, s := range differentialSeeds {
		for which := range 3 {
			f.Add(uint8(which), []byte(s))
		}
	}
	// The FuzzDecode corpus too.
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	for _, name := range files {
		if data, ok := readCorpusBytes(f, name); ok {
			for which := range 3 {
				f.Add(uint8(which), data)
			}
		}
	}
	all := allKinds(f)
	newMsg := []func() proto.Message{
		func() proto.Message { return &iaasv1.DescribeInstancesResponse{} },
		func() proto.Message { return &iaasv1.Cluster{} },
		func() proto.Message { return dynamicpb.NewMessage(all) },
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		mk := newMsg[int(which)%len(newMsg)]
		got, want := mk(), mk()
		errGot := Decode(data, got)
		errWant := refDecode(data, want)
		compareDecodes(t, data, got, want, errGot, errWant)
	})
}

func TestDecodeDifferentialSeeds(t *testing.T) {
	all := allKinds(t)
	for _, s := range differentialSeeds {
		for _, mk := range []func() proto.Message{
			func() proto.Message { return &iaasv1.DescribeInstancesResponse{} },
			func() proto.Message { return &iaasv1.Cluster{} },
			func() proto.Message { return dynamicpb.NewMessage(all) },
		} {
			got, want := mk(), mk()
			compareDecodes(t, []byte(s), got, want, Decode([]byte(s), got), refDecode([]byte(s), want))
		}
	}
}

// compareDecodes fails t unless both decodes agree.
func compareDecodes(t *testing.T, data []byte, got, want proto.Message, errGot, errWant error) {
	t.Helper()
	var mmGot, mmWant *MismatchError
	errors.As(errGot, &mmGot)
	errors.As(errWant, &mmWant)
	plainGot, plainWant := errGot != nil && mmGot == nil, errWant != nil && mmWant == nil
	if plainGot != plainWant {
		t.Fatalf("%s (%s):\n new: %v\n old: %v", data, got.ProtoReflect().Descriptor().FullName(), errGot, errWant)
	}
	if plainGot {
		// The syntax error's detail is worded differently; its kind must agree.
		kind := func(err error) string {
			if s := err.Error(); !strings.HasPrefix(s, "codec: response is not valid JSON") {
				return s
			}
			return "not valid JSON"
		}
		if kind(errGot) != kind(errWant) {
			t.Fatalf("%s:\n new: %v\n old: %v", data, errGot, errWant)
		}
		return
	}
	if !proto.Equal(got, want) {
		t.Fatalf("%s (%s): messages differ\n new: %v\n old: %v", data, got.ProtoReflect().Descriptor().FullName(),
			prototext.Format(got), prototext.Format(want))
	}
	if (mmGot == nil) != (mmWant == nil) {
		t.Fatalf("%s: new %v, old %v", data, errGot, errWant)
	}
	if mmGot == nil {
		return
	}
	if len(mmGot.Fields)+mmGot.Omitted != len(mmWant.Fields)+mmWant.Omitted {
		t.Fatalf("%s: %d+%d mismatches, old %d+%d\n new: %v\n old: %v", data, len(mmGot.Fields), mmGot.Omitted,
			len(mmWant.Fields), mmWant.Omitted, mmGot.Fields, mmWant.Fields)
	}
	if mmGot.Omitted > 0 {
		return // which 100 the old decoder listed depended on map order
	}
	order := func(a, b FieldMismatch) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	}
	g, w := slices.Clone(mmGot.Fields), slices.Clone(mmWant.Fields)
	slices.SortFunc(g, order)
	slices.SortFunc(w, order)
	if !slices.Equal(g, w) {
		t.Fatalf("%s: mismatches differ\n new: %v\n old: %v", data, g, w)
	}
}

// readCorpusBytes reads a one-value []byte entry of a Go fuzz corpus file.
func readCorpusBytes(t testing.TB, name string) ([]byte, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

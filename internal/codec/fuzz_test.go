package codec_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, must fail with a plain error or a
// *MismatchError, and whatever it filled must be a valid message (it marshals).
// Seeds are added here and in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		describeInstancesJSON,
		`{}`, `[]`, `null`, `{"ret_code":0}`, `{"instance_set":null}`, `{"instance_set":{}}`, `{"instance_set":[null,1,"x",{}]}`,
		`{"instance_set":[{"create_time":"2013-08-28T14:26:03.123456789+08:00","eip":{"bandwidth":"50"}}]}`,
		`{"total_count":1e400}`, `{"total_count":-0.0}`, `{"total_count":"9999999999"}`, `{"total_count":true}`,
		`{"instance_set":[{"image":"{\"image_id\":\"x\"}","vxnets":"vxnet-0","volume_ids":"v"}]}`,
		"{\"action\":\"\xff\xfe\"}", `{"a":1}{"b":2}`, `{"instance_set":[{"tags":[{"tag_id":{"x":[[[]]]}}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &iaasv1.DescribeInstancesResponse{}
		err := codec.Decode(data, msg)
		var mismatch *codec.MismatchError
		if err != nil && !errors.As(err, &mismatch) {
			return
		}
		if mismatch != nil && (len(mismatch.Fields) == 0 || len(mismatch.Fields) > 100) {
			t.Fatalf("MismatchError with %d fields", len(mismatch.Fields))
		}
		if _, err := proto.Marshal(msg); err != nil {
			t.Fatalf("decoded message does not marshal: %v", err)
		}
		if err != nil && !utf8.ValidString(err.Error()) {
			t.Fatalf("error text is not UTF-8: %q", err.Error())
		}
	})
}

// FuzzEncodeStruct flattens arbitrary JSON objects: it must never panic, must be deterministic, and
// every produced parameter must have a non-empty name that starts with a top-level key.
// Seeds are added here and in testdata/fuzz/FuzzEncodeStruct.
func FuzzEncodeStruct(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":[1,"x",true,null]}`, `{"rules":[{"protocol":"tcp","val2":"","ids":["a","b"]}]}`,
		`{"env":{"k":[1,{"x":null}]}}`, `{"a":[[1,2],[]]}`, `{"a":1e300,"b":-1e-300,"c":0.1}`, `{"a":[{"":1}]}`,
		`{"a.1":"x","a":["y"]}`, `{"":""}`, `{"k":"\u2028<&>"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &structpb.Struct{}
		if err := protojson.Unmarshal(data, s); err != nil {
			return
		}
		got, err := codec.EncodeStruct(s)
		again, err2 := codec.EncodeStruct(s)
		if (err == nil) != (err2 == nil) || !maps.Equal(got, again) {
			t.Fatalf("not deterministic: %v %v / %v %v", got, err, again, err2)
		}
		if err != nil {
			return
		}
		for k := range got {
			top, _, _ := strings.Cut(k, ".")
			if _, ok := s.GetFields()[top]; !ok {
				// A top-level key may itself contain dots.
				found := false
				for name := range s.GetFields() {
					if k == name || strings.HasPrefix(k, name+".") {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("parameter %q does not come from a top-level key", k)
				}
			}
		}
	})
}

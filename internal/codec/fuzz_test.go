package codec_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
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

// FuzzEncode flattens arbitrary typed requests (decoded from fuzzed protobuf bytes) with nested lists,
// maps and free-form values: it must never panic, must be deterministic, and every parameter name must
// start with the QingCloud name of a populated top-level field.
func FuzzEncode(f *testing.F) {
	seeds := []proto.Message{
		&iaasv1.AddSecurityGroupRulesRequest{SecurityGroup: proto.String("sg-1"), Rules: []*iaasv1.SecurityGroupRule{
			{Protocol: proto.String("tcp"), Direction: proto.Int32(0), Val2: proto.String("")}}},
		&iaasv1.RunInstancesRequest{ImageId: proto.String("centos7x64d"), Vxnets: []string{"vxnet-0", "vxnet-1|10.0.0.2"}, Count: proto.Int32(2)},
		&iaasv1.UpdateClusterEnvironmentRequest{Cluster: proto.String("cl-1")},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
		f.Add(uint8(1), b)
		f.Add(uint8(2), b)
	}
	newMsg := []func() proto.Message{
		func() proto.Message { return &iaasv1.AddSecurityGroupRulesRequest{} },
		func() proto.Message { return &iaasv1.RunInstancesRequest{} },
		func() proto.Message { return &iaasv1.UpdateClusterEnvironmentRequest{} },
		func() proto.Message { return &iaasv1.AddLoadBalancerListenersRequest{} },
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		msg := newMsg[int(which)%len(newMsg)]()
		if err := proto.Unmarshal(data, msg); err != nil {
			return
		}
		a, errA := codec.Encode(msg)
		b, errB := codec.Encode(msg)
		if (errA == nil) != (errB == nil) || !maps.Equal(a, b) {
			t.Fatalf("Encode is not deterministic: %v/%v", errA, errB)
		}
		if errA != nil {
			return
		}
		var tops []string
		msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			tops = append(tops, api.WireName(fd))
			return true
		})
		for k := range a {
			ok := false
			for _, top := range tops {
				ok = ok || k == top || strings.HasPrefix(k, top+".")
			}
			if !ok {
				t.Fatalf("parameter %q does not come from a populated field (%v)", k, tops)
			}
		}
	})
}

package codec_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

// describeInstancesJSON is a DescribeInstances answer in the shape of the official documentation's
// example, including its quirks: "bandwidth" as a string, a null description, an empty transition
// status, plus fields this API version does not know.
const describeInstancesJSON = `{
  "action": "DescribeInstancesResponse",
  "instance_set": [{
    "vcpus_current": 1,
    "instance_id": "i-ogbndull",
    "image": {
      "processor_type": "64bit", "platform": "linux", "image_size": 20, "image_name": "CentOS 6.4 64bit",
      "image_id": "centos64x86a", "os_family": "centos", "provider": "system", "size": 20
    },
    "vxnets": [{
      "vxnet_name": "primary vxnet", "vxnet_type": 1, "vxnet_id": "vxnet-0", "nic_id": "52:54:6d:56:6d:1b",
      "private_ip": "10.50.15.102"
    }],
    "memory_current": 1024,
    "sub_code": 0,
    "transition_status": "",
    "instance_name": "",
    "instance_type": "small_b",
    "create_time": "2013-08-28T14:26:03Z",
    "status": "running",
    "status_time": "2013-08-29T06:25:56.123+08:00",
    "description": null,
    "eip": {"eip_id": "eip-1234abcd", "eip_addr": "121.201.7.44", "bandwidth": "50"},
    "security_group": {"is_default": 1, "security_group_id": "sg-z13kokni", "security_group_name": "default security group"},
    "volume_ids": ["vol-g7xy7d6g"],
    "keypair_ids": ["kp-bn2n77ow"],
    "a_field_from_the_future": {"x": [1, 2, 3]}
  }],
  "ret_code": 0,
  "total_count": 1,
  "request_id": "unknown top-level field"
}`

func TestDecodeDescribeInstances(t *testing.T) {
	var got iaasv1.DescribeInstancesResponse
	if err := codec.Decode([]byte(describeInstancesJSON), &got); err != nil {
		t.Fatal(err)
	}
	want := &iaasv1.DescribeInstancesResponse{
		Action:     proto.String("DescribeInstancesResponse"),
		RetCode:    proto.Int32(0),
		TotalCount: proto.Int32(1),
		InstanceSet: []*iaasv1.Instance{{
			VcpusCurrent: proto.Int32(1),
			InstanceId:   proto.String("i-ogbndull"),
			Image: &iaasv1.Image{
				ProcessorType: proto.String("64bit"), Platform: proto.String("linux"), ImageName: proto.String("CentOS 6.4 64bit"),
				ImageId: proto.String("centos64x86a"), OsFamily: proto.String("centos"), Provider: proto.String("system"), Size: proto.Int64(20),
			},
			Vxnets: []*iaasv1.NicVxnet{{
				VxnetName: proto.String("primary vxnet"), VxnetType: proto.Int32(1), VxnetId: proto.String("vxnet-0"),
				NicId: proto.String("52:54:6d:56:6d:1b"), PrivateIp: proto.String("10.50.15.102"),
			}},
			MemoryCurrent:    proto.Int64(1024),
			SubCode:          proto.Int32(0),
			TransitionStatus: proto.String(""),
			InstanceName:     proto.String(""),
			InstanceType:     proto.String("small_b"),
			CreateTime:       timestamppb.New(time.Date(2013, 8, 28, 14, 26, 3, 0, time.UTC)),
			Status:           proto.String("running"),
			StatusTime:       timestamppb.New(time.Date(2013, 8, 28, 22, 25, 56, 123e6, time.UTC)),
			Eip:              &iaasv1.Eip{EipId: proto.String("eip-1234abcd"), EipAddr: proto.String("121.201.7.44"), Bandwidth: proto.Int32(50)},
			SecurityGroup: &iaasv1.SecurityGroup{
				IsDefault: proto.Int32(1), SecurityGroupId: proto.String("sg-z13kokni"), SecurityGroupName: proto.String("default security group"),
			},
			VolumeIds:  []string{"vol-g7xy7d6g"},
			KeypairIds: []string{"kp-bn2n77ow"},
		}},
	}
	if diff := cmpDiff(want, &got); diff != "" {
		t.Errorf("Decode mismatch (-want +got):\n%s", diff)
	}
	if got.InstanceSet[0].Description != nil {
		t.Errorf("null description decoded as %q, want unset", got.InstanceSet[0].GetDescription())
	}
}

func TestDecodeTolerance(t *testing.T) {
	tests := []struct {
		name string
		json string
		want *iaasv1.Instance
	}{
		{"number into string", `{"instance_id": 12345678901234567890}`, &iaasv1.Instance{InstanceId: proto.String("12345678901234567890")}},
		{"bool into string", `{"instance_id": true}`, &iaasv1.Instance{InstanceId: proto.String("true")}},
		{"object into string as JSON text", `{"repl": {"b": 1, "a": "<x>"}}`, &iaasv1.Instance{Repl: proto.String(`{"a":"<x>","b":1}`)}},
		{"numeric string into int", `{"vcpus_current": " 4 "}`, &iaasv1.Instance{VcpusCurrent: proto.Int32(4)}},
		{"integral float into int", `{"vcpus_current": 4.0, "memory_current": 1e3}`, &iaasv1.Instance{VcpusCurrent: proto.Int32(4), MemoryCurrent: proto.Int64(1000)}},
		{"int64 without precision loss", `{"memory_current": 9007199254740993}`, &iaasv1.Instance{MemoryCurrent: proto.Int64(9007199254740993)}},
		{"bool into int", `{"sub_code": true}`, &iaasv1.Instance{SubCode: proto.Int32(1)}},
		{"empty string into int is unset", `{"vcpus_current": ""}`, &iaasv1.Instance{}},
		{"null is unset", `{"instance_id": null, "image": null, "vxnets": null, "create_time": null}`, &iaasv1.Instance{}},
		{"empty timestamp is unset", `{"create_time": ""}`, &iaasv1.Instance{}},
		{"timestamp without zone is UTC", `{"create_time": "2013-08-28 14:26:03"}`, &iaasv1.Instance{CreateTime: timestamppb.New(time.Date(2013, 8, 28, 14, 26, 3, 0, time.UTC))}},
		{"timestamp with offset", `{"create_time": "2013-08-28T22:26:03+08:00"}`, &iaasv1.Instance{CreateTime: timestamppb.New(time.Date(2013, 8, 28, 14, 26, 3, 0, time.UTC))}},
		{"single value into a list", `{"volume_ids": "vol-1"}`, &iaasv1.Instance{VolumeIds: []string{"vol-1"}}},
		{"empty string into a list is unset", `{"volume_ids": ""}`, &iaasv1.Instance{}},
		{"nulls in a list are dropped", `{"volume_ids": ["vol-1", null, "vol-2"]}`, &iaasv1.Instance{VolumeIds: []string{"vol-1", "vol-2"}}},
		{"message from JSON text", `{"eip": "{\"eip_id\":\"eip-1\"}"}`, &iaasv1.Instance{Eip: &iaasv1.Eip{EipId: proto.String("eip-1")}}},
		{"empty string into a message is unset", `{"eip": ""}`, &iaasv1.Instance{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := &iaasv1.Instance{}
			if err := codec.Decode([]byte(tc.json), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmpDiff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeWireNames(t *testing.T) {
	for in, want := range map[string]int64{
		`{"max-size": 5}`:                5, // the wire name
		`{"max_size": 6}`:                6, // the proto name, as protojson writes it
		`{"max_size": 7, "max-size": 8}`: 8, // the wire name wins
	} {
		got := &iaasv1.GetResourceLimitResponse{}
		if err := codec.Decode([]byte(in), got); err != nil || got.GetMaxSize() != want {
			t.Errorf("Decode(%s) = %v, %v; want max_size %d", in, got, err, want)
		}
	}
}

func TestDecodeBool(t *testing.T) {
	for in, want := range map[string]bool{`1`: true, `0`: false, `true`: true, `false`: false, `"1"`: true, `"false"`: false, `"TRUE"`: true, `1.0`: true} {
		got := &iaasv1.Cluster{}
		if err := codec.Decode([]byte(`{"debug":`+in+`}`), got); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got.Debug == nil || got.GetDebug() != want {
			t.Errorf("debug %s decoded as %v, want %v", in, got.Debug, want)
		}
	}
}

func TestDecodeFreeForm(t *testing.T) {
	// Struct fields take objects (also as JSON text); maps take objects.
	in := `{
	  "cluster_id": "cl-1",
	  "app_info": {"enable": true, "items": [1, "a", null, {"k": 2.5}]},
	  "endpoints": "{\"client\":{\"port\":2181}}",
	  "advanced_actions": {"node": "Node"},
	  "upgrade_policy": [{"a": 1}, "x", null],
	  "role_count": {"master": "1", "slave": 2, "bad": {}},
	  "backup": {"master": 1, "slave": "false"},
	  "links": "{\"doc\":\"https://docs\"}"
	}`
	got := &iaasv1.Cluster{}
	err := codec.Decode([]byte(in), got)
	var mm *codec.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Decode error = %v, want a MismatchError for role_count[\"bad\"]", err)
	}
	if len(mm.Fields) != 1 || mm.Fields[0].Path != `role_count["bad"]` {
		t.Errorf("mismatches = %+v", mm.Fields)
	}
	appInfo, _ := structpb.NewStruct(map[string]any{"enable": true, "items": []any{1, "a", nil, map[string]any{"k": 2.5}}})
	endpoints, _ := structpb.NewStruct(map[string]any{"client": map[string]any{"port": 2181}})
	obj, _ := structpb.NewValue(map[string]any{"a": 1})
	want := &iaasv1.Cluster{
		ClusterId:       proto.String("cl-1"),
		AppInfo:         appInfo,
		Endpoints:       endpoints,
		AdvancedActions: map[string]string{"node": "Node"},
		UpgradePolicy:   []*structpb.Value{obj, structpb.NewStringValue("x"), structpb.NewNullValue()},
		RoleCount:       map[string]int64{"master": 1, "slave": 2},
		Backup:          map[string]bool{"master": true, "slave": false},
		Links:           map[string]string{"doc": "https://docs"},
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeMismatch(t *testing.T) {
	in := `{
	  "total_count": 3000000000,
	  "instance_set": [
	    {"instance_id": "i-1", "vcpus_current": {"n": 1}, "create_time": "yesterday", "memory_current": 1.5},
	    {"instance_id": "i-2", "image": [1], "vxnets": [{"vxnet_id": "vxnet-0", "vxnet_type": "x"}]}
	  ]
	}`
	got := &iaasv1.DescribeInstancesResponse{}
	err := codec.Decode([]byte(in), got)
	var mm *codec.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Decode error = %v, want *MismatchError", err)
	}
	var paths []string
	for _, f := range mm.Fields {
		paths = append(paths, f.Path)
		if f.Reason == "" {
			t.Errorf("%s: empty reason", f.Path)
		}
	}
	want := []string{
		"instance_set[0].create_time", "instance_set[0].memory_current", "instance_set[0].vcpus_current",
		"instance_set[1].image", "instance_set[1].vxnets[0].vxnet_type", "total_count",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("mismatch paths = %v, want %v", paths, want)
	}
	// Everything else was filled.
	if len(got.InstanceSet) != 2 || got.InstanceSet[0].GetInstanceId() != "i-1" || got.InstanceSet[1].Vxnets[0].GetVxnetId() != "vxnet-0" {
		t.Errorf("partial decode lost fields: %v", got)
	}
	if got.TotalCount != nil || got.InstanceSet[0].VcpusCurrent != nil {
		t.Errorf("mismatched fields were set: %v", got)
	}
	if msg := err.Error(); !strings.Contains(msg, "6 response value(s)") || !strings.Contains(msg, "and 1 more") {
		t.Errorf("Error() = %q", msg)
	}
}

func TestDecodeMismatchCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"instance_set":[`)
	for i := 0; i < 250; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"vcpus_current":"x"}`)
	}
	b.WriteString(`]}`)
	err := codec.Decode([]byte(b.String()), &iaasv1.DescribeInstancesResponse{})
	var mm *codec.MismatchError
	if !errors.As(err, &mm) || len(mm.Fields) != 100 || mm.Omitted != 150 {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{``, `   `, `[]`, `"x"`, `null`, `{"a":`, `{"ret_code":0}{}`, `{"ret_code":0} x`, `{'a':1}`} {
		err := codec.Decode([]byte(in), &iaasv1.DescribeInstancesResponse{})
		var mm *codec.MismatchError
		if err == nil || errors.As(err, &mm) {
			t.Errorf("Decode(%q) = %v, want a plain error", in, err)
		}
	}
	if err := codec.Decode([]byte(`{}`), nil); err == nil {
		t.Error("Decode into nil: no error")
	}
}

func TestDecodeResets(t *testing.T) {
	got := &iaasv1.Instance{InstanceId: proto.String("old"), Status: proto.String("old")}
	if err := codec.Decode([]byte(`{"status":"running"}`), got); err != nil {
		t.Fatal(err)
	}
	if got.InstanceId != nil || got.GetStatus() != "running" {
		t.Errorf("got %v", got)
	}
}

func TestDecodeNumbers(t *testing.T) {
	// Doubles from the free-form Struct keep full precision.
	got := &iaasv1.Cluster{}
	if err := codec.Decode([]byte(`{"app_info":{"x":0.1,"big":1e308,"neg":-0}}`), got); err != nil {
		t.Fatal(err)
	}
	f := got.GetAppInfo().GetFields()
	if f["x"].GetNumberValue() != 0.1 || f["big"].GetNumberValue() != 1e308 || !math.Signbit(f["neg"].GetNumberValue()) {
		t.Errorf("numbers: %v", f)
	}
	// A number too big for a double is skipped inside a Struct.
	err := codec.Decode([]byte(`{"app_info":{"huge":1e999}}`), got)
	var mm *codec.MismatchError
	if !errors.As(err, &mm) || mm.Fields[0].Path != "app_info.huge" {
		t.Errorf("err = %v", err)
	}
}

// cmpDiff compares two messages with proto.Equal and returns both in text form when they differ.
func cmpDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	return "want: " + prototext.Format(want) + "\n got: " + prototext.Format(got)
}

// TestDecodeTimestampRange checks that a timestamp whose offset moves it outside the range of
// google.protobuf.Timestamp (0001-01-01 .. 9999-12-31 UTC) is skipped, not stored as a Timestamp that
// protojson (the REST gateway) cannot render.
func TestDecodeTimestampRange(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool // decoded
	}{
		{"0001-01-01T00:00:00Z", true},
		{"9999-12-31T23:59:59Z", true},
		{"0001-01-01T00:00:00-01:00", true},
		{"9999-12-31T23:59:59+01:00", true},
		{"0001-01-01T00:00:00+01:00", false},
		{"9999-12-31T23:59:59-01:00", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got := &iaasv1.DescribeInstancesResponse{}
			err := codec.Decode([]byte(`{"instance_set":[{"create_time":"`+tt.in+`"}]}`), got)
			ts := got.GetInstanceSet()[0].GetCreateTime()
			if tt.want {
				if err != nil || ts == nil || ts.CheckValid() != nil {
					t.Fatalf("got %v (%v), err %v", ts, ts.CheckValid(), err)
				}
				return
			}
			var mm *codec.MismatchError
			if !errors.As(err, &mm) || ts != nil {
				t.Fatalf("got %v (valid: %v), err %v; want it skipped", ts, ts.CheckValid(), err)
			}
		})
	}
}

// TestDecodeConcurrent decodes documents of one type whose keys come in different orders from many
// goroutines at once: the plans and their learned key order are shared, and every decode must still
// come out right (run with -race).
func TestDecodeConcurrent(t *testing.T) {
	docs := []string{
		`{"instance_set":[{"instance_id":"i-1","status":"running","vcpus_current":2}],"total_count":1,"ret_code":0}`,
		`{"ret_code":0,"total_count":1,"instance_set":[{"vcpus_current":2,"status":"running","instance_id":"i-1"}]}`,
		`{"total_count":1,"instance_set":[{"status":"running","x":1,"instance_id":"i-1","vcpus_current":"2"}]}`,
	}
	want := &iaasv1.DescribeInstancesResponse{TotalCount: proto.Int32(1), InstanceSet: []*iaasv1.Instance{
		{InstanceId: proto.String("i-1"), Status: proto.String("running"), VcpusCurrent: proto.Int32(2)}}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				doc := docs[(g+i)%len(docs)]
				got := &iaasv1.DescribeInstancesResponse{}
				if err := codec.Decode([]byte(doc), got); err != nil {
					t.Error(err)
					return
				}
				got.RetCode = nil
				if diff := cmpDiff(want, got); diff != "" {
					t.Errorf("%s:\n%s", doc, diff)
					return
				}
			}
		}()
	}
	wg.Wait()
}

package codec_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// BenchmarkEncode flattens a RunInstances request and an AddSecurityGroupRules request with ten rules.
func BenchmarkEncode(b *testing.B) {
	run := &iaasv1.RunInstancesRequest{
		ImageId: proto.String("centos7x64d"), InstanceType: proto.String("s1.large.r2"), Count: proto.Int32(3),
		LoginMode: proto.String("keypair"), LoginKeypair: proto.String("kp-bn2n77ow"),
		Vxnets: []string{"vxnet-0", "vxnet-abcd123|192.168.1.2"}, Volumes: []string{"vol-1", "vol-2"},
		InstanceName: proto.String("web"), Zone: proto.String("pek3a"),
	}
	rules := &iaasv1.AddSecurityGroupRulesRequest{SecurityGroup: proto.String("sg-6ft05wt6"), Zone: proto.String("pek3a")}
	for i := 0; i < 10; i++ {
		rules.Rules = append(rules.Rules, &iaasv1.SecurityGroupRule{
			Action: proto.String("accept"), Direction: proto.Int32(0), Priority: proto.Int32(int32(i)),
			Protocol: proto.String("tcp"), Val1: proto.String(fmt.Sprint(8000 + i)), Val2: proto.String(""),
		})
	}
	for name, msg := range map[string]proto.Message{"RunInstances": run, "AddSecurityGroupRules10": rules} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Encode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode decodes a DescribeInstances answer with 100 instances.
func BenchmarkDecode(b *testing.B) {
	data := testutil.InstancesPage(100)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var resp iaasv1.DescribeInstancesResponse
		if err := codec.Decode(data, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeVsMap times, in each iteration, codec.Decode of the 100-instance page and
// encoding/json of the same bytes into map[string]any (what an SDK does), each on its own, so the ratio
// (codec ÷ map) comes from one run on one machine state. allocs/op is of the pair; codec-allocs/instance
// is codec.Decode's alone, divided by the 100 instances.
func BenchmarkDecodeVsMap(b *testing.B) {
	data := testutil.InstancesPage(100)
	var codecTime, mapTime time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		var resp iaasv1.DescribeInstancesResponse
		if err := codec.Decode(data, &resp); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		codecTime += t1.Sub(t0)
		mapTime += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(codecTime.Microseconds())/n, "codec-µs/op")
	b.ReportMetric(float64(mapTime.Microseconds())/n, "map-µs/op")
	b.ReportMetric(float64(codecTime)/float64(mapTime), "ratio")
	b.ReportMetric(testing.AllocsPerRun(20, func() {
		var resp iaasv1.DescribeInstancesResponse
		_ = codec.Decode(data, &resp)
	})/100, "codec-allocs/instance")
}

// BenchmarkDecodeJSONMap decodes the same page with encoding/json into map[string]any, the yardstick
// of BenchmarkDecode.
func BenchmarkDecodeJSONMap(b *testing.B) {
	data := testutil.InstancesPage(100)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchmarkFixtureDecodes(t *testing.T) {
	var resp iaasv1.DescribeInstancesResponse
	if err := codec.Decode(testutil.InstancesPage(100), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.GetInstanceSet()) != 100 || resp.GetInstanceSet()[99].GetInstanceId() != "i-00000099" {
		t.Fatalf("fixture decoded to %d instances", len(resp.GetInstanceSet()))
	}
}

// TestDecodePageAllocations: the 100-instance page costs chunks, not values: at most two allocations
// per instance (1.3 when this was written; 14.6 before messages and lists came from the slab).
func TestDecodePageAllocations(t *testing.T) {
	data := testutil.InstancesPage(100)
	allocs := testing.AllocsPerRun(10, func() {
		var resp iaasv1.DescribeInstancesResponse
		if err := codec.Decode(data, &resp); err != nil {
			t.Fatal(err)
		}
	})
	if perInstance := allocs / 100; perInstance > 2 {
		t.Errorf("%.2f allocations per instance, want at most 2", perInstance)
	}
}

package codec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// BenchmarkDecodeBeforeAfter times, in each iteration, the same 100-instance page (the fixture of
// BenchmarkDecode) decoded by Decode, by refDecode (the decoder Decode replaced) and by encoding/json
// into map[string]any, each on its own, so that the ratios come from one run on one machine state.
func BenchmarkDecodeBeforeAfter(b *testing.B) {
	data := page100()
	var tNew, tOld, tMap time.Duration
	for b.Loop() {
		t0 := time.Now()
		var a iaasv1.DescribeInstancesResponse
		if err := Decode(data, &a); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var o iaasv1.DescribeInstancesResponse
		if err := refDecode(data, &o); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		tNew, tOld, tMap = tNew+t1.Sub(t0), tOld+t2.Sub(t1), tMap+t3.Sub(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tNew.Microseconds())/n, "new-µs/op")
	b.ReportMetric(float64(tOld.Microseconds())/n, "old-µs/op")
	b.ReportMetric(float64(tMap.Microseconds())/n, "map-µs/op")
	b.ReportMetric(float64(tNew)/float64(tMap), "new/map")
	b.ReportMetric(float64(tOld)/float64(tMap), "old/map")
	allocs := func(f func()) float64 { return testing.AllocsPerRun(10, f) }
	b.ReportMetric(allocs(func() { _ = Decode(data, &iaasv1.DescribeInstancesResponse{}) }), "new-allocs/op")
	b.ReportMetric(allocs(func() { _ = refDecode(data, &iaasv1.DescribeInstancesResponse{}) }), "old-allocs/op")
	b.ReportMetric(allocs(func() { var m map[string]any; _ = json.Unmarshal(data, &m) }), "map-allocs/op")
}

// page100 is the fixture of BenchmarkDecode (bench_test.go, package codec_test).
func page100() []byte {
	const inst = `{"vcpus_current":1,"instance_id":"i-%08d","image":{"processor_type":"64bit","platform":"linux",
"image_size":20,"image_name":"CentOS 7.7 64bit","image_id":"centos77x64a","os_family":"centos","provider":"system"},
"vxnets":[{"vxnet_name":"primary vxnet","vxnet_type":1,"vxnet_id":"vxnet-0","nic_id":"52:54:6d:56:6d:1b","private_ip":"10.50.15.%d"}],
"memory_current":1024,"sub_code":0,"transition_status":"","instance_name":"web-%d","instance_type":"s1.small.r1",
"create_time":"2013-08-28T14:26:03Z","status":"running","status_time":"2013-08-29T06:25:56Z","description":null,
"eip":{"eip_id":"eip-1234abcd","eip_addr":"121.201.7.44","bandwidth":2},
"security_group":{"is_default":1,"security_group_id":"sg-z13kokni","security_group_name":"default security group"},
"volume_ids":["vol-g7xy7d6g"],"keypair_ids":["kp-bn2n77ow"],"tags":[{"tag_id":"tag-1","tag_name":"prod"}]}`
	var b strings.Builder
	b.WriteString(`{"action":"DescribeInstancesResponse","ret_code":0,"total_count":100,"instance_set":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, inst, i, i%250, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

package codec

import (
	"encoding/json"
	"testing"
	"time"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// BenchmarkDecodeBeforeAfter times, in each iteration, the same 100-instance page (the fixture of
// BenchmarkDecode) decoded by Decode, by refDecode (the decoder Decode replaced) and by encoding/json
// into map[string]any, each on its own, so that the ratios come from one run on one machine state.
func BenchmarkDecodeBeforeAfter(b *testing.B) {
	data := testutil.InstancesPage(100)
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

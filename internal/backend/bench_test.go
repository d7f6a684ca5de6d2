package backend_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// BenchmarkInvokeMethod measures one DescribeInstances round trip (encode, sign, HTTP over loopback,
// check, decode 100 instances) against a canned upstream; compare with the codec benchmarks to see the
// share of the HTTP path.
func BenchmarkInvokeMethod(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"action":"DescribeInstancesResponse","ret_code":0,"total_count":100,"instance_set":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"instance_id":"i-%08d","status":"running","vcpus_current":1,"memory_current":1024,`+
			`"create_time":"2013-08-28T14:26:03Z","image":{"image_id":"centos77x64a"},"vxnets":[{"vxnet_id":"vxnet-0","private_ip":"10.0.0.%d"}]}`, i, i)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, body) }))
	defer up.Close()
	c := newClient(b, up.URL+"/iaas/")
	md := methodByAction(b, "DescribeInstances")
	req := &iaasv1.DescribeInstancesRequest{Status: []string{"running"}, Verbose: proto.Int32(1), Limit: proto.Int32(100), Zone: proto.String("pek3a")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.InvokeMethod(ctx, md, req); err != nil {
			b.Fatal(err)
		}
	}
}

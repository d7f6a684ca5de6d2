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
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
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
	// No quota budget: the default one (2,000 calls an hour) would refuse the benchmark after its
	// first 2,000 iterations.
	c := newClient(b, up.URL+"/iaas/", func(c *backend.Config) { c.Budget = budget.Unlimited() })
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

// BenchmarkCallDiscipline measures what the upstream discipline costs per call (retry loop, budget,
// coalescing, stats) on a canned loopback upstream: compare the variants with each other.
func BenchmarkCallDiscipline(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"action":"DescribeZonesResponse","ret_code":0,"total_count":1,"zone_set":[{"zone_id":"pek3a","status":"active"}]}`)
	}))
	defer up.Close()
	params := map[string]string{"zone": "pek3a"}
	for _, v := range []struct {
		name string
		mod  func(*backend.Config)
	}{
		{"bare", func(c *backend.Config) { c.Budget = budget.Unlimited(); c.DisableCoalescing = true; c.MaxAttempts = 1 }},
		{"budget", func(c *backend.Config) {
			c.Budget, _ = budget.New(budget.Config{Limit: 1 << 30})
			c.DisableCoalescing = true
		}},
		{"coalescing", func(c *backend.Config) { c.Budget = budget.Unlimited() }},
		{"all", func(c *backend.Config) { c.Budget, _ = budget.New(budget.Config{Limit: 1 << 30}) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			c := newClient(b, up.URL+"/iaas/", v.mod)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Call(ctx, "DescribeZones", params, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

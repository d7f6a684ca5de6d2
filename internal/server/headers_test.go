package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

// TestRESTAuthorizationForwardedOnce checks that a REST caller's Authorization header reaches gRPC
// exactly once, and that Grpc-Metadata-Authorization cannot add or replace credentials.
func TestRESTAuthorizationForwardedOnce(t *testing.T) {
	up := httptest.NewServer(emulator.New(emulator.Options{Quota: -1}))
	t.Cleanup(up.Close)
	be, err := backend.New(backend.Config{Endpoint: up.URL + "/iaas/", Credentials: signer.Credentials{
		AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen [][]string
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		seen = append(seen, md.Get("authorization"))
		mu.Unlock()
		return h(ctx, req)
	}
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: be, Zone: "pek3a"}, UnaryInterceptors: []grpc.UnaryServerInterceptor{record}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(h)
	t.Cleanup(rest.Close)

	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer right"},
		{"Authorization": "Bearer right", "Grpc-Metadata-Authorization": "Bearer other"},
		{"Grpc-Metadata-Authorization": "Bearer other"},
	} {
		req, _ := http.NewRequest("GET", rest.URL+"/v1/iaas/DescribeZones", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("DescribeZones with %v: HTTP %d", hdr, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]string{{"Bearer right"}, {"Bearer right"}, nil}
	if len(seen) != len(want) {
		t.Fatalf("interceptor saw %d calls, want %d", len(seen), len(want))
	}
	for i := range want {
		if len(seen[i]) != len(want[i]) || (len(want[i]) == 1 && seen[i][0] != want[i][0]) {
			t.Errorf("call %d: authorization metadata %q, want %q", i, seen[i], want[i])
		}
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestUnauthenticatedBodiesAreNotRead: a caller without a valid token costs the server its headers,
// never its body or message. N concurrent maximum-size requests over REST (7 MiB, with and without a
// declared length) and gRPC (just under the 4 MiB message limit) are refused UNAUTHENTICATED, and the
// bytes the server read from its connections stay far below one request's size each (net/http drains
// at most 256 KiB of an unread chunked body; HTTP/2 flow control lets a gRPC client push one 64 KiB
// window before the refusal arrives).
func TestUnauthenticatedBodiesAreNotRead(t *testing.T) {
	s := newTenantStack(t)
	const n = 16
	const perRequest = 512 << 10 // what the server may read of each refused request, at most

	t.Run("REST", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := &bigBody{size: 7 << 20}
				req, err := http.NewRequest("POST", s.rest+"/v1/iaas:call", body)
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					req.ContentLength = body.size
				}
				if i%4 == 1 {
					req.Header.Set("Authorization", "Bearer "+auth.GenerateToken()) // a wrong token
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server may close the connection while the client is still writing
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("HTTP %s %.300s, want 401", resp.Status, b)
				}
			})
		}
		wg.Wait()
		if got := s.restRead.Load(); got > n*perRequest {
			t.Errorf("the REST server read %d bytes of %d refused 7 MiB requests, want at most %d", got, n, n*perRequest)
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		before := s.grpcRead.Load()
		big := strings.Repeat("a", 4<<20-4<<10)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx := ctxT(t)
				if i%2 == 1 {
					ctx = bearer(ctx, auth.GenerateToken())
				}
				_, err := iaasv1.NewCallServiceClient(s.conn).Call(ctx, &iaasv1.CallRequest{Action: "DescribeZones",
					Params: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewStringValue(big)}}})
				if status.Code(err) != codes.Unauthenticated {
					t.Errorf("%v, want UNAUTHENTICATED", err)
				}
			})
		}
		wg.Wait()
		if got := s.grpcRead.Load() - before; got > n*perRequest {
			t.Errorf("the gRPC server read %d bytes of %d refused 4 MiB messages, want at most %d", got, n, n*perRequest)
		}
	})

	if got := s.emu.Stats().TotalRequests; got != 0 {
		t.Errorf("%d upstream requests", got)
	}
	// The refusal is the one the interceptors give: UNAUTHENTICATED with its reason, over REST too.
	resp, err := http.Post(s.rest+"/v1/iaas:call", "application/json", strings.NewReader(`{"action":"DescribeZones"}`))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct {
			Status  string
			Details []struct{ Reason string }
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || e.Error.Status != "UNAUTHENTICATED" || len(e.Error.Details) == 0 || e.Error.Details[0].Reason != "MISSING_CREDENTIALS" {
		t.Errorf("HTTP %s %+v, want 401 UNAUTHENTICATED MISSING_CREDENTIALS", resp.Status, e)
	}
}

// TestUnauthenticatedExemptCallsAreBounded: health and reflection need no token, but at most
// auth.MaxUnauthenticatedStreams such calls may be open at once; the next is refused with
// RESOURCE_EXHAUSTED before its message is read, a caller with a token is not counted, and a slot is
// free again once a call ends.
func TestUnauthenticatedExemptCallsAreBounded(t *testing.T) {
	s := newTenantStack(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	hc := healthpb.NewHealthClient(s.conn)
	var watches []healthpb.Health_WatchClient
	for range auth.MaxUnauthenticatedStreams {
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil { // the stream is open on the server
			t.Fatal(err)
		}
		watches = append(watches, w)
	}
	if _, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("one more call without a token: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := hc.Check(bearer(ctxT(t), s.tokA), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("with a token: %v", err)
	}
	cancel()
	for _, w := range watches {
		for {
			if _, err := w.Recv(); err != nil {
				break
			}
		}
	}
	// The slots are released as the server sees the streams end; wait for that on the observable
	// answer rather than a sleep.
	for {
		_, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{})
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after the streams ended: %v", err)
		}
	}
}

package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// TestRunReplicasShareTheBudget runs two servers on one Redis with a budget of 10 per minute: together
// they admit the 9 user calls the budget allows (1 is kept for polls), not 9 each. Redis's state is
// the health of the "redis" service; when Redis dies, calls go on within the fallback share and the
// service turns NOT_SERVING.
func TestRunReplicasShareTheBudget(t *testing.T) {
	srv := redistest.Start(t)
	args := []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-redis-url", srv.URL(),
		"-quota-requests", "10", "-quota-window", "1m", "-redis-fallback-share", "0.5"}
	replicas := []*running{start(t, args, nil), start(t, args, nil)}
	ctx := ctxT(t)
	var clients []iaasv1.ZoneServiceClient
	var health []healthpb.HealthClient
	for _, r := range replicas {
		conn := dial(t, r.addrs.GRPC, nil)
		clients = append(clients, iaasv1.NewZoneServiceClient(conn))
		health = append(health, healthpb.NewHealthClient(conn))
	}
	ok, refused := 0, 0
	for i := range 20 {
		_, err := clients[i%2].DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.ResourceExhausted:
			refused++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if ok != 9 || refused != 11 {
		t.Fatalf("two replicas admitted %d and refused %d of 20 calls; want 9 and 11 (one budget of 10, 1 kept for polls)", ok, refused)
	}
	for i, h := range health {
		if st, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: redisHealthService}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("replica %d: redis health = %v, %v; want SERVING", i, st, err)
		}
	}

	srv.Kill()
	// The next call finds Redis gone and decides locally, at once; the health turns NOT_SERVING.
	start := time.Now()
	_, err := clients[0].DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
	if code := status.Code(err); code != codes.OK && code != codes.ResourceExhausted {
		t.Fatalf("a call with Redis down: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a call with Redis down took %v", d)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := health[0].Check(ctx, &healthpb.HealthCheckRequest{Service: redisHealthService})
		if err == nil && st.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis health with Redis down = %v, %v; want NOT_SERVING", st, err)
		}
		time.Sleep(20 * time.Millisecond) // polls an observable state, bounded
	}
	if st, err := health[0].Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("server health with Redis down = %v, %v; want SERVING (a replica in fallback serves)", st, err)
	}
	if logs := replicas[0].logs.String(); strings.Count(logs, `msg="Redis unreachable`) < 1 {
		t.Fatalf("logs do not tell that Redis is unreachable:\n%s", logs)
	}
}

// TestRunRedisDownAtStartHidesThePassword starts a server whose Redis is unreachable: it serves
// anyway (within its fallback share), and neither its logs nor /metrics show the URL's password.
func TestRunRedisDownAtStartHidesThePassword(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill() // a port where nothing listens now
	url := "redis://:hunter2-not-logged@" + srv.Addr
	r := start(t, []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-redis-url", url}, nil)
	ctx := ctxT(t)
	conn := dial(t, r.addrs.GRPC, nil)
	if _, err := iaasv1.NewZoneServiceClient(conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{}); err != nil {
		t.Fatalf("DescribeZones with Redis down: %v", err)
	}
	resp, err := http.Get("http://" + r.addrs.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	logs := r.logs.String()
	if !strings.Contains(logs, "redis://:xxxxx@"+srv.Addr) {
		t.Errorf("logs do not name the Redis URL with its password masked:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") || strings.Contains(string(metrics), "hunter2") {
		t.Fatalf("the Redis password leaked into logs or metrics:\n%s", logs)
	}
	if !strings.Contains(string(metrics), `qingcloud_redis_fallback{component="budget"} 1`) {
		t.Errorf("metrics do not show the budget in fallback:\n%s", metrics)
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// slowUpstream is an emulator whose DescribeZones takes latency, and whose jobs stay pending for a
// minute (so job watches stay open); it returns the server arguments that use it.
func slowUpstream(t *testing.T, latency time.Duration) []string {
	t.Helper()
	emu, err := emulator.Listen("127.0.0.1:0", emulator.Options{
		JobPending: time.Minute, Quota: -1,
		Faults: emulator.Faults{Latency: latency, Actions: []string{"DescribeZones"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(emulator.DefaultSecretAccessKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-endpoint", emu.Endpoint(), "-access-key", emulator.DefaultAccessKeyID, "-secret-key-file", secret,
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-health-addr", "127.0.0.1:0"}
}

type result struct {
	err  error
	code int
}

// TestGracefulShutdown cancels run's context (what SIGTERM does) while a slow call is in flight over
// gRPC and over REST, a job watch is open and a client watches health: health turns NOT_SERVING, the
// watch ends UNAVAILABLE, new calls are refused, the slow calls complete OK, and run returns well
// within the grace period.
func TestGracefulShutdown(t *testing.T) {
	const latency = 1500 * time.Millisecond
	const grace = 10 * time.Second
	r := start(t, append(slowUpstream(t, latency), "-shutdown-grace", grace.String()), nil)
	ctx := ctxT(t)
	conn := dial(t, r.addrs.GRPC, nil)

	hw, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := hw.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch: %v, %v", st, err)
	}
	run, err := iaasv1.NewInstanceServiceClient(conn).RunInstances(ctx, runReq)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := iaasv1.NewWatchServiceClient(conn).WatchJobs(ctx, &iaasv1.WatchJobsRequest{JobIds: []string{run.GetJobId()}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := jobs.Recv(); err != nil || ev.GetJob().GetJob().GetStatus() != "pending" {
		t.Fatalf("job watch: %v, %v", ev, err)
	}

	slowGRPC := make(chan result, 1)
	go func() {
		_, err := iaasv1.NewZoneServiceClient(conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
		slowGRPC <- result{err: err}
	}()
	slowREST := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + r.addrs.HTTP + "/v1/iaas/DescribeZones")
		if err != nil {
			slowREST <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slowREST <- result{code: resp.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond) // both slow calls are now waiting on the upstream

	began := time.Now()
	r.cancel()

	// Health turns NOT_SERVING (seen by the health watch, and by the plaintext health listener).
	if st, err := hw.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch after the cancel: %v, %v", st, err)
	}
	// The job watch ends UNAVAILABLE, for the client to resume elsewhere.
	for {
		_, err := jobs.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
			t.Fatalf("job watch ended with %v, want UNAVAILABLE", err)
		}
		break
	}
	// New calls are refused.
	if _, err := iaasv1.NewInstanceServiceClient(conn).DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a new gRPC call during shutdown: %v, want UNAVAILABLE", err)
	}
	if resp, err := http.Get("http://" + r.addrs.HTTP + "/v1/iaas/DescribeInstances"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a new REST call during shutdown: %s, want 503 or a refused connection", resp.Status)
		}
	}
	// The calls in flight complete.
	if res := <-slowGRPC; res.err != nil {
		t.Fatalf("the in-flight gRPC call: %v", res.err)
	}
	if res := <-slowREST; res.err != nil || res.code != 200 {
		t.Fatalf("the in-flight REST call: %d, %v", res.code, res.err)
	}
	// run returns, well within the grace period.
	if err := r.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}
	if took := time.Since(began); took > grace/2 {
		t.Fatalf("shutdown took %v", took)
	}
	if !strings.Contains(r.logs.String(), "msg=stopped") {
		t.Fatalf("logs:\n%s", r.logs)
	}
}

// TestShutdownGraceCutsStragglers: a call still running when the grace period ends is cut, and run
// returns right after the grace period.
func TestShutdownGraceCutsStragglers(t *testing.T) {
	const grace = 500 * time.Millisecond
	r := start(t, append(slowUpstream(t, 10*time.Second), "-shutdown-grace", grace.String()), nil)
	conn := dial(t, r.addrs.GRPC, nil)
	slow := make(chan error, 1)
	go func() {
		_, err := iaasv1.NewZoneServiceClient(conn).DescribeZones(ctxT(t), &iaasv1.DescribeZonesRequest{})
		slow <- err
	}()
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}
	if took := time.Since(began); took > grace+2*time.Second {
		t.Fatalf("run returned %v after the cancel, grace %v", took, grace)
	}
	if err := <-slow; status.Code(err) != codes.Unavailable {
		t.Fatalf("the straggler: %v, want UNAVAILABLE", err)
	}
	if !strings.Contains(r.logs.String(), "shutdown grace period ended") {
		t.Fatalf("logs:\n%s", r.logs)
	}
}

// TestShutdownHealthListener: the plaintext health listener reports NOT_SERVING while the server
// drains.
func TestShutdownHealthListener(t *testing.T) {
	r := start(t, append(slowUpstream(t, 2*time.Second), "-shutdown-grace", "10s"), nil)
	conn := dial(t, r.addrs.GRPC, nil)
	go func() {
		_, _ = iaasv1.NewZoneServiceClient(conn).DescribeZones(context.Background(), &iaasv1.DescribeZonesRequest{})
	}()
	time.Sleep(300 * time.Millisecond)
	hconn := dial(t, r.addrs.Health, nil)
	health := healthpb.NewHealthClient(hconn)
	if st, err := health.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before: %v, %v", st, err)
	}
	r.cancel()
	deadline := time.Now().Add(time.Second)
	for {
		st, err := health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
		if err == nil && st.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health listener still says %v, %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

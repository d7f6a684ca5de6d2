package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

// upstreamEvents wraps the emulator's handler and reports each request when it arrives and when it
// has been served (the action applied, or refused), so that tests wait on these events, not on time.
type upstreamEvents struct {
	next            http.Handler
	arrived, served chan struct{}
}

func newUpstreamEvents(next http.Handler) *upstreamEvents {
	return &upstreamEvents{next: next, arrived: make(chan struct{}, 64), served: make(chan struct{}, 64)}
}

func (u *upstreamEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.arrived <- struct{}{}
	defer func() { u.served <- struct{}{} }()
	u.next.ServeHTTP(w, r)
}

// wait receives n events from ch, or fails the test when ctx ends first.
func wait(t *testing.T, ctx context.Context, ch <-chan struct{}, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d seen before %v", what, i, n, ctx.Err())
		}
	}
}

// shutdownStack is a server on real TCP listeners (gRPC, REST and the health-only listener), as
// cmd/server runs it.
type shutdownStack struct {
	srv              *server.Server
	conn, healthConn *grpc.ClientConn
	rest, metrics    string
	served           chan error // what ServeHTTP, Serve, ServeHealth and ServeMetrics returned
}

func newShutdownStack(t *testing.T, up tenant.Upstream) *shutdownStack {
	t.Helper()
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: up, Zone: "pek3a"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	gwCtx, gwCancel := context.WithCancel(context.Background())
	t.Cleanup(gwCancel)
	h, err := srv.HTTPHandler(gwCtx)
	if err != nil {
		t.Fatal(err)
	}
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	gl, hl, healthLn, metricsLn := listen(), listen(), listen(), listen()
	s := &shutdownStack{srv: srv, rest: "http://" + hl.Addr().String(), metrics: "http://" + metricsLn.Addr().String() + "/metrics", served: make(chan error, 4)}
	go func() { s.served <- srv.Serve(gl) }()
	go func() { s.served <- srv.ServeHTTP(&http.Server{Handler: h}, hl) }()
	go func() { s.served <- srv.ServeHealth(healthLn) }()
	go func() { s.served <- srv.ServeMetrics(metricsLn) }()
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	s.conn, s.healthConn = dial(gl.Addr().String()), dial(healthLn.Addr().String())
	return s
}

// reasonMeta returns the ErrorInfo of a gRPC error.
func reasonMeta(err error) (reason string, meta map[string]string) {
	info := qcerr.Info(err)
	return info.GetReason(), info.GetMetadata()
}

// TestShutdownAnswersInFlightMutations is the scenario of issue #11: the grace period (1 s) is shorter
// than the upstream's latency (4 s). Every RunInstances in flight, over gRPC and REST, gets an answer
// that says the instances may exist (CANCELED, may_have_applied=true) instead of a bare UNAVAILABLE
// from a closed connection; a read in flight gets UNAVAILABLE (safe to retry); new calls are refused;
// health says NOT_SERVING; and the instances were indeed created upstream.
func TestShutdownAnswersInFlightMutations(t *testing.T) {
	const latency, grace = 4 * time.Second, time.Second
	emu := emulator.New(emulator.Options{Quota: -1, JobPending: time.Minute,
		Faults: emulator.Faults{Latency: latency, Actions: []string{"RunInstances", "DescribeZones"}}})
	events := newUpstreamEvents(emu)
	up := httptest.NewServer(events)
	t.Cleanup(up.Close)
	be, err := backend.New(backend.Config{Endpoint: up.URL + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}})
	if err != nil {
		t.Fatal(err)
	}
	s := newShutdownStack(t, be)
	ctx := ctxT(t)

	const grpcRuns, restRuns = 3, 2
	grpcErrs := make(chan error, grpcRuns+1)
	for range grpcRuns {
		go func() {
			_, err := iaasv1.NewInstanceServiceClient(s.conn).RunInstances(ctx, runRequest(1))
			grpcErrs <- err
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
		readErr <- err
	}()
	type restAnswer struct {
		code int
		body map[string]any
		err  error
	}
	restAnswers := make(chan restAnswer, restRuns)
	for range restRuns {
		go func() {
			resp, err := http.Post(s.rest+"/v1/iaas/RunInstances", "application/json",
				strings.NewReader(`{"image_id":"centos7x64d","instance_type":"c1m1","login_mode":"passwd","login_passwd":"Passw0rd1","vxnets":["vxnet-0"]}`))
			if err != nil {
				restAnswers <- restAnswer{err: err}
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			b, _ := io.ReadAll(resp.Body)
			err = json.Unmarshal(b, &body)
			restAnswers <- restAnswer{code: resp.StatusCode, body: body, err: err}
		}()
	}
	// Every call has reached QingCloud (the emulator), which takes 4 s to answer.
	wait(t, ctx, events.arrived, grpcRuns+restRuns+1, "upstream requests")

	hw, err := healthpb.NewHealthClient(s.healthConn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := hw.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown: %v, %v", st, err)
	}
	began := time.Now()
	shut := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		shut <- s.srv.Shutdown(sctx)
	}()
	// Health turns NOT_SERVING on the health-only listener; then new calls are refused.
	if st, err := hw.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after shutdown began: %v, %v", st, err)
	}
	_, err = iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
	if reason, _ := reasonMeta(err); status.Code(err) != codes.Unavailable || (reason != qcerr.ReasonShuttingDown && reason != "") {
		t.Fatalf("a new call during shutdown: %v, want UNAVAILABLE", err)
	}

	// The metrics listener still answers while the server drains.
	if resp, err := http.Get(s.metrics); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a scrape during shutdown: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}

	for range grpcRuns {
		err := <-grpcErrs
		if err == nil {
			continue // answered in time: the caller has its result
		}
		reason, meta := reasonMeta(err)
		if status.Code(err) != codes.Canceled || reason != qcerr.ReasonShuttingDown || meta["may_have_applied"] != "true" || meta["action"] != "RunInstances" {
			t.Errorf("gRPC RunInstances in flight: %v (ErrorInfo %s %v), want CANCELED with may_have_applied=true", err, reason, meta)
		}
	}
	for range restRuns {
		a := <-restAnswers
		if a.err != nil {
			t.Errorf("REST RunInstances in flight: %v", a.err)
			continue
		}
		if a.code == http.StatusOK {
			continue
		}
		e, _ := a.body["error"].(map[string]any)
		details, _ := e["details"].([]any)
		var meta map[string]any
		for _, d := range details {
			if m, _ := d.(map[string]any); m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
				meta, _ = m["metadata"].(map[string]any)
			}
		}
		if a.code != 499 || e["status"] != "CANCELLED" || meta["may_have_applied"] != "true" {
			t.Errorf("REST RunInstances in flight: HTTP %d %v, want 499 CANCELLED with may_have_applied=true in the body", a.code, a.body)
		}
	}
	if err := <-readErr; err != nil {
		if reason, meta := reasonMeta(err); status.Code(err) != codes.Unavailable || reason != qcerr.ReasonShuttingDown || meta["may_have_applied"] != "false" {
			t.Errorf("the read in flight: %v (%s %v), want UNAVAILABLE SHUTTING_DOWN, may_have_applied=false", err, reason, meta)
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v, want every call answered before the connections closed", err)
	}
	if took := time.Since(began); took >= latency {
		t.Errorf("Shutdown took %v, not bounded by the grace period", took)
	}
	for range 4 {
		if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("a listener ended with %v", err)
		}
	}
	// The emulator (QingCloud) applied every RunInstances although the callers were answered early:
	// exactly what may_have_applied told them.
	wait(t, ctx, events.served, grpcRuns+restRuns+1, "upstream answers")
	if n := emu.Stats().Keys[emulator.DefaultAccessKeyID].Resources["instance"]; n != grpcRuns+restRuns {
		t.Errorf("the emulator holds %d instances, want %d", n, grpcRuns+restRuns)
	}
}

// stuckUpstream never returns until released, whatever the call's context says.
type stuckUpstream struct{ arrived, release chan struct{} }

func (u *stuckUpstream) InvokeMethod(context.Context, *api.Method, proto.Message) (proto.Message, error) {
	u.arrived <- struct{}{}
	<-u.release
	return nil, status.Error(codes.Internal, "released")
}

func (u *stuckUpstream) Call(context.Context, string, map[string]string, bool) ([]byte, error) {
	u.arrived <- struct{}{}
	<-u.release
	return nil, status.Error(codes.Internal, "released")
}

// TestShutdownClosesWhatOutlivesTheGrace: a call that ignores its cancellation is cut when the grace
// period ends, and Shutdown says so; it does not wait for it.
func TestShutdownClosesWhatOutlivesTheGrace(t *testing.T) {
	up := &stuckUpstream{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(up.release) })
	s := newShutdownStack(t, up)
	ctx := ctxT(t)
	callErr := make(chan error, 1)
	go func() {
		_, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
		callErr <- err
	}()
	wait(t, ctx, up.arrived, 1, "the call")
	sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err == nil || !strings.Contains(err.Error(), "grace period ended") {
		t.Fatalf("Shutdown = %v, want the grace period ended", err)
	}
	if err := <-callErr; status.Code(err) != codes.Unavailable {
		t.Fatalf("the stuck call: %v, want UNAVAILABLE (connection closed)", err)
	}
}

// TestShutdownIdle: with nothing in flight, Shutdown returns at once, and a second Shutdown too.
func TestShutdownIdle(t *testing.T) {
	s := newShutdownStack(t, &stuckUpstream{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Shutdown waited for the deadline with nothing in flight")
	}
}

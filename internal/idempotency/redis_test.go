package idempotency

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// replicas are Guards on one Redis, as replicas of a deployment are, sharing one handler counter.
func replicas(t *testing.T, rs *redistest.Server, n int, handler grpc.UnaryHandler) []grpc.UnaryServerInterceptor {
	t.Helper()
	var out []grpc.UnaryServerInterceptor
	for range n {
		rdb := rs.Client()
		store := NewRedis(rdb, RedisOptions{PollInterval: 20 * time.Millisecond})
		g, err := New(Options{
			Store:    store,
			Tenant:   func(context.Context) (string, error) { return "alice", nil },
			Mutation: func(string, any) bool { return true },
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g.UnaryServerInterceptor())
	}
	return out
}

func keyed(key string) context.Context {
	return metadataCtx(MetadataKey, key)
}

func TestRedisOneRunAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	var runs atomic.Int64
	started := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	handler := func(ctx context.Context, req any) (any, error) {
		runs.Add(1)
		once.Do(func() { close(started) })
		<-gate
		return &iaasv1.RunInstancesResponse{JobId: proto.String("j-abc"), Instances: []string{"i-1", "i-2"}}, nil
	}
	reps := replicas(t, rs, 3, handler)
	info := &grpc.UnaryServerInfo{FullMethod: runMethod}
	const n = 30
	var wg sync.WaitGroup
	answers := make([]any, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = reps[i%3](keyed("k-1"), runReq("centos"), info, handler)
		}()
	}
	<-started
	close(gate)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times across 3 replicas for one key, want 1", runs.Load())
	}
	for i := range n {
		if errs[i] != nil || !proto.Equal(answers[i].(proto.Message), answers[0].(proto.Message)) {
			t.Fatalf("call %d = %v, %v; want the first answer %v", i, answers[i], errs[i], answers[0])
		}
	}
	// Another request under the key, on another replica: refused.
	_, err := reps[1](keyed("k-1"), runReq("ubuntu"), info, handler)
	if status.Code(err) != codes.FailedPrecondition || qcerr.Info(err).GetReason() != ReasonKeyReused {
		t.Errorf("reused key on another replica: %v", err)
	}
}

func TestRedisRecordsErrorsThatMayHaveApplied(t *testing.T) {
	rs := redistest.Start(t)
	var runs atomic.Int64
	handler := func(ctx context.Context, req any) (any, error) {
		runs.Add(1)
		return nil, qcerr.Transport("RunInstances", "the connection closed before the whole answer arrived", true)
	}
	reps := replicas(t, rs, 2, handler)
	info := &grpc.UnaryServerInfo{FullMethod: runMethod}
	_, err1 := reps[0](keyed("k"), runReq("centos"), info, handler)
	_, err2 := reps[1](keyed("k"), runReq("centos"), info, handler)
	if runs.Load() != 1 || status.Convert(err1).Message() != status.Convert(err2).Message() || !qcerr.MayHaveApplied(err2) {
		t.Errorf("runs %d; errors %v / %v; want one run and the same recorded error", runs.Load(), err1, err2)
	}
}

func TestRedisDownFallsBackLocally(t *testing.T) {
	rs := redistest.Start(t)
	var runs atomic.Int64
	handler := func(ctx context.Context, req any) (any, error) {
		runs.Add(1)
		return &iaasv1.RunInstancesResponse{JobId: proto.String("j-abc")}, nil
	}
	reps := replicas(t, rs, 1, handler)
	info := &grpc.UnaryServerInfo{FullMethod: runMethod}
	rs.Kill()
	// Same replica, same key: still once, from the local store.
	for range 2 {
		if _, err := reps[0](keyed("k"), runReq("centos"), info, handler); err != nil {
			t.Fatalf("with Redis down: %v", err)
		}
	}
	if runs.Load() != 1 {
		t.Errorf("runs = %d with Redis down, want 1 (local fallback)", runs.Load())
	}
	rs.Restart()
	if _, err := reps[0](keyed("k2"), runReq("centos"), info, handler); err != nil {
		t.Fatalf("after Redis returned: %v", err)
	}
	if _, err := reps[0](keyed("k2"), runReq("centos"), info, handler); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 2 {
		t.Errorf("runs = %d, want 2", runs.Load())
	}
}

// TestRedisInterruptedClaim: a claim left running past its deadline (its replica died) is answered
// as interrupted on every replica, never run again.
func TestRedisInterruptedClaim(t *testing.T) {
	rs := redistest.Start(t)
	store := NewRedis(rs.Client(), RedisOptions{})
	ctx := context.Background()
	if o, err := store.Begin(ctx, "k", "fp", 50*time.Millisecond); o != nil || err != nil {
		t.Fatalf("claim: %v, %v", o, err)
	}
	// The claimer dies. Another replica's repeat waits for the claim, then gets the interrupted outcome
	// once the claim's deadline (on Redis's clock) has passed.
	other := NewRedis(rs.Client(), RedisOptions{PollInterval: 10 * time.Millisecond})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	o, err := other.Begin(wctx, "k", "fp", time.Minute)
	if err != nil || o == nil {
		t.Fatalf("repeat: %v, %v", o, err)
	}
	_, rerr := replay(o)
	if status.Code(rerr) != codes.Aborted || qcerr.Info(rerr).GetReason() != ReasonInterrupted || !qcerr.MayHaveApplied(rerr) {
		t.Errorf("repeat got %v, want ABORTED %s with may_have_applied", rerr, ReasonInterrupted)
	}
	// The late Finish of the dead claimer does not overwrite it.
	if err := store.Finish(ctx, "k", &Outcome{Response: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	if o2, err := other.Begin(ctx, "k", "fp", time.Minute); err != nil || string(o2.Status) != string(o.Status) {
		t.Errorf("after a late Finish: %v, %v", o2, err)
	}
}

package idempotency

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

const runMethod = "/qingcloud.iaas.v1.InstanceService/RunInstances"

// fixture is a Guard over a Memory store with a handler that counts its runs.
type fixture struct {
	g     *Guard
	store *Memory
	runs  atomic.Int64
	gate  chan struct{} // when set, the handler waits for it to close
	err   error         // when set, the handler fails with it

	startOnce sync.Once
	started   chan struct{} // closed when the handler first runs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: NewMemory(MemoryOptions{}), started: make(chan struct{})}
	g, err := New(Options{
		Store: f.store,
		Tenant: func(ctx context.Context) (string, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			if t := md.Get("tenant"); len(t) > 0 {
				return t[0], nil
			}
			return "alice", nil
		},
		Mutation: func(fullMethod string, _ any) bool { return fullMethod == runMethod },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	return f
}

func (f *fixture) handler(ctx context.Context, req any) (any, error) {
	n := f.runs.Add(1)
	f.startOnce.Do(func() { close(f.started) })
	if f.gate != nil {
		<-f.gate
	}
	if f.err != nil {
		return nil, f.err
	}
	return &iaasv1.RunInstancesResponse{JobId: proto.String("j-" + string(rune('a'+n))), Instances: []string{"i-1"}}, nil
}

func (f *fixture) call(ctx context.Context, method, key string, req proto.Message) (any, error) {
	if key != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Join(mdOf(ctx), metadata.Pairs(MetadataKey, key)))
	}
	return f.g.UnaryServerInterceptor()(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, f.handler)
}

func mdOf(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

func runReq(image string) *iaasv1.RunInstancesRequest {
	return &iaasv1.RunInstancesRequest{ImageId: proto.String(image), InstanceType: proto.String("c1m1")}
}

func TestConcurrentCallsWithOneKeyRunOnce(t *testing.T) {
	f := newFixture(t)
	f.gate = make(chan struct{})
	const n = 50
	var wg sync.WaitGroup
	answers := make([]any, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = f.call(context.Background(), runMethod, "key-1", runReq("centos"))
		}()
	}
	// Wait until the first call runs, then let it finish: the others wait on it.
	<-f.started
	close(f.gate)
	wg.Wait()
	if got := f.runs.Load(); got != 1 {
		t.Fatalf("handler ran %d times for one key, want 1", got)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !proto.Equal(answers[i].(proto.Message), answers[0].(proto.Message)) {
			t.Errorf("answer %d = %v, want %v", i, answers[i], answers[0])
		}
	}
}

func TestSameKeyOtherRequestIsRefused(t *testing.T) {
	f := newFixture(t)
	if _, err := f.call(context.Background(), runMethod, "k", runReq("centos")); err != nil {
		t.Fatal(err)
	}
	_, err := f.call(context.Background(), runMethod, "k", runReq("ubuntu"))
	if status.Code(err) != codes.FailedPrecondition || qcerr.Info(err).GetReason() != ReasonKeyReused {
		t.Fatalf("reused key: %v, want FAILED_PRECONDITION %s", err, ReasonKeyReused)
	}
	if f.runs.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", f.runs.Load())
	}
}

func TestTenantsHaveSeparateKeySpaces(t *testing.T) {
	f := newFixture(t)
	bob := metadata.NewIncomingContext(context.Background(), metadata.Pairs("tenant", "bob"))
	if _, err := f.call(context.Background(), runMethod, "k", runReq("centos")); err != nil {
		t.Fatal(err)
	}
	// bob's key "k" is his own: another request under it runs.
	if _, err := f.call(bob, runMethod, "k", runReq("ubuntu")); err != nil {
		t.Fatalf("bob's first call with k: %v", err)
	}
	if f.runs.Load() != 2 {
		t.Errorf("handler ran %d times, want 2", f.runs.Load())
	}
}

func TestReadsAndUnkeyedCallsIgnoreTheStore(t *testing.T) {
	f := newFixture(t)
	for range 2 {
		if _, err := f.call(context.Background(), "/qingcloud.iaas.v1.InstanceService/DescribeInstances", "k", &iaasv1.DescribeInstancesRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.call(context.Background(), runMethod, "", runReq("centos")); err != nil {
			t.Fatal(err)
		}
	}
	if f.runs.Load() != 4 || f.store.Len() != 0 {
		t.Errorf("runs = %d, keys = %d; want 4 runs and no key stored", f.runs.Load(), f.store.Len())
	}
}

func TestOutcomesByWhetherTheyMayHaveApplied(t *testing.T) {
	mayHave := qcerr.Transport("RunInstances", "the connection closed before the whole answer arrived", true)
	never := qcerr.Transport("RunInstances", "could not send the request", false)

	// An error that may have applied is recorded and replayed.
	f := newFixture(t)
	f.err = mayHave
	_, err1 := f.call(context.Background(), runMethod, "k", runReq("centos"))
	f.err = nil
	_, err2 := f.call(context.Background(), runMethod, "k", runReq("centos"))
	if f.runs.Load() != 1 || status.Code(err2) != codes.Unavailable || !qcerr.MayHaveApplied(err2) || status.Convert(err1).Message() != status.Convert(err2).Message() {
		t.Errorf("may-have-applied error: runs %d, replay %v; want 1 run and the same error", f.runs.Load(), err2)
	}

	// An error that proves nothing happened frees the key: the retry runs.
	f = newFixture(t)
	f.err = never
	if _, err := f.call(context.Background(), runMethod, "k", runReq("centos")); status.Code(err) != codes.Unavailable {
		t.Fatalf("first call: %v", err)
	}
	f.err = nil
	if _, err := f.call(context.Background(), runMethod, "k", runReq("centos")); err != nil {
		t.Fatalf("retry after an unsent request: %v", err)
	}
	if f.runs.Load() != 2 {
		t.Errorf("runs = %d, want 2 (the key was freed)", f.runs.Load())
	}
}

// TestCallerGoneStillRecords: the caller cancels while its call runs; the call goes on and its
// answer is what the retry gets, without a second run.
func TestCallerGoneStillRecords(t *testing.T) {
	f := newFixture(t)
	f.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.call(ctx, runMethod, "k", runReq("centos"))
		done <- err
	}()
	<-f.started
	cancel()
	close(f.gate)
	if err := <-done; err != nil {
		t.Fatalf("first call: %v (its handler ran detached and succeeded)", err)
	}
	resp, err := f.call(context.Background(), runMethod, "k", runReq("centos"))
	if err != nil || resp.(*iaasv1.RunInstancesResponse).GetJobId() != "j-b" {
		t.Fatalf("retry = %v, %v; want the recorded answer j-b", resp, err)
	}
	if f.runs.Load() != 1 {
		t.Errorf("runs = %d, want 1", f.runs.Load())
	}
}

func TestRepeatWaitsBoundedByItsDeadline(t *testing.T) {
	f := newFixture(t)
	f.gate = make(chan struct{})
	defer close(f.gate)
	go func() { _, _ = f.call(context.Background(), runMethod, "k", runReq("centos")) }()
	<-f.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.call(ctx, runMethod, "k", runReq("centos"))
	if status.Code(err) != codes.Canceled || qcerr.Info(err).GetReason() != ReasonStillRunning {
		t.Errorf("repeat while running, canceled: %v, want CANCELED %s", err, ReasonStillRunning)
	}
}

func TestMalformedKeys(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{"has space", string(make([]byte, MaxKeyLen+1)), "tab\tkey"} {
		_, err := f.call(context.Background(), runMethod, k, runReq("centos"))
		var br *errdetails.BadRequest
		for _, d := range status.Convert(err).Details() {
			if b, ok := d.(*errdetails.BadRequest); ok {
				br = b
			}
		}
		if status.Code(err) != codes.InvalidArgument || br.GetFieldViolations()[0].GetField() != MetadataKey {
			t.Errorf("key %q: %v, want INVALID_ARGUMENT naming %s", k, err, MetadataKey)
		}
	}
	if f.runs.Load() != 0 {
		t.Errorf("handler ran %d times for malformed keys", f.runs.Load())
	}
}

func TestMemoryExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(MemoryOptions{Retention: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	if o, err := m.Begin(ctx, "k", "fp", time.Minute); o != nil || err != nil {
		t.Fatalf("first Begin = %v, %v", o, err)
	}
	if err := m.Finish(ctx, "k", &Outcome{Response: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Minute)
	if o, err := m.Begin(ctx, "k", "fp", time.Minute); err != nil || o == nil || string(o.Response) != "x" {
		t.Fatalf("within retention: %v, %v", o, err)
	}
	now = now.Add(2 * time.Minute)
	if o, err := m.Begin(ctx, "k", "other", time.Minute); o != nil || err != nil {
		t.Fatalf("after retention, the key is free: %v, %v", o, err)
	}
	if m.Finish(ctx, "nope", &Outcome{}) == nil {
		t.Error("Finish of an unclaimed key succeeded")
	}
}

func TestMemoryFull(t *testing.T) {
	m := NewMemory(MemoryOptions{MaxKeys: 2})
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if _, err := m.Begin(ctx, k, "fp", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Begin(ctx, "c", "fp", time.Minute); !errors.Is(err, ErrFull) {
		t.Errorf("third key: %v, want ErrFull", err)
	}
}

func metadataCtx(kv ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
}

// TestInterruptedClaimIsNotRunAgain: a claim whose call never reported back (its server stopped) is
// answered as interrupted, with may_have_applied, never run again.
func TestInterruptedClaimIsNotRunAgain(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(MemoryOptions{Now: func() time.Time { return now }})
	ctx := context.Background()
	if o, err := m.Begin(ctx, "k", "fp", time.Minute); o != nil || err != nil {
		t.Fatalf("claim: %v, %v", o, err)
	}
	now = now.Add(2 * time.Minute) // the claimer died without Finish or Abandon
	o, err := m.Begin(ctx, "k", "fp", time.Minute)
	if err != nil || o == nil {
		t.Fatalf("after the claim's TTL: %v, %v; want the interrupted outcome", o, err)
	}
	_, rerr := replay(o)
	if status.Code(rerr) != codes.Aborted || qcerr.Info(rerr).GetReason() != ReasonInterrupted || !qcerr.MayHaveApplied(rerr) {
		t.Errorf("replayed %v, want ABORTED %s with may_have_applied", rerr, ReasonInterrupted)
	}
	// Still the same answer later, within the retention.
	now = now.Add(time.Hour)
	if o2, err := m.Begin(ctx, "k", "fp", time.Minute); err != nil || o2 == nil || string(o2.Status) != string(o.Status) {
		t.Errorf("later: %v, %v", o2, err)
	}
}

// TestSecretsAreNotRecorded: CreateKeyPair's private key goes to the first caller only; the store
// never holds it, and a replay has it empty.
func TestSecretsAreNotRecorded(t *testing.T) {
	const method = "/qingcloud.iaas.v1.KeyPairService/CreateKeyPair"
	store := NewMemory(MemoryOptions{})
	g, err := New(Options{Store: store, Tenant: func(context.Context) (string, error) { return "alice", nil },
		Mutation: func(string, any) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	handler := func(context.Context, any) (any, error) {
		runs++
		return &iaasv1.CreateKeyPairResponse{KeypairId: proto.String("kp-1"), PrivateKey: proto.String("-----BEGIN PRIVATE KEY-----x")}, nil
	}
	call := func() *iaasv1.CreateKeyPairResponse {
		resp, err := g.UnaryServerInterceptor()(metadataCtx(MetadataKey, "kp"), &iaasv1.CreateKeyPairRequest{KeypairName: proto.String("k")},
			&grpc.UnaryServerInfo{FullMethod: method}, handler)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*iaasv1.CreateKeyPairResponse)
	}
	if first := call(); first.GetPrivateKey() == "" {
		t.Fatal("the first caller did not get the private key")
	}
	replayed := call()
	if runs != 1 || replayed.GetKeypairId() != "kp-1" || replayed.GetPrivateKey() != "" {
		t.Errorf("replay = %v after %d runs; want kp-1 without the private key, 1 run", replayed, runs)
	}
	for _, e := range store.entries {
		if strings.Contains(string(e.outcome.Response), "PRIVATE KEY") {
			t.Error("the store holds the private key")
		}
	}
}

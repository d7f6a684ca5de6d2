package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning"
	lroclient "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/idempotency"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/operations"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// holdUpstream lets a test hold RunInstances requests at the upstream: when hold is set, each one
// is announced on arrived and waits for release before the emulator handles it.
type holdUpstream struct {
	emu     *emulator.Emulator
	mu      sync.Mutex
	hold    bool
	arrived chan struct{}
	release chan struct{}
}

func (h *holdUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hold := h.hold && r.URL.Query().Get("action") == "RunInstances"
	h.mu.Unlock()
	if hold {
		h.arrived <- struct{}{}
		<-h.release
	}
	h.emu.ServeHTTP(w, r)
}

// opsStack is a facade with the Operations service and idempotency keys, on an emulator.
type opsStack struct {
	srv  *server.Server
	conn *grpc.ClientConn
	rest string
}

// newOpsStack builds a replica on upstream (a URL) with store; several replicas may share both.
func newOpsStack(t *testing.T, upstream string, store idempotency.Store) *opsStack {
	t.Helper()
	be, err := backend.New(backend.Config{
		Endpoint:    upstream + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	tenants := tenant.Single{Profile: "default", Upstream: be, Zone: "pek3a"}
	hub := watch.NewSingle(be, "pek3a", watch.Options{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, FirstPollDelay: time.Millisecond})
	t.Cleanup(hub.Close)
	ops, err := operations.New(operations.Options{Hub: hub, Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Tenants: tenants, Watch: hub, Operations: ops, Idempotency: store})
	if err != nil {
		t.Fatal(err)
	}
	conn := testutil.ServeBufconn(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(h)
	t.Cleanup(rest.Close)
	return &opsStack{srv: srv, conn: conn, rest: rest.URL}
}

// newOpsEmulator serves an emulator whose RunInstances requests the test can hold.
func newOpsEmulator(t *testing.T) (*holdUpstream, string) {
	t.Helper()
	emu := emulator.New(emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 60 * time.Millisecond, Quota: -1})
	h := &holdUpstream{emu: emu, arrived: make(chan struct{}), release: make(chan struct{})}
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	return h, up.URL
}

func runVxnetRequest() *iaasv1.RunInstancesRequest {
	r := runRequest(1)
	r.Vxnets = []string{"vxnet-0"}
	return r
}

func instanceCount(emu *emulator.Emulator) int {
	return emu.Stats().Keys[emulator.DefaultAccessKeyID].Resources["instance"]
}

// TestRunInstancesOperationWithLROClient: RunInstances names its operation in a header; Google's Go
// LRO client waits for it and gets the instances as the response.
func TestRunInstancesOperationWithLROClient(t *testing.T) {
	up, url := newOpsEmulator(t)
	s := newOpsStack(t, url, nil)
	ctx := ctxT(t)
	var hdr metadata.MD
	run, err := iaasv1.NewInstanceServiceClient(s.conn).RunInstances(ctx, runVxnetRequest(), grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	names := hdr.Get(operations.HeaderKey)
	if len(names) != 1 || names[0] != "operations/"+run.GetJobId() {
		t.Fatalf("%s header = %v, want [operations/%s]", operations.HeaderKey, names, run.GetJobId())
	}
	client, err := lroclient.NewOperationsClient(ctx, option.WithGRPCConn(s.conn))
	if err != nil {
		t.Fatal(err)
	}
	first, err := client.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: names[0]})
	if err != nil {
		t.Fatal(err)
	}
	var resp iaasv1.DescribeInstancesResponse
	if err := longrunning.InternalNewOperation(client, first).WaitWithInterval(ctx, &resp, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(resp.GetInstanceSet()) != 1 || resp.GetInstanceSet()[0].GetInstanceId() != run.GetInstances()[0] || resp.GetInstanceSet()[0].GetStatus() != "running" {
		t.Errorf("response = %v, want instance %v running", &resp, run.GetInstances())
	}
	if n := instanceCount(up.emu); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

// TestOperationsOverREST: the operation header and the Operations REST bindings.
func TestOperationsOverREST(t *testing.T) {
	_, url := newOpsEmulator(t)
	s := newOpsStack(t, url, nil)
	req, _ := http.NewRequest(http.MethodPost, s.rest+"/v1/iaas/RunInstances",
		strings.NewReader(`{"image_id":"centos7x64d","instance_type":"c1m1","login_mode":"passwd","login_passwd":"Passw0rd1","vxnets":["vxnet-0"]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var run struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &run); err != nil || run.JobID == "" {
		t.Fatalf("RunInstances over REST: %s (%v)", body, err)
	}
	name := "operations/" + run.JobID
	if got := resp.Header.Get("X-Qingcloud-Operation"); got != name {
		t.Errorf("X-Qingcloud-Operation = %q, want %q (headers %v)", got, name, resp.Header)
	}

	code, op := restCall(t, http.MethodGet, s.rest+"/v1/"+name, "")
	if code != http.StatusOK || op["name"] != name {
		t.Errorf("GET /v1/%s = %d %v", name, code, op)
	}
	code, op = restCall(t, http.MethodPost, s.rest+"/v1/"+name+":wait", `{"timeout":"20s"}`)
	if code != http.StatusOK || op["done"] != true || op["response"] == nil {
		t.Errorf("POST /v1/%s:wait = %d %v, want done with a response", name, code, op)
	}
	code, list := restCall(t, http.MethodGet, s.rest+"/v1/operations?filter=done%20%3D%20true", "")
	if ops, _ := list["operations"].([]any); code != http.StatusOK || len(ops) == 0 {
		t.Errorf("GET /v1/operations = %d %v", code, list)
	}
	code, e := restCall(t, http.MethodPost, s.rest+"/v1/"+name+":cancel", `{}`)
	if code != http.StatusNotImplemented {
		t.Errorf("cancel = %d %v, want 501", code, e)
	}
}

// TestIdempotencyKeyConcurrentCalls: 50 concurrent RunInstances with one key create one instance and
// get 50 identical answers.
func TestIdempotencyKeyConcurrentCalls(t *testing.T) {
	up, url := newOpsEmulator(t)
	s := newOpsStack(t, url, idempotency.NewMemory(idempotency.MemoryOptions{}))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), idempotency.MetadataKey, "run-1")
	client := iaasv1.NewInstanceServiceClient(s.conn)
	const n = 50
	answers := make([]*iaasv1.RunInstancesResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = client.RunInstances(ctx, runVxnetRequest())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !proto.Equal(answers[i], answers[0]) {
			t.Errorf("answer %d = %v, want %v", i, answers[i], answers[0])
		}
	}
	if got := up.emu.Stats().Requests["RunInstances"]; got != 1 {
		t.Errorf("upstream RunInstances requests = %d, want 1", got)
	}
	if got := instanceCount(up.emu); got != 1 {
		t.Errorf("%d instances, want 1", got)
	}
}

// TestIdempotencyKeyAfterCutConnection: the caller goes away after its request reached QingCloud;
// the retry with its key gets the answer of the first call, and there is still one instance.
func TestIdempotencyKeyAfterCutConnection(t *testing.T) {
	up, url := newOpsEmulator(t)
	s := newOpsStack(t, url, idempotency.NewMemory(idempotency.MemoryOptions{}))
	client := iaasv1.NewInstanceServiceClient(s.conn)
	up.mu.Lock()
	up.hold = true
	up.mu.Unlock()

	cctx, cut := context.WithCancel(metadata.AppendToOutgoingContext(ctxT(t), idempotency.MetadataKey, "run-2"))
	first := make(chan error, 1)
	go func() {
		_, err := client.RunInstances(cctx, runVxnetRequest())
		first <- err
	}()
	<-up.arrived // the request reached QingCloud
	cut()
	if err := <-first; status.Code(err) != codes.Canceled {
		t.Fatalf("cut call: %v, want CANCELED", err)
	}
	up.mu.Lock()
	up.hold = false
	up.mu.Unlock()
	close(up.release) // QingCloud applies it

	ctx := metadata.AppendToOutgoingContext(ctxT(t), idempotency.MetadataKey, "run-2")
	var hdr metadata.MD
	retry, err := client.RunInstances(ctx, runVxnetRequest(), grpc.Header(&hdr))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(retry.GetInstances()) != 1 || retry.GetJobId() == "" {
		t.Errorf("retry answer = %v, want the first call's instance and job", retry)
	}
	if got := hdr.Get(idempotency.ReplayedHeader); len(got) != 1 || got[0] != "true" {
		t.Errorf("%s header = %v, want [true]", idempotency.ReplayedHeader, got)
	}
	if got := instanceCount(up.emu); got != 1 {
		t.Errorf("%d instances, want 1", got)
	}
	if got := up.emu.Stats().Requests["RunInstances"]; got != 1 {
		t.Errorf("upstream RunInstances requests = %d, want 1", got)
	}
}

// TestIdempotencyKeyOverREST: the Idempotency-Key header; a replay is marked; another body under the
// key is 422.
func TestIdempotencyKeyOverREST(t *testing.T) {
	up, url := newOpsEmulator(t)
	s := newOpsStack(t, url, idempotency.NewMemory(idempotency.MemoryOptions{}))
	post := func(body string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodPost, s.rest+"/v1/iaas/RunInstances", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "rest-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	body := `{"image_id":"centos7x64d","instance_type":"c1m1","login_mode":"passwd","login_passwd":"Passw0rd1","vxnets":["vxnet-0"]}`
	c1, _, b1 := post(body)
	c2, h2, b2 := post(body)
	if c1 != 200 || c2 != 200 || string(b1) != string(b2) {
		t.Fatalf("two posts with one key: %d %s / %d %s", c1, b1, c2, b2)
	}
	if h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", h2.Get("Idempotent-Replayed"))
	}
	c3, _, b3 := post(strings.Replace(body, "c1m1", "c2m2", 1))
	if c3 != http.StatusUnprocessableEntity || !strings.Contains(string(b3), idempotency.ReasonKeyReused) {
		t.Errorf("another body under the key: %d %s, want 422 %s", c3, b3, idempotency.ReasonKeyReused)
	}
	if got := instanceCount(up.emu); got != 1 {
		t.Errorf("%d instances, want 1", got)
	}
}

// TestIdempotencyKeyAcrossReplicas: two replicas on one Redis; the retry on the second gets the
// first's answer without another upstream call.
func TestIdempotencyKeyAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	up, url := newOpsEmulator(t)
	a := newOpsStack(t, url, idempotency.NewRedis(rs.Client(), idempotency.RedisOptions{}))
	b := newOpsStack(t, url, idempotency.NewRedis(rs.Client(), idempotency.RedisOptions{}))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), idempotency.MetadataKey, "replicas-1")
	first, err := iaasv1.NewInstanceServiceClient(a.conn).RunInstances(ctx, runVxnetRequest())
	if err != nil {
		t.Fatal(err)
	}
	second, err := iaasv1.NewInstanceServiceClient(b.conn).RunInstances(ctx, runVxnetRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, second) {
		t.Errorf("second replica answered %v, want %v", second, first)
	}
	if got := up.emu.Stats().Requests["RunInstances"]; got != 1 {
		t.Errorf("upstream RunInstances requests = %d, want 1", got)
	}
	// Another request under the key on the second replica is refused.
	other := runVxnetRequest()
	other.InstanceType = proto.String("c2m2")
	_, err = iaasv1.NewInstanceServiceClient(b.conn).RunInstances(ctx, other)
	if status.Code(err) != codes.FailedPrecondition || qcerr.Info(err).GetReason() != idempotency.ReasonKeyReused {
		t.Errorf("reused key: %v", err)
	}
}

// TestIdempotencyKeyAtShutdown: a keyed RunInstances still running when the shutdown grace ends is
// canceled like any call (its caller learns it may have applied), and its outcome is recorded, so that
// the retry on another replica sharing the store does not send it again.
func TestIdempotencyKeyAtShutdown(t *testing.T) {
	up, url := newOpsEmulator(t)
	store := idempotency.NewMemory(idempotency.MemoryOptions{})
	a := newOpsStack(t, url, store)
	b := newOpsStack(t, url, store)
	up.mu.Lock()
	up.hold = true
	up.mu.Unlock()
	t.Cleanup(func() { close(up.release) })

	ctx := metadata.AppendToOutgoingContext(ctxT(t), idempotency.MetadataKey, "shutdown-1")
	first := make(chan error, 1)
	go func() {
		_, err := iaasv1.NewInstanceServiceClient(a.conn).RunInstances(ctx, runVxnetRequest())
		first <- err
	}()
	<-up.arrived // QingCloud has the request, and holds its answer
	// A 4 s grace keeps a 2 s reserve for the cut call to answer (the upstream holds it forever), so
	// the answer's timing does not depend on the machine's load.
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(sctx)
	err := <-first
	if status.Code(err) != codes.Canceled || !qcerr.MayHaveApplied(err) {
		t.Fatalf("keyed call cut by shutdown: %v, want CANCELED with may_have_applied", err)
	}
	_, err = iaasv1.NewInstanceServiceClient(b.conn).RunInstances(ctx, runVxnetRequest())
	if !qcerr.MayHaveApplied(err) {
		t.Errorf("retry on the other replica: %v, want the recorded may-have-applied error", err)
	}
	if got := up.emu.Stats().Requests["RunInstances"]; got > 1 {
		t.Errorf("upstream RunInstances requests = %d, want at most the first", got)
	}
}

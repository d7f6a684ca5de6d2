package operations_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/longrunning"
	lroclient "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/operations"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// env is the Operations service on a watch hub polling an in-process emulator, and a real LRO client
// (cloud.google.com/go/longrunning) connected to it over an in-memory gRPC connection.
type env struct {
	emu    *emulator.Emulator
	be     *backend.Client
	client *lroclient.OperationsClient
	ops    longrunningpb.OperationsClient
}

// quickJobs end 100ms after they start.
var quickJobs = emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 80 * time.Millisecond, Quota: -1}

func newEnv(t *testing.T) *env { return newEnvWith(t, quickJobs) }

func newEnvWith(t *testing.T, eo emulator.Options) *env {
	t.Helper()
	emu := emulator.New(eo)
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	be, err := backend.New(backend.Config{
		Endpoint:    hs.URL + "/iaas/",
		Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := watch.NewSingle(be, "pek3a", watch.Options{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, FirstPollDelay: time.Millisecond})
	t.Cleanup(hub.Close)
	srv, err := operations.New(operations.Options{Hub: hub, Tenants: tenant.Single{Profile: "default", Upstream: be, Zone: "pek3a"}})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	longrunningpb.RegisterOperationsServer(gs, srv)
	conn := testutil.ServeBufconn(t, gs)
	client, err := lroclient.NewOperationsClient(context.Background(), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, be: be, client: client, ops: longrunningpb.NewOperationsClient(conn)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runInstances starts count instances through the backend and returns the job id and instance ids.
func (e *env) runInstances(t *testing.T, count int) (string, []string) {
	t.Helper()
	data, err := e.be.Call(context.Background(), "RunInstances", map[string]string{
		"zone": "pek3a", "image_id": "centos7x64d", "instance_type": "c1m1", "login_mode": "passwd",
		"login_passwd": "Passw0rd1", "vxnets.1": "vxnet-0", "count": strconv.Itoa(count),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		JobID     string   `json:"job_id"`
		Instances []string `json:"instances"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.JobID == "" || len(out.Instances) != count {
		t.Fatalf("RunInstances answered %s", data)
	}
	return out.JobID, out.Instances
}

// TestLROClientWaitsForRunInstances drives RunInstances → wait → done with Google's own Go LRO client:
// the response holds the instances as they are at the end, the metadata the job.
func TestLROClientWaitsForRunInstances(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	job, ids := e.runInstances(t, 2)

	first, err := e.client.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: "operations/" + job})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetName() != "operations/"+job {
		t.Errorf("name = %q, want operations/%s", first.GetName(), job)
	}
	op := longrunning.InternalNewOperation(e.client, first)
	var resp iaasv1.DescribeInstancesResponse
	if err := op.WaitWithInterval(ctx, &resp, 50*time.Millisecond); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !op.Done() {
		t.Fatal("operation not done after Wait")
	}
	got := map[string]string{}
	for _, in := range resp.GetInstanceSet() {
		got[in.GetInstanceId()] = in.GetStatus()
	}
	for _, id := range ids {
		if got[id] != "running" {
			t.Errorf("response instance %s status %q, want running (response: %v)", id, got[id], got)
		}
	}
	var meta iaasv1.Job
	if err := op.Metadata(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.GetJobId() != job || meta.GetStatus() != "successful" || meta.GetJobAction() != "RunInstances" {
		t.Errorf("metadata = %v, want job %s successful RunInstances", &meta, job)
	}
}

// TestWaitOperationFailedJob: a job the emulator fails ends done with an error carrying ErrorInfo.
func TestWaitOperationFailedJob(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(emulator.Faults{FailActions: []string{"RunInstances"}})
	ctx := ctxT(t)
	job, _ := e.runInstances(t, 1)
	op, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/" + job, Timeout: durationpb.New(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if !op.GetDone() || op.GetError() == nil {
		t.Fatalf("operation = %v, want done with an error", op)
	}
	st := status.FromProto(op.GetError())
	if st.Code() != codes.Aborted {
		t.Errorf("error code = %v, want ABORTED", st.Code())
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info.GetReason() != "JOB_FAILED" || info.GetMetadata()["job_id"] != job || info.GetMetadata()["action"] != "RunInstances" {
		t.Errorf("ErrorInfo = %v, want JOB_FAILED naming %s and RunInstances", info, job)
	}

	// The Go client reports the same error from Wait.
	lop := longrunning.InternalNewOperation(e.client, op)
	var resp iaasv1.DescribeInstancesResponse
	if err := lop.Wait(ctx, &resp); status.Code(err) != codes.Aborted {
		t.Errorf("client Wait error = %v, want ABORTED", err)
	}
}

// TestWaitOperationTimeout: a wait shorter than the job answers done=false, not an error.
func TestWaitOperationTimeout(t *testing.T) {
	e := newEnvWith(t, emulator.Options{JobPending: time.Hour, JobWorking: time.Hour, Quota: -1})
	ctx := ctxT(t)
	job, _ := e.runInstances(t, 1)
	op, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/" + job, Timeout: durationpb.New(0)})
	if err != nil {
		t.Fatal(err)
	}
	if op.GetDone() {
		t.Errorf("a zero-timeout wait on a fresh job answered done: %v", op)
	}
	if op.GetMetadata() == nil {
		t.Error("no metadata")
	}
}

func TestListOperations(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	var jobs []string
	for range 3 {
		j, _ := e.runInstances(t, 1)
		jobs = append(jobs, j)
	}
	seen := map[string]bool{}
	tok := ""
	pages := 0
	for {
		resp, err := e.ops.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: "operations", PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(resp.GetOperations()) > 2 {
			t.Fatalf("page of %d, want at most 2", len(resp.GetOperations()))
		}
		for _, op := range resp.GetOperations() {
			seen[op.GetName()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	for _, j := range jobs {
		if !seen["operations/"+j] {
			t.Errorf("operations/%s not listed (seen %v)", j, seen)
		}
	}
	if pages < 2 {
		t.Errorf("%d pages for %d jobs at page size 2", pages, len(seen))
	}

	// A token is refused with another filter.
	resp, err := e.ops.ListOperations(ctx, &longrunningpb.ListOperationsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.ListOperations(ctx, &longrunningpb.ListOperationsRequest{PageSize: 1, PageToken: resp.GetNextPageToken(), Filter: "done = true"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("token with another filter: %v, want INVALID_ARGUMENT", err)
	}
}

func TestListOperationsFilterByStatus(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.emu.SetFaults(emulator.Faults{FailActions: []string{"RunInstances"}})
	failed, _ := e.runInstances(t, 1)
	if _, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/" + failed}); err != nil {
		t.Fatal(err)
	}
	e.emu.SetFaults(emulator.Faults{})
	ok, _ := e.runInstances(t, 1)
	if _, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/" + ok}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.ops.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Filter: `status = failed OR status = "done with failure"`})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, op := range resp.GetOperations() {
		names = append(names, op.GetName())
		if op.GetError() == nil || !op.GetDone() {
			t.Errorf("%s listed under status=failed without an error: %v", op.GetName(), op)
		}
	}
	if len(names) != 1 || names[0] != "operations/"+failed {
		t.Errorf("failed operations = %v, want [operations/%s]", names, failed)
	}
}

func TestOperationErrors(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	for _, tt := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"bad name", func() error {
			_, err := e.ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: "jobs/j-abc"})
			return err
		}, codes.InvalidArgument},
		{"unknown job", func() error {
			_, err := e.ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: "operations/j-doesnotexist"})
			return err
		}, codes.NotFound},
		{"cancel", func() error {
			_, err := e.ops.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: "operations/j-abc"})
			return err
		}, codes.Unimplemented},
		{"delete", func() error {
			_, err := e.ops.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: "operations/j-abc"})
			return err
		}, codes.Unimplemented},
		{"bad filter", func() error {
			_, err := e.ops.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Filter: "owner = me"})
			return err
		}, codes.InvalidArgument},
		{"negative timeout", func() error {
			_, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/j-abc", Timeout: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument},
	} {
		if err := tt.call(); status.Code(err) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestWaitOperationDoneWithFailure: a job that ends "done with failure" is done with an error whose
// ErrorInfo says so.
func TestWaitOperationDoneWithFailure(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(emulator.Faults{DoneWithFailure: []string{"RunInstances"}})
	ctx := ctxT(t)
	job, _ := e.runInstances(t, 2)
	op, err := e.ops.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "operations/" + job})
	if err != nil {
		t.Fatal(err)
	}
	st := status.FromProto(op.GetError())
	if !op.GetDone() || st.Code() != codes.Aborted {
		t.Fatalf("operation = %v, want done with ABORTED", op)
	}
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok && i.GetReason() == "JOB_DONE_WITH_FAILURE" && i.GetMetadata()["job_status"] == "done with failure" {
			return
		}
	}
	t.Errorf("details = %v, want ErrorInfo JOB_DONE_WITH_FAILURE", st.Details())
}

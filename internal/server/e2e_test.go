package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// stack is a facade wired to an emulator: a gRPC client over bufconn and a REST base URL over httptest.
type stack struct {
	emu  *emulator.Emulator
	conn *grpc.ClientConn
	rest string
	srv  *server.Server
}

func newStack(t *testing.T, secret string) *stack {
	t.Helper()
	emu := emulator.New(emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 50 * time.Millisecond, Quota: -1})
	return newUpStackOn(t, emu, func(c *backend.Config) { c.Credentials.SecretAccessKey = secret }).stack
}

// newClockedStack is newStack with the emulator on a clock of the test's own: its jobs end when the
// test advances the clock past jobTime, not after a wait on the machine's clock.
func newClockedStack(t *testing.T) (*stack, *testutil.ManualClock) {
	t.Helper()
	clock := testutil.NewManualClock(time.Now()) // near the real time: the emulator checks request time stamps
	emu := emulator.New(emulator.Options{JobPending: 20 * time.Millisecond, JobWorking: 50 * time.Millisecond, Quota: -1, Now: clock.Now})
	return newUpStackOn(t, emu, nil).stack, clock
}

// jobTime is how long the jobs of newClockedStack take.
const jobTime = 70 * time.Millisecond

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitJob polls DescribeJobs until the job is terminal and returns its final status.
func waitJob(t *testing.T, ctx context.Context, jobs iaasv1.JobServiceClient, id string) string {
	t.Helper()
	for {
		resp, err := jobs.DescribeJobs(ctx, &iaasv1.DescribeJobsRequest{Jobs: []string{id}})
		if err != nil {
			t.Fatalf("DescribeJobs(%s): %v", id, err)
		}
		if len(resp.GetJobSet()) != 1 {
			t.Fatalf("DescribeJobs(%s) returned %d jobs", id, len(resp.GetJobSet()))
		}
		switch st := resp.GetJobSet()[0].GetStatus(); st {
		case "successful", "failed", "done with failure":
			return st
		case "pending", "working":
		default:
			t.Fatalf("job %s has unexpected status %q", id, st)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not finish: %v", id, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestGRPCInstanceLifecycle(t *testing.T) {
	s, clock := newClockedStack(t)
	ctx := ctxT(t)
	inst := iaasv1.NewInstanceServiceClient(s.conn)
	jobs := iaasv1.NewJobServiceClient(s.conn)

	run, err := inst.RunInstances(ctx, &iaasv1.RunInstancesRequest{
		ImageId:      proto.String("centos7x64d"),
		InstanceType: proto.String("c1m1"),
		LoginMode:    proto.String("passwd"),
		LoginPasswd:  proto.String("Passw0rd1"),
		Vxnets:       []string{"vxnet-0"},
		Count:        proto.Int32(2),
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	if len(run.GetInstances()) != 2 || run.GetJobId() == "" {
		t.Fatalf("RunInstances = %v, want 2 instances and a job", run)
	}
	clock.Advance(jobTime)
	if got := waitJob(t, ctx, jobs, run.GetJobId()); got != "successful" {
		t.Fatalf("RunInstances job ended %q", got)
	}
	desc, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Instances: run.GetInstances(), Verbose: proto.Int32(1)})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	if desc.GetTotalCount() != 2 || len(desc.GetInstanceSet()) != 2 {
		t.Fatalf("DescribeInstances total_count=%d len=%d, want 2", desc.GetTotalCount(), len(desc.GetInstanceSet()))
	}
	for _, in := range desc.GetInstanceSet() {
		if in.GetStatus() != "running" || in.GetTransitionStatus() != "" {
			t.Errorf("instance %s: status %q transition %q, want running and idle", in.GetInstanceId(), in.GetStatus(), in.GetTransitionStatus())
		}
		if in.GetCreateTime() == nil {
			t.Errorf("instance %s: create_time not decoded", in.GetInstanceId())
		}
	}

	term, err := inst.TerminateInstances(ctx, &iaasv1.TerminateInstancesRequest{Instances: run.GetInstances()})
	if err != nil {
		t.Fatalf("TerminateInstances: %v", err)
	}
	clock.Advance(jobTime)
	if got := waitJob(t, ctx, jobs, term.GetJobId()); got != "successful" {
		t.Fatalf("TerminateInstances job ended %q", got)
	}
	desc, err = inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{Instances: run.GetInstances()})
	if err != nil {
		t.Fatalf("DescribeInstances after terminate: %v", err)
	}
	for _, in := range desc.GetInstanceSet() {
		if in.GetStatus() != "terminated" {
			t.Errorf("instance %s: status %q after terminate, want terminated", in.GetInstanceId(), in.GetStatus())
		}
	}
}

func TestGRPCDescribeZones(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	resp, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctxT(t), &iaasv1.DescribeZonesRequest{})
	if err != nil {
		t.Fatalf("DescribeZones: %v", err)
	}
	found := false
	for _, z := range resp.GetZoneSet() {
		if z.GetZoneId() == "pek3a" && z.GetStatus() == "active" {
			found = true
		}
	}
	if !found {
		t.Fatalf("DescribeZones = %v, want pek3a active", resp.GetZoneSet())
	}
}

func errorInfo(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	t.Fatalf("error %v has no ErrorInfo", err)
	return nil
}

func TestWrongSecretIsUnauthenticated(t *testing.T) {
	s := newStack(t, "not-the-secret")
	_, err := iaasv1.NewInstanceServiceClient(s.conn).DescribeInstances(ctxT(t), &iaasv1.DescribeInstancesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("DescribeInstances with a wrong secret: %v, want UNAUTHENTICATED", err)
	}
	if ei := errorInfo(t, err); ei.GetReason() != "QINGCLOUD_1200" || ei.GetMetadata()["action"] != "DescribeInstances" {
		t.Fatalf("ErrorInfo = %v, want reason QINGCLOUD_1200 for DescribeInstances", ei)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("error reveals the secret: %v", err)
	}
}

func TestMissingRequiredIsInvalidArgument(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	_, err := iaasv1.NewInstanceServiceClient(s.conn).RunInstances(ctxT(t), &iaasv1.RunInstancesRequest{LoginMode: proto.String("passwd")})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("RunInstances without image_id: %v, want INVALID_ARGUMENT", err)
	}
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if fmt.Sprint(fields) != "[image_id]" {
		t.Fatalf("field violations %v, want [image_id]", fields)
	}
	if n := s.emu.Stats().Requests["RunInstances"]; n != 0 {
		t.Fatalf("an invalid request reached the emulator %d times", n)
	}
}

// restCall performs one REST request and decodes the JSON answer.
func restCall(t *testing.T, method, u, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, u, b)
	}
	return resp.StatusCode, out
}

func TestRESTInstanceLifecycle(t *testing.T) {
	s, clock := newClockedStack(t)
	code, run := restCall(t, "POST", s.rest+"/v1/iaas/RunInstances",
		`{"image_id":"centos7x64d","instance_type":"c1m1","login_mode":"passwd","login_passwd":"Passw0rd1","vxnets":["vxnet-0"]}`)
	if code != 200 {
		t.Fatalf("POST RunInstances: %d %v", code, run)
	}
	jobID, _ := run["job_id"].(string)
	ids, _ := run["instances"].([]any)
	if jobID == "" || len(ids) != 1 {
		t.Fatalf("RunInstances = %v, want job_id and one instance", run)
	}
	id := ids[0].(string)
	clock.Advance(jobTime)
	code, jobs := restCall(t, "GET", s.rest+"/v1/iaas/DescribeJobs?jobs="+url.QueryEscape(jobID), "")
	if code != 200 {
		t.Fatalf("GET DescribeJobs: %d %v", code, jobs)
	}
	if set, _ := jobs["job_set"].([]any); len(set) != 1 || set[0].(map[string]any)["status"] != "successful" {
		t.Fatalf("job %s not successful: %v", jobID, jobs)
	}
	code, desc := restCall(t, "GET", s.rest+"/v1/iaas/DescribeInstances?instances="+id, "")
	if code != 200 {
		t.Fatalf("GET DescribeInstances: %d %v", code, desc)
	}
	set, _ := desc["instance_set"].([]any)
	if len(set) != 1 || set[0].(map[string]any)["status"] != "running" {
		t.Fatalf("DescribeInstances = %v, want one running instance", desc)
	}
	if _, ok := desc["total_count"].(float64); !ok {
		t.Fatalf("total_count is not a JSON number in %v", desc)
	}
	code, term := restCall(t, "POST", s.rest+"/v1/iaas/TerminateInstances", `{"instances":["`+id+`"]}`)
	if code != 200 || term["job_id"] == "" {
		t.Fatalf("POST TerminateInstances: %d %v", code, term)
	}
}

func TestRESTErrorsAreAIP193(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	code, body := restCall(t, "POST", s.rest+"/v1/iaas/TerminateInstances", `{"instances":["i-doesnotx"]}`)
	if code != http.StatusNotFound {
		t.Fatalf("TerminateInstances of an unknown instance: HTTP %d %v, want 404", code, body)
	}
	e, _ := body["error"].(map[string]any)
	if e["status"] != "NOT_FOUND" || e["code"] != float64(404) {
		t.Fatalf("error body %v, want status NOT_FOUND code 404", body)
	}
	details, _ := e["details"].([]any)
	if len(details) == 0 || details[0].(map[string]any)["reason"] != "QINGCLOUD_2100" {
		t.Fatalf("error details %v, want ErrorInfo QINGCLOUD_2100", details)
	}

	code, body = restCall(t, "POST", s.rest+"/v1/iaas/RunInstances", `{"count":"many"}`)
	if code != http.StatusBadRequest {
		t.Fatalf("RunInstances with count \"many\": HTTP %d %v, want 400", code, body)
	}
}

func TestOpenAPIServed(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	code, doc := restCall(t, "GET", s.rest+"/openapi.json", "")
	if code != 200 || doc["swagger"] != "2.0" {
		t.Fatalf("GET /openapi.json: %d swagger=%v", code, doc["swagger"])
	}
	paths, _ := doc["paths"].(map[string]any)
	if _, ok := paths["/v1/iaas/DescribeInstances"]; !ok {
		t.Fatalf("openapi.json lacks /v1/iaas/DescribeInstances")
	}
}

func TestRESTDecodingErrorsNameTheField(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	tests := []struct {
		method, path, body, field string
	}{
		{"POST", "/v1/iaas/RunInstances", `{"count":"many"}`, "count"},
		{"POST", "/v1/iaas/RunInstances", `{"nope":1}`, "nope"},
		{"GET", "/v1/iaas/DescribeInstances?limit=abc", "", "limit"},
		{"POST", "/v1/iaas/RunInstances", `{bad json`, "body"},
	}
	for _, tt := range tests {
		code, body := restCall(t, tt.method, s.rest+tt.path, tt.body)
		e, _ := body["error"].(map[string]any)
		if code != http.StatusBadRequest || e["status"] != "INVALID_ARGUMENT" {
			t.Errorf("%s %s %s: HTTP %d %v, want 400 INVALID_ARGUMENT", tt.method, tt.path, tt.body, code, body)
			continue
		}
		var reason, field string
		for _, d := range e["details"].([]any) {
			dm := d.(map[string]any)
			if r, ok := dm["reason"].(string); ok {
				reason = r
			}
			if fv, ok := dm["fieldViolations"].([]any); ok && len(fv) > 0 {
				field, _ = fv[0].(map[string]any)["field"].(string)
			}
		}
		if reason != "INVALID_REQUEST" || field != tt.field {
			t.Errorf("%s %s %s: reason %q field %q, want INVALID_REQUEST and %q (%v)", tt.method, tt.path, tt.body, reason, field, tt.field, body)
		}
	}
	code, body := restCall(t, "GET", s.rest+"/v1/iaas/NoSuchAction", "")
	if e, _ := body["error"].(map[string]any); code != http.StatusNotFound || len(e["details"].([]any)) != 1 {
		t.Errorf("unknown path: HTTP %d %v, want 404 with one ErrorInfo", code, body)
	}
}

func TestRESTStreamErrorsAreAIP193(t *testing.T) {
	s := newStack(t, "not-the-secret")
	resp, err := http.Get(s.rest + "/v1/iaas/DescribeInstances:all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Failing before the first message, the stream is answered as one JSON error with the HTTP status.
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
		t.Fatalf("GET DescribeInstances:all with a wrong secret: HTTP %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var line map[string]map[string]any
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatalf("stream error line %q: %v", b, err)
	}
	e := line["error"]
	details, _ := e["details"].([]any)
	if e["code"] != float64(401) || e["status"] != "UNAUTHENTICATED" || len(details) == 0 ||
		details[0].(map[string]any)["reason"] != "QINGCLOUD_1200" {
		t.Fatalf("stream error line %s, want AIP-193 code 401 status UNAUTHENTICATED reason QINGCLOUD_1200", b)
	}
}

func TestCallReservedParamsAnyCase(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	for _, k := range []string{"zone", "Zone", "ACTION", "Access_Key_Id", "Signature", "expires", "EXPIRES"} {
		params, _ := structpb.NewStruct(map[string]any{k: "x"})
		_, err := iaasv1.NewCallServiceClient(s.conn).Call(ctxT(t), &iaasv1.CallRequest{Action: "DescribeZones", Params: params})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Call with parameter %q: %v, want INVALID_ARGUMENT", k, err)
		}
	}
	if n := s.emu.Stats().Requests["DescribeZones"]; n != 0 {
		t.Errorf("refused calls reached the emulator %d times", n)
	}
}

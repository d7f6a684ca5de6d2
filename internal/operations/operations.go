// Package operations serves google.longrunning.Operations for QingCloud jobs, so that the LRO clients
// every Google-style gRPC ecosystem ships (Go, Java, Python, Node, C#) can follow a delayed action
// (RunInstances, CreateVolumes, ...) without learning QingCloud's DescribeJobs or our WatchService.
//
// An operation is one job: its name is "operations/<job_id>" (or "operations/<zone>/<job_id>" for a
// job outside the caller's default zone), its metadata the Job as QingCloud describes it, done once
// the job is terminal. A failed job (failed, or done with failure) has an error: a google.rpc.Status
// with code ABORTED and an ErrorInfo (reason JOB_FAILED or JOB_DONE_WITH_FAILURE, the job id, action,
// resource ids and QingCloud's error codes). A successful job has a response: the job's resources as
// they are at the end, as the Describe action of their kind answers them (a DescribeInstancesResponse
// for RunInstances), or google.protobuf.Empty when the job names no resource of a known kind.
//
// GetOperation and WaitOperation read the job through the watch hub's shared poller (one batched
// DescribeJobs per account and zone whatever the number of callers), never a poll loop per caller;
// ListOperations pages DescribeJobs. QingCloud jobs cannot be cancelled or deleted, so
// CancelOperation and DeleteOperation answer UNIMPLEMENTED saying so.
package operations

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// ReasonNotSupported is the ErrorInfo reason of CancelOperation and DeleteOperation.
const ReasonNotSupported = "NOT_SUPPORTED_BY_QINGCLOUD"

// Defaults of ListOperations paging.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Options configure a Server.
type Options struct {
	// Hub follows jobs; GetOperation and WaitOperation watch through it. Required.
	Hub *watch.Hub
	// Tenants picks the caller's upstream and default zone, for ListOperations and for describing a
	// finished job's resources. Required.
	Tenants tenant.Resolver
}

// Server implements longrunningpb.OperationsServer over QingCloud jobs.
type Server struct {
	longrunningpb.UnimplementedOperationsServer
	hub     *watch.Hub
	tenants tenant.Resolver
}

var _ longrunningpb.OperationsServer = (*Server)(nil)

// New returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Hub == nil || opts.Tenants == nil {
		return nil, errors.New("operations: Options.Hub and Options.Tenants are required")
	}
	return &Server{hub: opts.Hub, tenants: opts.Tenants}, nil
}

// GetOperation returns the job's current state.
func (s *Server) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	n, err := name(req.GetName())
	if err != nil {
		return nil, err
	}
	return s.follow(ctx, n, nil)
}

// WaitOperation waits until the job is terminal, the request's timeout passes or the call's deadline
// nears, and returns the job's state then (done is false when it was still running). It never fails
// because the wait ended first: a caller then sees done=false and waits again.
func (s *Server) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	n, err := name(req.GetName())
	if err != nil {
		return nil, err
	}
	if t := req.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil || t.AsDuration() < 0 {
			return nil, badField("timeout", "timeout must be a non-negative duration")
		}
	}
	wctx, cancel := waitContext(ctx, req)
	defer cancel()
	return s.follow(ctx, n, wctx)
}

// follow watches the job through the hub: its current state, which comes at once whatever the wait
// (a caller always learns something), then, when until is not nil, its changes until it is terminal
// or until ends.
func (s *Server) follow(ctx context.Context, n Name, until context.Context) (*longrunningpb.Operation, error) {
	w, err := s.hub.Jobs(ctx, n.Zone, []string{n.JobID})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	ev, err := nextJob(ctx, w)
	if err != nil {
		return nil, err
	}
	for until != nil && !ev.GetTerminal() {
		next, err := nextJob(until, w)
		if err != nil {
			if ctx.Err() == nil && until.Err() != nil {
				break // the wait's own time is up: answer the latest state
			}
			return nil, err
		}
		ev = next
	}
	return s.operation(ctx, n, ev)
}

// waitMargin is how long before the call's deadline WaitOperation answers, so that the answer arrives
// in time (at most 5% of the time left).
const waitMargin = 100 * time.Millisecond

// waitContext bounds a wait by the request's timeout and a little before the call's deadline.
func waitContext(ctx context.Context, req *longrunningpb.WaitOperationRequest) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if t := req.GetTimeout(); t != nil {
		if d := time.Now().Add(t.AsDuration()); !ok || d.Before(dl) {
			return context.WithDeadline(ctx, d)
		}
	}
	if ok {
		return context.WithDeadline(ctx, dl.Add(-min(waitMargin, time.Until(dl)/20)))
	}
	return context.WithCancel(ctx)
}

// nextJob returns the next job event of w.
func nextJob(ctx context.Context, w *watch.Watch[*iaasv1.WatchJobsResponse]) (*iaasv1.JobEvent, error) {
	for {
		msg, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil, qcerr.New(codes.Internal, "INTERNAL", "the job watch ended before the job's state arrived", nil)
		}
		if err != nil {
			return nil, err
		}
		if ev := msg.GetJob(); ev != nil {
			return ev, nil
		}
	}
}

// ListOperations pages the jobs of the caller's account (newest first, as DescribeJobs answers).
func (s *Server) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	if n := req.GetName(); n != "" && n != Collection {
		return nil, badField("name", fmt.Sprintf("name is %q; list operations with name %q (or leave it empty)", qcerr.Clip(n, qcerr.MaxEcho), Collection))
	}
	f, err := ParseFilter(req.GetFilter())
	if err != nil {
		return nil, badField("filter", err.Error())
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, badField("page_size", "page_size must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	offset, err := decodePageToken(req.GetPageToken(), req.GetFilter())
	if err != nil {
		return nil, badField("page_token", err.Error())
	}
	t, err := s.tenants.Lookup(ctx)
	if err != nil {
		return nil, err
	}
	up, z := t.Upstream, zone.Resolve(f.Zone, t.Zone)
	params := map[string]string{"offset": strconv.Itoa(offset), "limit": strconv.Itoa(size), "verbose": "1"}
	if z != "" {
		params["zone"] = z
	}
	for i, st := range f.Statuses {
		params["status."+strconv.Itoa(i+1)] = st
	}
	body, err := up.Call(ctx, "DescribeJobs", params, false)
	if err != nil {
		return nil, err
	}
	var resp iaasv1.DescribeJobsResponse
	if err := decode(body, &resp); err != nil {
		return nil, err
	}
	out := &longrunningpb.ListOperationsResponse{}
	for _, j := range resp.GetJobSet() {
		n := Name{JobID: j.GetJobId()}
		if f.Zone != "" {
			n.Zone = f.Zone
		}
		// Listing does not describe each finished job's resources (that would be one call per job):
		// listed operations carry metadata and error; GetOperation adds the response.
		op, err := operation(n, watch.JobEventOf(j), nil)
		if err != nil {
			return nil, err
		}
		out.Operations = append(out.Operations, op)
	}
	if next := offset + len(resp.GetJobSet()); len(resp.GetJobSet()) > 0 && next < int(resp.GetTotalCount()) {
		out.NextPageToken = encodePageToken(next, req.GetFilter())
	}
	return out, nil
}

// CancelOperation is UNIMPLEMENTED: QingCloud cannot cancel a job.
func (s *Server) CancelOperation(context.Context, *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	return nil, qcerr.New(codes.Unimplemented, ReasonNotSupported, "QingCloud jobs cannot be cancelled: the API has no action for it; undo the change with the opposite action once the job has ended", nil)
}

// DeleteOperation is UNIMPLEMENTED: QingCloud keeps its job records and has no action to delete one.
func (s *Server) DeleteOperation(context.Context, *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	return nil, qcerr.New(codes.Unimplemented, ReasonNotSupported, "QingCloud job records cannot be deleted: the API has no action for it; QingCloud expires them itself", nil)
}

// operation builds the Operation of a job event; for a successful job it describes the resources.
func (s *Server) operation(ctx context.Context, n Name, ev *iaasv1.JobEvent) (*longrunningpb.Operation, error) {
	var resp proto.Message
	if ev.GetTerminal() && !ev.GetFailed() {
		var err error
		if resp, err = s.resources(ctx, n.Zone, ev.GetJob()); err != nil {
			return nil, err
		}
	}
	return operation(n, ev, resp)
}

// operation builds the Operation of a job event; resp is the response of a successful job (nil when
// not described).
func operation(n Name, ev *iaasv1.JobEvent, resp proto.Message) (*longrunningpb.Operation, error) {
	meta, err := anypb.New(ev.GetJob())
	if err != nil {
		return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("operations: pack job metadata: %v", err), nil)
	}
	op := &longrunningpb.Operation{Name: n.String(), Metadata: meta, Done: ev.GetTerminal()}
	switch {
	case ev.GetFailed():
		op.Result = &longrunningpb.Operation_Error{Error: jobError(ev)}
	case ev.GetTerminal() && resp != nil:
		a, err := anypb.New(resp)
		if err != nil {
			return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("operations: pack job response: %v", err), nil)
		}
		op.Result = &longrunningpb.Operation_Response{Response: a}
	}
	return op, nil
}

// jobError is the google.rpc.Status of a failed job.
func jobError(ev *iaasv1.JobEvent) *spb.Status {
	j := ev.GetJob()
	reason := "JOB_FAILED"
	if j.GetStatus() == "done with failure" {
		reason = "JOB_DONE_WITH_FAILURE"
	}
	md := map[string]string{"job_id": j.GetJobId(), "job_status": j.GetStatus()}
	if a := j.GetJobAction(); a != "" {
		md["action"] = a
	}
	if r := strings.Join(strings.Fields(j.GetResourceIds()), ","); r != "" {
		md["resource_ids"] = r
	}
	msg := ev.GetFailureMessage()
	if msg == "" {
		msg = fmt.Sprintf("job %s ended %s", j.GetJobId(), j.GetStatus())
	}
	return qcerr.Status(codes.Aborted, reason, msg, md).Proto()
}

// resources describes the resources a successful job names, by the Describe action of their kind: the
// kind of the first resource id with a known prefix, and every id of that kind.
func (s *Server) resources(ctx context.Context, requested string, job *iaasv1.Job) (proto.Message, error) {
	var kind api.ResourceKind
	var ids []string
	for _, id := range strings.Fields(strings.ReplaceAll(job.GetResourceIds(), ",", " ")) {
		k, ok := kindOf(id)
		if !ok || (ids != nil && k.Action != kind.Action) {
			continue
		}
		kind = k
		ids = append(ids, id)
	}
	m := api.ByAction(kind.Action)
	if ids == nil || m == nil {
		return &emptypb.Empty{}, nil
	}
	t, err := s.tenants.Lookup(ctx)
	if err != nil {
		return nil, err
	}
	up := t.Upstream
	z := zone.Resolve(requested, t.Zone)
	params := map[string]string{"verbose": "1", "limit": strconv.Itoa(len(ids))}
	if z != "" {
		params["zone"] = z
	}
	for i, id := range ids {
		params[kind.IDParam+"."+strconv.Itoa(i+1)] = id
	}
	body, err := up.Call(ctx, kind.Action, params, false)
	if err != nil {
		return nil, err
	}
	resp := m.Output.New().Interface()
	if err := decode(body, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// decode decodes a QingCloud answer, keeping what fits when some values do not.
func decode(body []byte, m proto.Message) error {
	if err := codec.Decode(body, m); err != nil {
		var mismatch *codec.MismatchError
		if !errors.As(err, &mismatch) {
			return qcerr.New(codes.Unavailable, "UPSTREAM_ANSWER_UNREADABLE", fmt.Sprintf("upstream answer could not be decoded: %v", err), nil)
		}
	}
	return nil
}

// name parses an operation name into an INVALID_ARGUMENT naming the field.
func name(s string) (Name, error) {
	n, err := ParseName(s)
	if err != nil {
		return Name{}, badField("name", err.Error())
	}
	return n, nil
}

// Page tokens are opaque to callers: base64 of "v1:<offset>:<filter>", so that a token is refused
// when the filter changed between pages.
func encodePageToken(offset int, filter string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.Itoa(offset) + ":" + filter))
}

func decodePageToken(tok, filter string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(tok) > 2*maxFilterLen {
		return 0, errors.New("page_token is not a token this server gave out; start again without one")
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return 0, errors.New("page_token is not a token this server gave out; start again without one")
	}
	off, err := strconv.Atoi(parts[1])
	if err != nil || off < 0 {
		return 0, errors.New("page_token is not a token this server gave out; start again without one")
	}
	if parts[2] != filter {
		return 0, errors.New("page_token was given out for another filter; keep the filter the same across pages")
	}
	return off, nil
}

// badField is INVALID_ARGUMENT naming one request field.
func badField(field, msg string) error {
	return qcerr.BadRequest(qcerr.Violation(field, msg))
}

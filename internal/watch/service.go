package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

var _ iaasv1.WatchServiceServer = (*Hub)(nil)

// WatchJobs streams each job's current state at once, then every change, and ends when every job is
// terminal. It implements iaasv1.WatchServiceServer.
func (h *Hub) WatchJobs(req *iaasv1.WatchJobsRequest, stream grpc.ServerStreamingServer[iaasv1.WatchJobsResponse]) error {
	w, err := h.Jobs(stream.Context(), req.GetZone(), req.GetJobIds())
	if err != nil {
		return err
	}
	defer w.Close()
	return pump(stream.Context(), w, stream.Send)
}

// WatchResources streams each resource's current state at once, then every change, and ends when
// every resource is settled in the target status or gone. It implements iaasv1.WatchServiceServer.
func (h *Hub) WatchResources(req *iaasv1.WatchResourcesRequest, stream grpc.ServerStreamingServer[iaasv1.WatchResourcesResponse]) error {
	w, err := h.Resources(stream.Context(), req.GetZone(), req.GetKind(), req.GetResourceIds(), req.GetTargetStatus())
	if err != nil {
		return err
	}
	defer w.Close()
	return pump(stream.Context(), w, stream.Send)
}

// pump sends every message of w until it ends.
func pump[R proto.Message](ctx context.Context, w *Watch[R], send func(R) error) error {
	for {
		msg, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(msg); err != nil {
			return err
		}
	}
}

// WaitJobs blocks until every job is terminal and returns their final states in request order, or
// fails with DEADLINE_EXCEEDED (naming the unfinished jobs) when the caller's deadline passes first.
// It implements iaasv1.WatchServiceServer.
func (h *Hub) WaitJobs(ctx context.Context, req *iaasv1.WaitJobsRequest) (*iaasv1.WaitJobsResponse, error) {
	w, err := h.Jobs(ctx, req.GetZone(), req.GetJobIds())
	if err != nil {
		return nil, err
	}
	defer w.Close()
	// Give up a little before the caller's deadline, so that the answer naming the unfinished jobs
	// reaches the caller before its own deadline cuts the call.
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-min(waitMargin, time.Until(dl)/20)))
		defer cancel()
	}
	last := make(map[string]*iaasv1.JobEvent, len(w.IDs()))
	for {
		msg, err := w.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if c := status.Code(err); c == codes.DeadlineExceeded || c == codes.Canceled {
				return nil, qcerr.New(c, qcerr.Info(err).GetReason(), waitingFor(w.IDs(), last, c), nil)
			}
			return nil, err
		}
		if ev := msg.GetJob(); ev != nil {
			last[ev.GetJob().GetJobId()] = ev
		}
	}
	resp := &iaasv1.WaitJobsResponse{Jobs: make([]*iaasv1.JobEvent, 0, len(w.IDs()))}
	for _, id := range w.IDs() {
		ev := last[id]
		resp.Jobs = append(resp.Jobs, ev)
		resp.AnyFailed = resp.AnyFailed || ev.GetFailed()
	}
	return resp, nil
}

// waitMargin is the most WaitJobs ends before the caller's deadline (at most 5% of the time left).
const waitMargin = 100 * time.Millisecond

// waitingFor describes the jobs still unfinished when a wait ended early.
func waitingFor(ids []string, last map[string]*iaasv1.JobEvent, c codes.Code) string {
	var open []string
	for _, id := range ids {
		ev := last[id]
		switch {
		case ev == nil:
			open = append(open, id+" (not yet described)")
		case !ev.GetTerminal():
			open = append(open, fmt.Sprintf("%s (%s)", id, ev.GetJob().GetStatus()))
		}
	}
	what := "deadline passed"
	if c == codes.Canceled {
		what = "call canceled"
	}
	return fmt.Sprintf("%s before every job ended; still running: %s", what, strings.Join(open, ", "))
}

package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

// Job statuses (qingcloud-protocol.md §7.3).
const (
	JobPending         = "pending"
	JobWorking         = "working"
	JobSuccessful      = "successful"
	JobFailed          = "failed"
	JobDoneWithFailure = "done with failure"
)

// jobEvent builds the event of one job as DescribeJobs describes it. errorCodes is the answer's
// undocumented error_codes field, if any.
func jobEvent(job *iaasv1.Job, errorCodes string) *iaasv1.JobEvent {
	ev := &iaasv1.JobEvent{Job: job}
	switch st := job.GetStatus(); st {
	case JobSuccessful:
		ev.Terminal = true
	case JobFailed, JobDoneWithFailure:
		ev.Terminal, ev.Failed = true, true
		ev.FailureMessage = failureMessage(job, errorCodes)
	}
	return ev
}

// JobEventOf classifies a job as DescribeJobs describes it, as watchers see it: terminal, failed, and
// a failure message for a failed job.
func JobEventOf(job *iaasv1.Job) *iaasv1.JobEvent { return jobEvent(job, "") }

// failureMessage says in plain words how a job ended badly.
func failureMessage(job *iaasv1.Job, errorCodes string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %s", job.GetJobId())
	if a := job.GetJobAction(); a != "" {
		fmt.Fprintf(&b, " (%s", a)
		if r := strings.TrimSpace(job.GetResourceIds()); r != "" {
			fmt.Fprintf(&b, " on %s", strings.Join(strings.Fields(r), ", "))
		}
		b.WriteString(")")
	}
	if job.GetStatus() == JobDoneWithFailure {
		b.WriteString(" finished with failures: some of its resources were not changed")
	} else {
		b.WriteString(" failed")
	}
	if t := job.GetStatusTime(); t != nil {
		fmt.Fprintf(&b, " at %s", t.AsTime().UTC().Format(time.RFC3339))
	}
	if c := strings.TrimSpace(errorCodes); c != "" {
		fmt.Fprintf(&b, "; QingCloud error codes: %s", c)
	}
	b.WriteString("; check the resources' status before retrying")
	return b.String()
}

// jobChanged reports whether b differs from a in what watchers are told about: status, status
// time, action or resource ids.
func jobChanged(a, b *iaasv1.Job) bool {
	return a.GetStatus() != b.GetStatus() || a.GetJobAction() != b.GetJobAction() ||
		a.GetResourceIds() != b.GetResourceIds() || !proto.Equal(a.GetStatusTime(), b.GetStatusTime())
}

// parseJobs decodes a DescribeJobs answer into events by job id.
func parseJobs(data []byte) (map[string]*iaasv1.JobEvent, error) {
	var resp iaasv1.DescribeJobsResponse
	if err := codec.Decode(data, &resp); err != nil {
		var mismatch *codec.MismatchError
		if !errors.As(err, &mismatch) {
			return nil, fmt.Errorf("decode DescribeJobs answer: %w", err)
		}
	}
	// error_codes is not in the Swagger definition of a job; read it on the side.
	var extra struct {
		JobSet []struct {
			JobID      string `json:"job_id"`
			ErrorCodes any    `json:"error_codes"`
		} `json:"job_set"`
	}
	_ = json.Unmarshal(data, &extra)
	codes := make(map[string]string, len(extra.JobSet))
	for _, j := range extra.JobSet {
		if j.ErrorCodes != nil {
			codes[j.JobID] = strings.TrimSpace(fmt.Sprint(j.ErrorCodes))
		}
	}
	out := make(map[string]*iaasv1.JobEvent, len(resp.GetJobSet()))
	for _, j := range resp.GetJobSet() {
		if id := j.GetJobId(); id != "" {
			out[id] = jobEvent(j, codes[id])
		}
	}
	return out, nil
}

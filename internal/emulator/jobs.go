package emulator

import (
	"strings"
	"time"
)

// Job statuses.
const (
	jobPending         = "pending"
	jobWorking         = "working"
	jobSuccessful      = "successful"
	jobFailed          = "failed"
	jobDoneWithFailure = "done with failure"
)

// maxJobs bounds the job history of one account; the oldest jobs are dropped beyond it.
const maxJobs = 100000

// job is the record of a delayed action. Its status is a function of the clock: pending until
// workingAt, working until end, then outcome. Nothing runs when it changes.
type job struct {
	id          string
	action      string
	owner       string
	zone        string
	resourceIDs []string
	created     time.Time
	workingAt   time.Time
	end         time.Time
	outcome     string
}

// status returns the job status and the time it was entered, at now.
func (j *job) status(now time.Time) (string, time.Time) {
	switch {
	case now.Before(j.workingAt):
		return jobPending, j.created
	case now.Before(j.end):
		return jobWorking, j.workingAt
	}
	return j.outcome, j.end
}

// fails reports whether the i-th of n resources of the job fails.
func (j *job) fails(i, n int) bool {
	switch j.outcome {
	case jobFailed:
		return true
	case jobDoneWithFailure:
		return i == n-1
	}
	return false
}

// newJob records a job for the current request acting on resourceIDs.
func (a *account) newJob(r *request, resourceIDs []string) *job {
	j := &job{
		id:          a.newID("j"),
		action:      r.action,
		owner:       a.owner,
		zone:        a.createZone(r),
		resourceIDs: resourceIDs,
		created:     r.now,
		workingAt:   r.now.Add(a.e.jobPending),
		end:         r.now.Add(a.e.jobPending + a.e.jobWorking),
		outcome:     r.faults.jobOutcome(r.action),
	}
	a.jobs[j.id] = j
	a.jobOrder = append(a.jobOrder, j)
	if len(a.jobOrder) > maxJobs {
		old := a.jobOrder[0]
		a.jobOrder = a.jobOrder[1:]
		delete(a.jobs, old.id)
		delete(a.ids, old.id)
	}
	return j
}

// dropJob forgets j, the job of a request that was refused after it was made.
func (a *account) dropJob(j *job) {
	delete(a.jobs, j.id)
	if n := len(a.jobOrder); n > 0 && a.jobOrder[n-1] == j {
		a.jobOrder = a.jobOrder[:n-1]
	}
}

type jobOut struct {
	JobID       string `json:"job_id"`
	JobAction   string `json:"job_action"`
	CreateTime  jtime  `json:"create_time"`
	StatusTime  jtime  `json:"status_time"`
	ResourceIDs string `json:"resource_ids"`
	Owner       string `json:"owner"`
	Status      string `json:"status"`
	Directive   string `json:"directive"`
	ErrorCodes  string `json:"error_codes"`
}

func init() {
	register("DescribeJobs", describeJobs)
}

// describeJobs: jobs.N, status.N, job_action, verbose, offset/limit.
func describeJobs(a *account, r *request) (result, *apiError) {
	if _, err := r.integer("verbose", 0); err != nil {
		return nil, err
	}
	ids := r.list("jobs")
	statusOK := idFilter(r.list("status"))
	action := r.str("job_action")
	var candidates []*job
	if len(ids) > 0 {
		for _, id := range ids {
			if j := a.jobs[id]; j != nil {
				candidates = append(candidates, j)
			}
		}
	} else {
		candidates = a.jobOrder
	}
	var items []*job
	for _, j := range candidates {
		if !r.inZone(j.zone) || (action != "" && j.action != action) {
			continue
		}
		if st, _ := j.status(r.now); !statusOK(st) {
			continue
		}
		items = append(items, j)
	}
	sortByCreated(items, func(j *job) time.Time { return j.created }, func(j *job) string { return j.id })
	return describeResult(r, "job_set", items, func(j *job) jobOut {
		st, at := j.status(r.now)
		codes := ""
		if st == jobFailed || st == jobDoneWithFailure {
			codes = "5000"
		}
		return jobOut{
			JobID: j.id, JobAction: j.action, CreateTime: jtime(j.created), StatusTime: jtime(at),
			ResourceIDs: strings.Join(j.resourceIDs, " "), Owner: j.owner, Status: st, ErrorCodes: codes,
		}
	})
}

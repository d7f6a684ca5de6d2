package watch

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// fakeUpstream is a scripted DescribeJobs / DescribeVolumes upstream for unit tests.
type fakeUpstream struct {
	mu sync.Mutex
	// jobs maps a job id to its status; absent ids are unknown.
	jobs map[string]string
	// volumes maps a volume id to "status/transition".
	volumes map[string]string
	// rejectUnknown answers NOT_FOUND for a whole batch that names an unknown id (as the
	// QingCloud docs say DescribeJobs does).
	rejectUnknown bool
	// fail, when set, may fail a call before it is answered.
	fail func(n int) error
	// calls records each call: its time and the ids it named.
	calls []fakeCall
}

type fakeCall struct {
	at     time.Time
	action string
	ids    []string
	class  callclass.Class
}

func newFake() *fakeUpstream {
	return &fakeUpstream{jobs: map[string]string{}, volumes: map[string]string{}}
}

func (f *fakeUpstream) set(id, st string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(id, "j-") {
		f.jobs[id] = st
	} else {
		f.volumes[id] = st
	}
}

func (f *fakeUpstream) callLog() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// Call implements Upstream.
func (f *fakeUpstream) Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prefix := map[string]string{"DescribeJobs": "jobs", "DescribeVolumes": "volumes"}[action]
	if prefix == "" {
		return nil, status.Error(codes.Unimplemented, "fake: "+action)
	}
	var ids []string
	for i := 1; ; i++ {
		id, ok := params[prefix+"."+strconv.Itoa(i)]
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	f.calls = append(f.calls, fakeCall{time.Now(), action, ids, callclass.From(ctx)})
	if f.fail != nil {
		if err := f.fail(len(f.calls)); err != nil {
			return nil, err
		}
	}
	if action == "DescribeVolumes" {
		set := []map[string]any{}
		for _, id := range ids {
			if st, ok := f.volumes[id]; ok {
				s, tr, _ := strings.Cut(st, "/")
				set = append(set, map[string]any{"volume_id": id, "status": s, "transition_status": tr, "size": 10})
			}
		}
		return json.Marshal(map[string]any{"action": "DescribeVolumesResponse", "ret_code": 0, "volume_set": set, "total_count": len(set)})
	}
	set := []map[string]any{}
	for _, id := range ids {
		st, ok := f.jobs[id]
		if !ok {
			if f.rejectUnknown {
				return nil, status.Errorf(codes.NotFound, "ResourceNotFound, resource [%s] not found", id)
			}
			continue
		}
		j := map[string]any{"job_id": id, "job_action": "RunInstances", "status": st, "resource_ids": "i-aaaaaaaa i-bbbbbbbb",
			"create_time": "2024-01-02T03:04:05Z", "status_time": "2024-01-02T03:04:06Z"}
		if st == JobFailed || st == JobDoneWithFailure {
			j["error_codes"] = "5000"
		}
		set = append(set, j)
	}
	return json.Marshal(map[string]any{"action": "DescribeJobsResponse", "ret_code": 0, "job_set": set, "total_count": len(set)})
}

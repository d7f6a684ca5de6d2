package server_test

// Tests of the auto-paginating <Action>All RPCs (internal/server serveAllPages) with 1,000 instances on
// the emulator, over gRPC and REST (NDJSON).

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

const pagingInstances = 1000

// createInstances starts n instances in batches of 250 and returns their ids.
func createInstances(t *testing.T, s *upStack, n int) []string {
	t.Helper()
	inst := iaasv1.NewInstanceServiceClient(s.conn)
	var ids []string
	for len(ids) < n {
		run, err := inst.RunInstances(ctxT(t), runRequest(int32(min(250, n-len(ids)))))
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		ids = append(ids, run.GetInstances()...)
	}
	return ids
}

// pagedIDs lists the instance ids page by page with plain DescribeInstances calls: QingCloud's order.
func pagedIDs(t *testing.T, s *upStack) []string {
	t.Helper()
	inst := iaasv1.NewInstanceServiceClient(s.conn)
	var ids []string
	for offset := int32(0); ; offset += 100 {
		resp, err := inst.DescribeInstances(ctxT(t), &iaasv1.DescribeInstancesRequest{Offset: proto.Int32(offset), Limit: proto.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range resp.GetInstanceSet() {
			ids = append(ids, in.GetInstanceId())
		}
		if len(resp.GetInstanceSet()) < 100 {
			return ids
		}
	}
}

// streamAll reads DescribeInstancesAll over gRPC; it returns the ids, and the error that ended the
// stream (nil at a clean end).
func streamAll(t *testing.T, s *upStack) ([]string, error) {
	t.Helper()
	stream, err := iaasv1.NewInstanceServiceClient(s.conn).DescribeInstancesAll(ctxT(t), &iaasv1.DescribeInstancesAllRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		if int(m.GetIndex()) != len(ids) {
			t.Fatalf("item %d has index %d", len(ids), m.GetIndex())
		}
		ids = append(ids, m.GetInstance().GetInstanceId())
		if m.GetTotalCount() != int32(pagingInstances) {
			t.Fatalf("item %d: total_count %d", len(ids), m.GetTotalCount())
		}
	}
}

// checkAll checks that got lists every created instance once, in QingCloud's order.
func checkAll(t *testing.T, got, created, order []string) {
	t.Helper()
	if len(got) != len(created) {
		t.Fatalf("listed %d instances, want %d", len(got), len(created))
	}
	seen := map[string]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("instance %s listed twice (again at %d)", id, i)
		}
		seen[id] = true
	}
	for _, id := range created {
		if !seen[id] {
			t.Fatalf("instance %s not listed", id)
		}
	}
	if !slices.Equal(got, order) {
		t.Fatal("the listing is not in QingCloud's page order")
	}
}

func TestDescribeInstancesAllGRPC(t *testing.T) {
	s := newUpStack(t, quickJobs, nil)
	created := createInstances(t, s, pagingInstances)
	order := pagedIDs(t, s)
	before := s.requests("DescribeInstances")
	got, err := streamAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, got, created, order)
	if pages := s.requests("DescribeInstances") - before; pages != 10 {
		t.Errorf("the listing made %d upstream calls, want 10 pages of 100", pages)
	}
}

func TestDescribeInstancesAllREST(t *testing.T) {
	s := newUpStack(t, quickJobs, nil)
	created := createInstances(t, s, pagingInstances)
	order := pagedIDs(t, s)
	resp, err := http.Get(s.rest + "/v1/iaas/DescribeInstances:all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("HTTP %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Result *struct {
				Instance struct {
					InstanceID string `json:"instance_id"`
				} `json:"instance"`
				TotalCount int `json:"total_count"`
				Index      int `json:"index"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d is not JSON: %q", len(got)+1, sc.Text())
		}
		if line.Result == nil {
			t.Fatalf("line %d: %s", len(got)+1, sc.Text())
		}
		if line.Result.Index != len(got) || line.Result.TotalCount != pagingInstances {
			t.Fatalf("line %d: index %d total_count %d", len(got)+1, line.Result.Index, line.Result.TotalCount)
		}
		got = append(got, line.Result.Instance.InstanceID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	checkAll(t, got, created, order)
}

func TestDescribeInstancesAllUnderFaults(t *testing.T) {
	s := newUpStack(t, quickJobs, func(c *backend.Config) { c.MaxAttempts = 10 })
	created := createInstances(t, s, pagingInstances)
	order := pagedIDs(t, s)
	s.emu.SetFaults(mixedFaults)
	got, err := streamAll(t, s)
	s.emu.SetFaults(emulator.Faults{})
	if err != nil {
		t.Fatalf("listing under 30 %% faults: %v", err)
	}
	checkAll(t, got, created, order)
	t.Logf("listing under faults: %d retries", s.rec.Action("DescribeInstances").Retries)
}

func TestDescribeInstancesAllStopsWhenBudgetIsSpent(t *testing.T) {
	// 10 requests: 9 for user calls. RunInstances spends 4, so the listing gets 5 of its 10 pages.
	b, err := budget.New(budget.Config{Limit: 10, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := newUpStack(t, quickJobs, func(c *backend.Config) { c.Budget = b })
	createInstances(t, s, pagingInstances)
	got, err := streamAll(t, s)
	if status.Code(err) != codes.ResourceExhausted || len(got) != 500 {
		t.Fatalf("after %d items: %v; want 500 items, then RESOURCE_EXHAUSTED", len(got), err)
	}
	if d, ok := qcerr.RetryDelay(err); !ok || d <= 0 {
		t.Errorf("no RetryInfo in %v", err)
	}
}

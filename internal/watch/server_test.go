package watch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// served is the facade server with the Hub as its WatchService: a REST base URL with its HTTP client,
// and a gRPC client.
type served struct {
	rest string
	http *http.Client
	grpc iaasv1.WatchServiceClient
}

func serve(t *testing.T, e *env) *served {
	t.Helper()
	srv, s := serveGRPC(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := testutil.NewMemServer(t, h) // in memory, like gRPC: the tests can run in a synctest bubble
	s.rest, s.http = rest.URL, rest.Client()
	return s
}

// serveGRPC is serve without the REST listener.
func serveGRPC(t *testing.T, e *env) (*server.Server, *served) {
	t.Helper()
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: e.be, Zone: "pek3a"}, Watch: e.hub.Service()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn := testutil.DialBufconn(t, lis)
	return srv, &served{grpc: iaasv1.NewWatchServiceClient(conn)}
}

// ndjsonLine is one line of a REST stream.
type ndjsonLine struct {
	Result *struct {
		Job *struct {
			Job            map[string]any `json:"job"`
			Terminal       bool           `json:"terminal"`
			Failed         bool           `json:"failed"`
			FailureMessage string         `json:"failure_message"`
		} `json:"job"`
		Resource map[string]any `json:"resource"`
		Notice   map[string]any `json:"notice"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// getNDJSON GETs a stream and returns its lines, checking the status and content type.
func getNDJSON(t *testing.T, c *http.Client, u string) []ndjsonLine {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != server.StreamContentType {
		t.Errorf("Content-Type %q, want %q", ct, server.StreamContentType)
	}
	var lines []ndjsonLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		raw := sc.Bytes()
		var l ndjsonLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", len(lines)+1, raw, err)
		}
		if (l.Result == nil) == (l.Error == nil) {
			t.Fatalf("line %d %q: want exactly one of result and error", len(lines)+1, raw)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestRESTWatchJobsNDJSON(t *testing.T) { synctest.Test(t, testRESTWatchJobsNDJSON) }

func testRESTWatchJobsNDJSON(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	ok, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{FailActions: []string{"RunInstances"}})
	bad, _ := e.runInstances(t, 1)
	e.emu.SetFaults(emulator.Faults{})
	s := serve(t, e)

	lines := getNDJSON(t, s.http, s.rest+"/v1/iaas/jobs:watch?job_ids="+ok+"&job_ids="+bad)
	seen := map[string]int{}
	final := map[string]bool{}
	for i, l := range lines {
		if l.Error != nil {
			t.Fatalf("line %d: error %+v", i+1, l.Error)
		}
		ev := l.Result.Job
		if ev == nil {
			continue // a PollNotice
		}
		id, _ := ev.Job["job_id"].(string)
		st, _ := ev.Job["status"].(string)
		if final[id] {
			t.Errorf("line %d: event for %s after its terminal event", i+1, id)
		}
		seen[id]++
		final[id] = ev.Terminal
		if seen[id] == 1 && ev.Terminal {
			t.Errorf("line %d: first event of %s is already terminal (%s); the jobs last 150ms", i+1, id, st)
		}
		if ev.Terminal {
			switch id {
			case ok:
				if st != "successful" || ev.Failed {
					t.Errorf("line %d: %s ended %s failed=%v", i+1, id, st, ev.Failed)
				}
			case bad:
				if st != "failed" || !ev.Failed || !strings.Contains(ev.FailureMessage, bad) {
					t.Errorf("line %d: %s ended %s failed=%v message %q", i+1, id, st, ev.Failed, ev.FailureMessage)
				}
			}
		}
		if _, ok := ev.Job["status_time"].(string); !ok {
			t.Errorf("line %d: status_time %v, want an RFC 3339 string", i+1, ev.Job["status_time"])
		}
	}
	if !final[ok] || !final[bad] {
		t.Fatalf("stream ended before both jobs were terminal: %+v", final)
	}

	// An unknown job: the stream fails before its first message, so the gateway answers an error.
	resp, err := s.http.Get(s.rest + "/v1/iaas/jobs:watch?job_ids=j-nosuchjob")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "j-nosuchjob") || !strings.Contains(string(body), "NOT_FOUND") && !strings.Contains(string(body), `"code":5`) {
		t.Errorf("unknown job over REST: HTTP %d %s, want NOT_FOUND naming j-nosuchjob", resp.StatusCode, body)
	}
}

func TestRESTWaitJobsAndWatchResources(t *testing.T) {
	synctest.Test(t, testRESTWaitJobsAndWatchResources)
}

func testRESTWaitJobsAndWatchResources(t *testing.T) {
	e := newEnv(t, quickJobs, quickHub)
	job, insts := e.runInstances(t, 1)
	s := serve(t, e)

	resp, err := s.http.Post(s.rest+"/v1/iaas/jobs:wait", "application/json", strings.NewReader(`{"job_ids":["`+job+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var wait struct {
		Jobs []struct {
			Terminal bool           `json:"terminal"`
			Job      map[string]any `json:"job"`
		} `json:"jobs"`
		AnyFailed bool `json:"any_failed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&wait)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(wait.Jobs) != 1 || !wait.Jobs[0].Terminal || wait.AnyFailed {
		t.Fatalf("jobs:wait: HTTP %d %+v %v", resp.StatusCode, wait, err)
	}

	q := url.Values{"kind": {"instance"}, "resource_ids": insts, "target_status": {"running"}}
	lines := getNDJSON(t, s.http, s.rest+"/v1/iaas/resources:watch?"+q.Encode())
	last := lines[len(lines)-1]
	if last.Result == nil || last.Result.Resource["settled"] != true || last.Result.Resource["private_ip"] == "" {
		t.Fatalf("last line %+v, want the instance settled with a private IP", last)
	}
}

// TestGRPCWatchJobs runs in a synctest bubble: the 300 ms deadline is on the bubble's clock.
func TestGRPCWatchJobs(t *testing.T) { synctest.Test(t, testGRPCWatchJobs) }

func testGRPCWatchJobs(t *testing.T) {
	eo := quickJobs
	eo.JobWorking = time.Minute
	e := newEnv(t, eo, quickHub)
	job, _ := e.runInstances(t, 1)
	_, s := serveGRPC(t, e)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stream, err := s.grpc.WatchJobs(ctx, &iaasv1.WatchJobsRequest{JobIds: []string{job}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
			}
			break
		}
		if m.GetJob().GetJob().GetJobId() != job {
			t.Errorf("message %v", m)
		}
		n++
	}
	if n == 0 {
		t.Error("no event before the deadline")
	}

	// Shutdown: open streams end UNAVAILABLE and ask to resume.
	stream, err = s.grpc.WatchJobs(ctxT(t, 10*time.Second), &iaasv1.WatchJobsRequest{JobIds: []string{job}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	e.hub.Close()
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) || err == nil {
			if err != nil {
				t.Fatal("stream ended OK after Close; want UNAVAILABLE")
			}
			continue
		}
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "resume the watch") {
			t.Fatalf("after Close: %v, want UNAVAILABLE asking to resume", err)
		}
		break
	}
}

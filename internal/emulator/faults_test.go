package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

func liveInstances(f *fixture) int {
	return f.emu.Stats().Keys[emulator.DefaultAccessKeyID].Resources["instance"]
}

var runArgs = []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "Passw0rd"}

// TestFaultRetCodes: each ret_code fault answers its code and does not execute the action.
func TestFaultRetCodes(t *testing.T) {
	tests := []struct {
		name   string
		faults emulator.Faults
		code   int
		prefix string
	}{
		{"5100", emulator.Faults{RetCode5100: 1}, 5100, "ServerBusy, "},
		{"5000", emulator.Faults{RetCode5000: 1}, 5000, "InternalError, "},
		{"2500", emulator.Faults{RetCode2500: 1}, 2500, "QuotaExceeded, "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *emulator.Options) { o.Faults = tc.faults })
			if msg := f.c.fail(tc.code, "RunInstances", runArgs...); !strings.HasPrefix(msg, tc.prefix) {
				t.Fatalf("message %q", msg)
			}
			if n := liveInstances(f); n != 0 {
				t.Fatalf("the action ran: %d instances", n)
			}
			st := f.emu.Stats()
			if st.RetCodes["RunInstances"][tc.code] != 1 || st.Faults["RunInstances"]["ret_code_"+tc.name] != 1 {
				t.Fatalf("stats %v %v", st.RetCodes, st.Faults)
			}
		})
	}
}

// TestFaultHTTP: 502 and 503 answer an HTML gateway page and do not execute the action.
func TestFaultHTTP(t *testing.T) {
	for _, tc := range []struct {
		faults emulator.Faults
		status int
	}{
		{emulator.Faults{HTTP502: 1}, http.StatusBadGateway},
		{emulator.Faults{HTTP503: 1}, http.StatusServiceUnavailable},
	} {
		f := newFixture(t, func(o *emulator.Options) { o.Faults = tc.faults })
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			c := f.c.with(func(c *client) { c.method = method })
			resp, body, err := c.send(c.params("RunInstances", runArgs...))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!bytes.Contains(body, []byte(http.StatusText(tc.status))) {
				t.Fatalf("%s: HTTP %d %q %s", method, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
		if n := liveInstances(f); n != 0 {
			t.Fatalf("the action ran: %d instances", n)
		}
	}
}

// TestFaultConnReset: the connection is closed without a response.
func TestFaultConnReset(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{ConnReset: 1} })
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		c := f.c.with(func(c *client) { c.method = method })
		resp, _, err := c.send(c.params("RunInstances", runArgs...))
		if err == nil {
			t.Fatalf("%s: got HTTP %d, want a transport error", method, resp.StatusCode)
		}
	}
	if n := liveInstances(f); n != 0 {
		t.Fatalf("the action ran: %d instances", n)
	}
	if got := f.emu.Stats().Faults["RunInstances"]["conn_reset"]; got < 2 {
		t.Fatalf("conn_reset count %d", got)
	}
}

// TestFaultTruncatedBody: HTTP 200 JSON that does not parse; the action did run.
func TestFaultTruncatedBody(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{TruncatedBody: 1} })
	resp, body, err := f.c.send(f.c.params("RunInstances", runArgs...))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || len(body) == 0 {
		t.Fatalf("HTTP %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err == nil {
		t.Fatalf("body %q parses", body)
	}
	if !bytes.HasPrefix(body, []byte("{")) {
		t.Fatalf("body %q is not a JSON prefix", body)
	}
	if n := liveInstances(f); n != 1 {
		t.Fatalf("the action did not run: %d instances", n)
	}
}

// TestFaultLatency: latency is added; the Actions filter limits faults to some actions.
func TestFaultLatency(t *testing.T) {
	const lat = 80 * time.Millisecond
	f := newFixture(t, func(o *emulator.Options) {
		o.Faults = emulator.Faults{Latency: lat, RetCode5100: 1, Actions: []string{"DescribeInstances"}}
	})
	start := time.Now()
	f.c.fail(5100, "DescribeInstances")
	if d := time.Since(start); d < lat {
		t.Fatalf("took %s, want >= %s", d, lat)
	}
	start = time.Now()
	f.c.ok("DescribeZones") // not in Actions
	if d := time.Since(start); d >= lat {
		t.Fatalf("unfiltered action delayed %s", d)
	}
	if f.emu.Stats().Faults["DescribeInstances"]["latency"] != 1 {
		t.Fatal("latency not counted")
	}
}

// TestFaultProbability: probabilities are drawn per request.
func TestFaultProbability(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{RetCode5100: 0.5} })
	busy := 0
	for i := 0; i < 200; i++ {
		if code(f.c.call("DescribeZones")) == 5100 {
			busy++
		}
	}
	if busy < 50 || busy > 150 {
		t.Fatalf("5100 in %d of 200 requests at p=0.5", busy)
	}
}

// TestFailedJobs: FailActions ends jobs failed and reverts the resources; DoneWithFailure fails
// the last resource of the job.
func TestFailedJobs(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.Faults = emulator.Faults{FailActions: []string{"RunInstances", "StopInstances"}}
	})
	ids, job := f.run()
	f.finish()
	if st := f.jobStatus(job); st != "failed" {
		t.Fatalf("job %s", st)
	}
	expectState(t, "failed create", f.instance(ids[0]), "ceased", "")
	if n := liveInstances(f); n != 0 {
		t.Fatalf("live instances %d", n)
	}

	f.emu.SetFaults(emulator.Faults{FailActions: []string{"StopInstances"}, DoneWithFailure: []string{"RunInstances"}})
	ids, job = f.run("count", "3")
	f.finish()
	if st := f.jobStatus(job); st != "done with failure" {
		t.Fatalf("job %s", st)
	}
	expectState(t, "first", f.instance(ids[0]), "running", "")
	expectState(t, "second", f.instance(ids[1]), "running", "")
	expectState(t, "last", f.instance(ids[2]), "ceased", "")

	out := f.c.ok("StopInstances", "instances.1", ids[0])
	f.finish()
	if st := f.jobStatus(out["job_id"].(string)); st != "failed" {
		t.Fatalf("stop job %s", st)
	}
	expectState(t, "failed stop", f.instance(ids[0]), "running", "")
	if n := num(f.c.ok("DescribeJobs", "status.1", "failed")["total_count"]); n != 2 {
		t.Fatalf("failed jobs %d", n)
	}
}

// TestJobs covers DescribeJobs fields, filters and pagination.
func TestJobs(t *testing.T) {
	f := newFixture(t, nil)
	ids, job := f.run("count", "2")
	j := f.c.one("DescribeJobs", "job_set", "jobs", job)
	if j["job_action"] != "RunInstances" || j["resource_ids"] != ids[0]+" "+ids[1] ||
		!strings.HasPrefix(j["owner"].(string), "usr-") || j["status"] != "pending" || j["create_time"] != j["status_time"] {
		t.Fatalf("job %v", j)
	}
	f.clk.Advance(testPending)
	j = f.c.one("DescribeJobs", "job_set", "jobs", job)
	if j["status"] != "working" || j["status_time"] == j["create_time"] {
		t.Fatalf("working job %v", j)
	}
	f.clk.Advance(testWorking)
	vol := f.c.ok("CreateVolumes", "size", "10")["job_id"].(string)
	for i := 0; i < 25; i++ {
		f.c.ok("AllocateEips", "bandwidth", "1") // no jobs
	}
	count := func(kv ...string) int { return num(f.c.ok("DescribeJobs", kv...)["total_count"]) }
	tests := []struct {
		kv   []string
		want int
	}{
		{nil, 2},
		{[]string{"jobs.1", job, "jobs.2", "j-nothere1"}, 1},
		{[]string{"jobs.1", "j-nothere1"}, 0},
		{[]string{"status.1", "successful"}, 1},
		{[]string{"status.1", "pending", "status.2", "working"}, 1},
		{[]string{"job_action", "CreateVolumes"}, 1},
		{[]string{"job_action", "DeleteVolumes"}, 0},
	}
	for _, tc := range tests {
		if got := count(tc.kv...); got != tc.want {
			t.Errorf("DescribeJobs %v: %d, want %d", tc.kv, got, tc.want)
		}
	}
	page := set(t, f.c.ok("DescribeJobs", "limit", "1"), "job_set")
	if len(page) != 1 || page[0]["job_id"] != vol {
		t.Fatalf("newest job first: %v", page)
	}
	page = set(t, f.c.ok("DescribeJobs", "limit", "1", "offset", "1"), "job_set")
	if len(page) != 1 || page[0]["job_id"] != job {
		t.Fatalf("second page: %v", page)
	}
	if n := num(f.c.with(func(c *client) { c.zone = "gd2a" }).ok("DescribeJobs")["total_count"]); n != 0 {
		t.Fatalf("jobs in another zone: %d", n)
	}
}

// TestControlAPI covers GET/PUT /_emulator/faults, GET /_emulator/stats and POST /_emulator/reset.
func TestControlAPI(t *testing.T) {
	f := newFixture(t, nil)
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := do(http.MethodGet, "/_emulator/faults", "")
	if status != 200 || !strings.Contains(string(body), `"ret_code_5100":0`) || !strings.Contains(string(body), `"latency":"0s"`) {
		t.Fatalf("GET faults: %d %s", status, body)
	}
	status, body = do(http.MethodPut, "/_emulator/faults",
		`{"ret_code_5100":1,"latency":"5ms","fail_actions":["RunInstances"],"actions":["DescribeInstances"]}`)
	if status != 200 {
		t.Fatalf("PUT faults: %d %s", status, body)
	}
	got := f.emu.Faults()
	if got.RetCode5100 != 1 || got.Latency != 5*time.Millisecond || len(got.FailActions) != 1 || got.Actions[0] != "DescribeInstances" {
		t.Fatalf("faults after PUT: %+v", got)
	}
	f.c.fail(5100, "DescribeInstances")
	f.c.ok("DescribeZones")
	if status, _ := do(http.MethodPut, "/_emulator/faults", `{"latency":1000000}`); status != 200 || f.emu.Faults().Latency != time.Millisecond {
		t.Fatalf("latency in nanoseconds: %d %v", status, f.emu.Faults().Latency)
	}
	for _, bad := range []string{`{"http_502":1.5}`, `{"conn_reset":-0.1}`, `{"nope":1}`, `{"latency":"soon"}`, `not json`} {
		if status, body := do(http.MethodPut, "/_emulator/faults", bad); status != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s", bad, status, body)
		}
	}
	f.running()
	status, body = do(http.MethodGet, "/_emulator/stats", "")
	var st emulator.Stats
	if status != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("GET stats: %d %s", status, body)
	}
	if st.Requests["RunInstances"] != 1 || st.RetCodes["DescribeInstances"][5100] != 1 ||
		st.Keys[emulator.DefaultAccessKeyID].Resources["instance"] != 1 || st.TotalRequests != 3 {
		t.Fatalf("stats %s", body)
	}
	if status, _ := do(http.MethodPost, "/_emulator/reset", ""); status != 200 {
		t.Fatal("reset")
	}
	if n := liveInstances(f); n != 0 {
		t.Fatalf("instances after reset: %d", n)
	}
	if f.emu.Stats().TotalRequests != 0 || f.emu.Faults().Latency != time.Millisecond {
		t.Fatal("reset must clear stats and keep faults")
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/_emulator/faults"}, {http.MethodPost, "/_emulator/stats"}, {http.MethodGet, "/_emulator/reset"},
	} {
		if status, _ := do(tc.method, tc.path, ""); status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d", tc.method, tc.path, status)
		}
	}
}

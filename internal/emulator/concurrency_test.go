package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// TestConcurrentClients runs many clients against one account with tiny job durations (run with
// -race): every job completes, and the emulator starts no goroutines of its own for jobs. It runs in
// a synctest bubble, the emulator served in memory: the jobs' timing is on the bubble's clock.
func TestConcurrentClients(t *testing.T) { synctest.Test(t, testConcurrentClients) }

func testConcurrentClients(t *testing.T) {
	const pending, working = 5 * time.Millisecond, 10 * time.Millisecond
	emu := emulator.New(emulator.Options{JobPending: pending, JobWorking: working, Quota: -1})
	srv := testutil.NewMemServer(t, emu)
	memClient := func() *client {
		return newClient(t, srv.URL, time.Now).with(func(c *client) { c.httpc = srv.Client() })
	}
	const workers, rounds = 8, 5
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := memClient()
			for i := 0; i < rounds; i++ {
				out := c.call("RunInstances", append(append([]string{}, runArgs...), "count", "2")...)
				if code(out) != 0 {
					errs <- "RunInstances: " + out["message"].(string)
					continue
				}
				job := out["job_id"].(string)
				deadline := time.Now().Add(5 * time.Second)
				for {
					j := c.call("DescribeJobs", "jobs.1", job)
					if items, _ := j["job_set"].([]any); len(items) == 1 && items[0].(map[string]any)["status"] == "successful" {
						break
					}
					if time.Now().After(deadline) {
						errs <- "job " + job + " did not finish"
						break
					}
					time.Sleep(2 * time.Millisecond) // the bubble's clock: the job moves on
				}
				ids := strs(out["instances"])
				if out := c.call("TerminateInstances", "instances.1", ids[0], "instances.2", ids[1]); code(out) != 0 {
					errs <- "TerminateInstances: " + out["message"].(string)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	time.Sleep(pending + working) // the bubble's clock: the last TerminateInstances jobs end
	st := emu.Stats().Keys[emulator.DefaultAccessKeyID]
	if st.Jobs["successful"] != 2*workers*rounds || st.Resources["instance"] != 0 {
		t.Fatalf("jobs %v, live instances %d", st.Jobs, st.Resources["instance"])
	}

	// Thousands of pending jobs cost no goroutines.
	before := runtime.NumGoroutine()
	c := memClient()
	for i := 0; i < 200; i++ {
		c.ok("CreateVolumes", "size", "10", "count", "5")
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("goroutines grew from %d to %d with pending jobs", before, after)
	}
}

// BenchmarkDescribeJobs measures one DescribeJobs of a single job among 1,000 pending ones,
// through the handler (no network), from parallel clients on one account.
func BenchmarkDescribeJobs(b *testing.B) {
	emu := emulator.New(emulator.Options{JobPending: time.Hour, JobWorking: time.Hour, Quota: -1})
	t := &testing.T{}
	rec := func(c *client, action string, kv ...string) map[string]any {
		p := c.params(action, kv...)
		req := httptest.NewRequest("GET", "/iaas/?"+canonical(p)+"&signature="+pctEncode(p["signature"]), nil)
		w := httptest.NewRecorder()
		emu.ServeHTTP(w, req)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out
	}
	c := newClient(t, "", time.Now)
	var jobs []string
	for i := 0; i < 1000; i++ {
		jobs = append(jobs, rec(c, "CreateVolumes", "size", "10")["job_id"].(string))
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			out := rec(c, "DescribeJobs", "jobs.1", jobs[i%len(jobs)])
			if code(out) != 0 {
				b.Errorf("ret_code %v", out["ret_code"])
				return
			}
			i++
		}
	})
}

// TestDescribeWhileModified describes an item while other requests change its message (run with
// -race): an answer is written while the account is locked, so it never reads an item that another
// request is changing, and every answer holds one of the values set.
func TestDescribeWhileModified(t *testing.T) {
	f := newFixture(t, nil)
	vx := strs(f.c.ok("CreateVxnets", "vxnet_type", "1")["vxnets"])[0]
	id := f.c.ok("CreateCache", "cache_size", "2", "cache_type", "redis3.0.5", "vxnet", vx)["cache_id"].(string)
	f.finish()
	const rounds = 200
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			if out := f.c.call("ModifyCacheAttributes", "cache", id, "auto_backup_time", fmt.Sprint(i%24)); code(out) != 0 {
				t.Errorf("ModifyCacheAttributes: %v", out)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range rounds {
			out := f.c.call("DescribeCaches", "caches.1", id)
			items, _ := out["cache_set"].([]any)
			if code(out) != 0 || len(items) != 1 {
				t.Errorf("DescribeCaches: %v", out)
				return
			}
			if v, ok := items[0].(map[string]any)["auto_backup_time"].(float64); ok && (v < 0 || v >= 24) {
				t.Errorf("auto_backup_time %v", v)
			}
		}
	}()
	wg.Wait()
}

package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// signedGet returns a signed GET request of action with params for the default key at the clock's
// time, as the direct call of internal/server's BenchmarkFacadeOverhead sends it.
func signedGet(clk func() string, action string, kv ...string) *http.Request {
	p := map[string]string{"action": action, "access_key_id": emulator.DefaultAccessKeyID, "signature_method": "HmacSHA256",
		"signature_version": "1", "time_stamp": clk(), "zone": "pek3a"}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	p["signature"] = testSign(http.MethodGet, "/iaas/", "HmacSHA256", emulator.DefaultSecretAccessKey, p)
	return httptest.NewRequest(http.MethodGet, "/iaas/?"+canonical(p)+"&signature="+pctEncode(p["signature"]), nil)
}

// BenchmarkDescribeInstances100 is the emulator's share of the direct call of internal/server's
// BenchmarkFacadeOverhead/DescribeInstances100: a signed verbose DescribeInstances of a page of 100
// running instances, served by the emulator's handler into a recorder (no network, no client decode).
func BenchmarkDescribeInstances100(b *testing.B) {
	clk := newClock()
	emu := emulator.New(emulator.Options{JobPending: testPending, JobWorking: testWorking, Now: clk.Now, Quota: -1})
	now := func() string { return clk.Now().UTC().Format("2006-01-02T15:04:05Z") }
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		emu.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body)
		}
		return w
	}
	run := serve(signedGet(now, "RunInstances", "image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd",
		"login_passwd", "Passw0rd1", "count", "100"))
	clk.Advance(testJob)
	req := signedGet(now, "DescribeInstances", "limit", "100", "verbose", "1")
	size := serve(req).Body.Len()
	if size < 100*500 {
		b.Fatalf("a page of %d bytes: %s", size, run.Body)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		serve(req)
	}
}

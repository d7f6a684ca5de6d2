package emulator

import (
	"maps"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		query       string
		contentType string
		body        string
		want        map[string]string
		wantErr     string
	}{
		{"query", "GET", "a=1&b=x%20y&c=p+q&d=", "", "", map[string]string{"a": "1", "b": "x y", "c": "p q", "d": ""}, ""},
		{"empty segments", "GET", "&a=1&&b=2&", "", "", map[string]string{"a": "1", "b": "2"}, ""},
		{"no equals", "GET", "flag", "", "", map[string]string{"flag": ""}, ""},
		{"utf8", "GET", "n=%E4%B8%BB%E6%9C%BA", "", "", map[string]string{"n": "主机"}, ""},
		{"repeated", "GET", "a=1&a=2", "", "", nil, "repeated"},
		{"repeated after decoding", "GET", "a=1&%61=2", "", "", nil, "repeated"},
		{"bad escape", "GET", "a=%zz", "", "", nil, "bad escape"},
		{"empty name", "GET", "=1", "", "", nil, "empty parameter name"},
		{"post form", "POST", "", "application/x-www-form-urlencoded; charset=utf-8", "a=1&b=2", map[string]string{"a": "1", "b": "2"}, ""},
		{"post no content type", "POST", "", "", "a=1", map[string]string{"a": "1"}, ""},
		{"post query and body", "POST", "a=1", "application/x-www-form-urlencoded", "b=2", map[string]string{"a": "1", "b": "2"}, ""},
		{"post repeated across query and body", "POST", "a=1", "application/x-www-form-urlencoded", "a=2", nil, "repeated"},
		{"post json", "POST", "", "application/json", `{"a":1}`, nil, "unsupported Content-Type"},
		{"post empty body", "POST", "a=1", "application/json", "", map[string]string{"a": "1"}, ""},
		{"get ignores body", "GET", "a=1", "", "b=2", map[string]string{"a": "1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequest(tc.method, tc.query, tc.contentType, []byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseRequest checks that request parsing never panics, and that whatever it accepts
// survives a canonical re-encoding unchanged.
func FuzzParseRequest(f *testing.F) {
	seeds := []struct{ method, query, ct, body string }{
		{"GET", "access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek3a&signature=byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D", "", ""},
		{"POST", "", "application/x-www-form-urlencoded", "action=CreateServerCertificate&certificate_content=-----BEGIN+CERTIFICATE-----%0A&zone=pek3a"},
		{"GET", "rules.1.val2=&rules.1.protocol=tcp&listeners.1.session_sticky=insert%7C3600", "", ""},
		{"GET", "a=1&a=2", "", ""},
		{"GET", "%zz=1", "", ""},
		{"POST", "a=1", "multipart/form-data; boundary=x", "--x--"},
		{"POST", "", "application/x-www-form-urlencoded", "a=%E4%B8%BB&b=+&c=%2B"},
		{"GET", ";;&&==", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.query, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, query, ct string, body []byte) {
		params, err := parseRequest(method, query, ct, body)
		if err != nil {
			return
		}
		if len(params) > maxParams {
			t.Fatalf("%d params", len(params))
		}
		keys := make([]string, 0, len(params))
		for k := range params {
			if k == "" {
				t.Fatal("empty name accepted")
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = url.QueryEscape(k) + "=" + url.QueryEscape(params[k])
		}
		again, err := parseRequest("GET", strings.Join(parts, "&"), "", nil)
		if err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
		if !maps.Equal(params, again) {
			t.Fatalf("round trip changed params: %v -> %v", params, again)
		}
	})
}

func TestRing(t *testing.T) {
	var r ring
	base := time.Unix(0, 0)
	next, popped := 0, 0
	for round := 0; round < 50; round++ {
		for i := 0; i < 7; i++ {
			r.push(base.Add(time.Duration(next)))
			next++
		}
		for i := 0; i < 5; i++ {
			if got := r.oldest(); !got.Equal(base.Add(time.Duration(popped))) {
				t.Fatalf("round %d: oldest %v, want %d", round, got, popped)
			}
			r.pop()
			popped++
		}
	}
	if r.n != next-popped {
		t.Fatalf("n = %d, want %d", r.n, next-popped)
	}
}

func TestJobStatusIsDerived(t *testing.T) {
	t0 := time.Unix(1000, 0)
	j := &job{created: t0, workingAt: t0.Add(time.Second), end: t0.Add(3 * time.Second), outcome: jobFailed}
	for _, tc := range []struct {
		at    time.Duration
		want  string
		since time.Duration
	}{
		{0, jobPending, 0}, {999 * time.Millisecond, jobPending, 0}, {time.Second, jobWorking, time.Second},
		{3*time.Second - 1, jobWorking, time.Second}, {3 * time.Second, jobFailed, 3 * time.Second}, {time.Hour, jobFailed, 3 * time.Second},
	} {
		st, since := j.status(t0.Add(tc.at))
		if st != tc.want || !since.Equal(t0.Add(tc.since)) {
			t.Errorf("at %s: %s since %v, want %s since %s", tc.at, st, since, tc.want, tc.since)
		}
	}
	for _, tc := range []struct {
		outcome string
		fails   []bool
	}{
		{jobSuccessful, []bool{false, false, false}},
		{jobFailed, []bool{true, true, true}},
		{jobDoneWithFailure, []bool{false, false, true}},
	} {
		j.outcome = tc.outcome
		for i, want := range tc.fails {
			if got := j.fails(i, 3); got != want {
				t.Errorf("%s: fails(%d) = %v", tc.outcome, i, got)
			}
		}
	}
}

package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/encoding/protojson"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

func TestJSONDepth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`1`, 0},
		{`{}`, 1},
		{`{"a":[1,{"b":[]}]}`, 4},
		{`{"a":"[[[[{{{{"}`, 1},       // brackets in strings do not count
		{`{"a":"\"[[[","b":[[]]}`, 3}, // nor after an escaped quote
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 100},
	} {
		if got := jsonDepth([]byte(tc.in)); got != tc.want {
			t.Errorf("jsonDepth(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzDiagnose: whatever the body, diagnosing it never panics, and every violation it reports names
// a field and says something.
func FuzzDiagnose(f *testing.F) {
	for _, s := range []string{`{"vxnets":"vxnet-0"}`, `{"count":"x","nope":1}`, `{"rules":[{"priority":"x"}]}`,
		`[1,2]`, `{"a":` + strings.Repeat("[", 80), `{"image_id":null}`, `{"login_mode":{}}`} {
		f.Add([]byte(s))
	}
	md := (&iaasv1.RunInstancesRequest{}).ProtoReflect().Descriptor()
	opts := protojson.UnmarshalOptions{RecursionLimit: recursionLimit}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, v := range diagnose(raw, md, "", opts, 0) {
			if v.GetField() == "" || v.GetDescription() == "" {
				t.Fatalf("diagnose(%q): violation %v", raw, v)
			}
		}
	})
}

// FuzzQueryParser: whatever the query, parsing it never panics, and an unknown parameter is always
// refused.
func FuzzQueryParser(f *testing.F) {
	for _, s := range []string{"limit=3", "instanse=i-x", "limit=abc", "instances=i-1&instances=i-2", "tags[a]=b", "a.b.c=1", "=", "verbose=1"} {
		f.Add(s)
	}
	p := &queryParser{}
	f.Fuzz(func(t *testing.T, q string) {
		values, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		err = p.Parse(&iaasv1.DescribeInstancesRequest{}, values, utilities.NewDoubleArray(nil))
		if _, ok := values["instanse"]; ok && err == nil {
			t.Fatalf("Parse(%q) accepted an unknown parameter", q)
		}
	})
}

// incomingHeader forwards the request id and the idempotency key under their metadata names in any
// case, never Grpc-Metadata-Authorization, and leaves the rest to grpc-gateway's default.
func TestIncomingHeader(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   string
		ok     bool
	}{
		{"X-Request-Id", "x-request-id", true},
		{"x-request-id", "x-request-id", true},
		{"Idempotency-Key", "idempotency-key", true},
		{"IDEMPOTENCY-KEY", "idempotency-key", true},
		{"Grpc-Metadata-Authorization", "", false},
		{"grpc-metadata-authorization", "", false},
		{"Grpc-Metadata-Tenant", "", false}, // grpc-gateway's default forwards no other Grpc-Metadata- header
		{"Authorization", "grpcgateway-Authorization", true},
		{"User-Agent", "grpcgateway-User-Agent", true},
		{"X-Other", "", false},
	} {
		got, ok := incomingHeader(tc.header)
		if got != tc.want || ok != tc.ok {
			t.Errorf("incomingHeader(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// limitBody leaves a request without a body as net/http gives it (http.NoBody), so the layers below
// skip their per-body work, and bounds a request with one.
func TestLimitBodyPassesNoBody(t *testing.T) {
	var got []io.ReadCloser
	srv := httptest.NewServer(limitBody(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, r.Body)
		_, _ = io.Copy(io.Discard, r.Body)
	})))
	defer srv.Close()
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(srv.URL + "/v1/iaas/DescribeZones") },
		func() (*http.Response, error) {
			return http.Post(srv.URL+"/v1/iaas/RunInstances", "application/json", strings.NewReader("{}"))
		},
	} {
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(got) != 2 || got[0] != http.NoBody || got[1] == http.NoBody || reflect.TypeOf(got[1]).String() != "*http.maxBytesReader" {
		t.Errorf("bodies seen: %T", got)
	}
}

// apiFirst answers a clean /v1/ path with the API handler, as http.ServeMux would, and leaves every
// other request to the mux (its own routes, cleaning redirects).
func TestAPIFirst(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(298) })
	mux.Handle("/", api)
	h := apiFirst(mux, api)
	for _, tc := range []struct {
		method, target string
	}{
		{"GET", "/v1/iaas/DescribeZones"},
		{"POST", "/v1/iaas/RunInstances"},
		{"GET", "/v1/iaas/DescribeZones/"},
		{"GET", "/v1//iaas/DescribeZones"},
		{"GET", "/v1/iaas/../metrics"},
		{"GET", "/v1/iaas/./DescribeZones"},
		{"GET", "/v1/iaas/x/.."},
		{"GET", "/metrics"},
		{"POST", "/metrics"},
		{"GET", "/v2/other"},
		{"GET", "/v1"},
	} {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		mux.ServeHTTP(want, httptest.NewRequest(tc.method, tc.target, nil))
		h.ServeHTTP(got, httptest.NewRequest(tc.method, tc.target, nil))
		if got.Code != want.Code || got.Header().Get("Location") != want.Header().Get("Location") {
			t.Errorf("%s %s: %d %q, the mux answers %d %q", tc.method, tc.target, got.Code, got.Header().Get("Location"), want.Code, want.Header().Get("Location"))
		}
	}
}

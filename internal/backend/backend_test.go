package backend_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend/backendtest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

const (
	testKeyID  = "QYACCESSKEYIDEXAMPLE"
	testSecret = "TOPSECRET-do-not-leak-3f9a"
)

// observe makes a Client report to rec.
func observe(rec *backendtest.Recorder) func(*backend.Config) {
	return func(cfg *backend.Config) { cfg.Observer = rec }
}

func newClient(t testing.TB, endpoint string, mod ...func(*backend.Config)) *backend.Client {
	t.Helper()
	cfg := backend.Config{
		Endpoint:    endpoint,
		Credentials: signer.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		// A private transport per test, so connection reuse between tests cannot interfere.
		HTTPClient: &http.Client{Transport: &http.Transport{}},
		// Quick retries, so tests of failures stay fast.
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := backend.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memUpstream serves h in memory, for tests in a testing/synctest bubble: the endpoint, and the
// option that makes newClient reach it.
func memUpstream(t testing.TB, h http.Handler) (string, func(*backend.Config)) {
	s := testutil.NewMemServer(t, h)
	return s.URL + "/iaas/", func(cfg *backend.Config) { cfg.HTTPClient = s.Client() }
}

// escape is an independent RFC 3986 encoder for the test's signature check.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// verifySignature checks a request's signature independently of package signer.
func verifySignature(method, path string, vals url.Values, secret string) error {
	var keys []string
	for k, v := range vals {
		if len(v) != 1 {
			return fmt.Errorf("parameter %s sent %d times", k, len(v))
		}
		if k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, escape(k)+"="+escape(vals.Get(k)))
	}
	var h func() hash.Hash
	switch vals.Get("signature_method") {
	case "HmacSHA256":
		h = sha256.New
	case "HmacSHA1":
		h = sha1.New
	default:
		return fmt.Errorf("signature_method %q", vals.Get("signature_method"))
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n" + strings.Join(parts, "&")))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := vals.Get("signature"); got != want {
		return fmt.Errorf("signature %q, want %q", got, want)
	}
	if vals.Get("access_key_id") != testKeyID || vals.Get("signature_version") != "1" {
		return fmt.Errorf("auth parameters %v", vals)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", vals.Get("time_stamp")); err != nil {
		return fmt.Errorf("time_stamp: %v", err)
	}
	return nil
}

// requestParams returns the decoded parameters of a GET query or POST form.
func requestParams(r *http.Request) (url.Values, error) {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return url.ParseQuery(string(body))
	}
	return url.ParseQuery(r.URL.RawQuery)
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, body)
}

// assertClean fails if an error (or log) text could leak credentials or the signed request.
func assertClean(t *testing.T, text string) {
	t.Helper()
	for _, bad := range []string{testSecret, "signature=", "time_stamp="} {
		if strings.Contains(text, bad) {
			t.Errorf("text leaks %q: %s", bad, text)
		}
	}
}

// info returns the status code and the one ErrorInfo of err.
func info(t *testing.T, err error) (codes.Code, *errdetails.ErrorInfo) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a status error: %v", err)
	}
	var out *errdetails.ErrorInfo
	n := 0
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			out = ei
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d ErrorInfo details in %v, want 1", n, err)
	}
	assertClean(t, err.Error())
	for k, v := range out.GetMetadata() {
		assertClean(t, k+"="+v)
	}
	return st.Code(), out
}

func TestCallSignedGET(t *testing.T) {
	var seen atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/iaas/" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
			t.Errorf("GET carries a body: length %d, encoding %v", r.ContentLength, r.TransferEncoding)
		}
		if ua := r.Header.Get("User-Agent"); ua != "test-agent/1" {
			t.Errorf("User-Agent %q", ua)
		}
		vals, err := requestParams(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySignature(r.Method, r.URL.Path, vals, testSecret); err != nil {
			t.Errorf("signature does not verify: %v", err)
		}
		want := map[string]string{"action": "DescribeInstances", "zone": "pek3a", "status.1": "running", "search_word": "a b+c/~é", "description": ""}
		for k, v := range want {
			if got, ok := vals[k]; !ok || got[0] != v {
				t.Errorf("parameter %s = %q, want %q", k, got, v)
			}
		}
		writeJSON(w, `{"action":"DescribeInstancesResponse","ret_code":0,"total_count":0,"instance_set":[]}`)
	}))
	defer up.Close()
	c := newClient(t, up.URL+"/iaas/", func(cfg *backend.Config) { cfg.UserAgent = "test-agent/1" })
	params := map[string]string{"zone": "pek3a", "status.1": "running", "search_word": "a b+c/~é", "description": ""}
	body, err := c.Call(context.Background(), "DescribeInstances", params, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"total_count":0`) {
		t.Errorf("body %s", body)
	}
	if _, set := params["action"]; set || len(params) != 4 {
		t.Errorf("Call modified the caller's params: %v", params)
	}
	if seen.Load() != 1 {
		t.Errorf("%d upstream requests", seen.Load())
	}
}

func TestSignatureMethodSHA1(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals, _ := requestParams(r)
		if vals.Get("signature_method") != "HmacSHA1" {
			t.Errorf("signature_method %q", vals.Get("signature_method"))
		}
		if err := verifySignature(r.Method, r.URL.Path, vals, testSecret); err != nil {
			t.Error(err)
		}
		writeJSON(w, `{"ret_code":0}`)
	}))
	defer up.Close()
	c := newClient(t, up.URL+"/iaas", func(cfg *backend.Config) { cfg.SignatureMethod = "HmacSHA1" })
	if _, err := c.Call(context.Background(), "DescribeZones", nil, false); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeMethodPOSTForm(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("POST with a query: %q", r.URL.RawQuery)
		}
		vals, err := requestParams(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySignature("POST", r.URL.Path, vals, testSecret); err != nil {
			t.Errorf("signature does not verify: %v", err)
		}
		if vals.Get("action") != "CreateServerCertificate" || !strings.Contains(vals.Get("certificate_content"), "\n") {
			t.Errorf("params %v", vals)
		}
		writeJSON(w, `{"action":"CreateServerCertificateResponse","ret_code":0,"server_certificate_id":"sc-j6f28axk"}`)
	}))
	defer up.Close()
	c := newClient(t, up.URL+"/iaas/")
	md := methodByAction(t, "CreateServerCertificate")
	req := &iaasv1.CreateServerCertificateRequest{
		CertificateContent: proto.String("-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----"),
		PrivateKey:         proto.String("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"),
		Zone:               proto.String("pek3a"),
	}
	resp, err := c.InvokeMethod(context.Background(), md, req)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := resp.(*iaasv1.CreateServerCertificateResponse)
	if !ok || got.GetServerCertificateId() != "sc-j6f28axk" {
		t.Fatalf("response %T %v", resp, resp)
	}
}

// methodByAction finds the RPC whose (qingcloud.iaas.v1.action) names action.
func methodByAction(t testing.TB, action string) *api.Method {
	t.Helper()
	m := api.ByAction(action)
	if m == nil {
		t.Fatalf("no RPC for action %s", action)
	}
	return m
}

func TestInvokeMethodDecodes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals, _ := requestParams(r)
		if vals.Get("instances.1") != "i-ogbndull" || vals.Get("verbose") != "1" {
			t.Errorf("params %v", vals)
		}
		writeJSON(w, `{"action":"DescribeInstancesResponse","ret_code":0,"total_count":1,"instance_set":[
			{"instance_id":"i-ogbndull","status":"running","vcpus_current":"x","create_time":"2013-08-28T14:26:03Z",
			 "eip":{"eip_id":"eip-1","bandwidth":"50"},"description":null,"brand_new_field":[1]}]}`)
	}))
	defer up.Close()
	var logs testutil.SyncBuffer
	c := newClient(t, up.URL+"/iaas/", func(cfg *backend.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	md := methodByAction(t, "DescribeInstances")
	resp, err := c.InvokeMethod(context.Background(), md, &iaasv1.DescribeInstancesRequest{
		Instances: []string{"i-ogbndull"}, Verbose: proto.Int32(1), Zone: proto.String("pek3a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.(*iaasv1.DescribeInstancesResponse)
	inst := got.GetInstanceSet()[0]
	if got.GetTotalCount() != 1 || inst.GetStatus() != "running" || inst.GetEip().GetBandwidth() != 50 ||
		!inst.GetCreateTime().AsTime().Equal(time.Date(2013, 8, 28, 14, 26, 3, 0, time.UTC)) || inst.VcpusCurrent != nil {
		t.Errorf("decoded %v", got)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "instance_set[0].vcpus_current") {
		t.Errorf("mismatch not logged as a warning:\n%s", out)
	}
	assertClean(t, out)
}

func TestInvokeMethodErrors(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1/iaas/")
	// A request that cannot be encoded never leaves the process.
	_, err := c.InvokeMethod(context.Background(), methodByAction(t, "GetMonitor"),
		&iaasv1.GetMonitorRequest{StartTime: &timestamppb.Timestamp{Seconds: 1 << 50}})
	if code, ei := info(t, err); code != codes.InvalidArgument || ei.GetReason() != "INVALID_REQUEST" {
		t.Errorf("encode failure: %v", err)
	}
	// The wrong request type.
	_, err = c.InvokeMethod(context.Background(), methodByAction(t, "GetMonitor"), &iaasv1.DescribeInstancesRequest{})
	if code, _ := info(t, err); code != codes.Internal {
		t.Errorf("wrong request type: %v", err)
	}
	// A method without the action option is not in the action table.
	md := iaasv1.File_qingcloud_iaas_v1_call_proto.Services().Get(0).Methods().Get(0)
	m := api.ByFullMethod("/" + string(md.Parent().FullName()) + "/" + string(md.Name()))
	_, err = c.InvokeMethod(context.Background(), m, &iaasv1.CallRequest{})
	if code, _ := info(t, err); code != codes.Unimplemented {
		t.Errorf("method without action: %v", err)
	}
	// The paginating variant of a list action is paged by the server, never invoked.
	_, err = c.InvokeMethod(context.Background(), api.ByFullMethod("/qingcloud.iaas.v1.InstanceService/DescribeInstancesAll"), &iaasv1.DescribeInstancesAllRequest{})
	if code, _ := info(t, err); code != codes.Internal {
		t.Errorf("paginating variant: %v", err)
	}
}

// rawServer accepts TCP connections and hands each to handle.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	endpoint, _ := rawServerStop(t, handle)
	return endpoint
}

// rawServerStop is rawServer with a stop function that closes the listener and waits for every
// connection's handle to return.
func rawServerStop(t *testing.T, handle func(net.Conn)) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := func() { ln.Close(); wg.Wait() }
	t.Cleanup(stop)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/iaas/", stop
}

// reset closes conn with a TCP RST.
func reset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func TestUpstreamFailures(t *testing.T) {
	big := strings.Repeat(" ", backend.MaxResponseBytes) + `{"ret_code":0}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		code    codes.Code
		reason  string
		detail  string
	}{
		{"ret_code 1200", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":1200,"message":"AuthFailure, signature not match"}`)
		}, codes.Unauthenticated, "QINGCLOUD_1200", "AuthFailure"},
		{"ret_code 2100", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"action":"StopInstancesResponse","ret_code":2100,"message":"ResourceNotFound, resource [i-x] not found"}`)
		}, codes.NotFound, "QINGCLOUD_2100", "i-x"},
		{"ret_code 1400 busy", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":1400,"message":"PermissionDenied, resource [i-1] is [stopping], please try later"}`)
		}, codes.Unavailable, "QINGCLOUD_1400", "stopping"},
		{"ret_code 2500", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":2500,"message":"QuotaExceeded, API request quota exceeded, please try later"}`)
		}, codes.ResourceExhausted, "QINGCLOUD_2500", "quota"},
		{"ret_code 5100", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":5100,"message":"ServerBusy"}`)
		}, codes.Unavailable, "QINGCLOUD_5100", "busy"},
		{"ret_code as a string, null message", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":"1100","message":null}`)
		}, codes.InvalidArgument, "QINGCLOUD_1100", "1100"},
		{"HTTP 502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "upstream answered HTTP 502 Bad Gateway"},
		{"HTTP 503 with JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"ret_code":0}`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "HTTP 503"},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://evil.invalid/steal?"+r.URL.RawQuery, http.StatusFound)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "HTTP 302"},
		{"wrong content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, `{"ret_code":0}`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", `content type "text/plain"`},
		{"truncated JSON", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":0,"instance_set":[{"instance_id":"i-1"`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "not valid JSON"},
		{"connection closed mid-body", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ret_code\":0,")
			buf.Flush()
			conn.Close()
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "closed before the whole answer"},
		{"no ret_code", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"action":"DescribeInstancesResponse"}`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "no ret_code"},
		{"malformed ret_code", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `{"ret_code":"oops"}`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "malformed ret_code"},
		{"not an object", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, `[1,2]`)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "not an object"},
		{"empty body", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, ``)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "empty body"},
		{"body over the limit", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, big)
		}, codes.Unavailable, "UPSTREAM_UNAVAILABLE", "larger than the 32 MiB limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(tc.handler)
			defer up.Close()
			c := newClient(t, up.URL+"/iaas/")
			body, err := c.Call(context.Background(), "StopInstances", map[string]string{"instances.1": "i-1"}, false)
			if err == nil {
				t.Fatalf("no error; body %.100s", body)
			}
			code, ei := info(t, err)
			if code != tc.code || ei.GetReason() != tc.reason {
				t.Errorf("got %v %s, want %v %s: %v", code, ei.GetReason(), tc.code, tc.reason, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.detail)) {
				t.Errorf("error %q does not mention %q", err, tc.detail)
			}
			if ei.GetMetadata()["action"] != "StopInstances" {
				t.Errorf("metadata %v", ei.GetMetadata())
			}
			if tc.reason == "UPSTREAM_UNAVAILABLE" && ei.GetMetadata()["may_have_applied"] != "true" {
				t.Errorf("an answered request may have been applied: %v", ei.GetMetadata())
			}
			// The typed path reads ret_code in the pass that decodes the answer: the same error.
			_, terr := c.InvokeMethod(context.Background(), methodByAction(t, "StopInstances"), &iaasv1.StopInstancesRequest{Instances: []string{"i-1"}})
			if tcode, tei := info(t, terr); tcode != code || tei.GetReason() != ei.GetReason() || status.Convert(terr).Message() != status.Convert(err).Message() {
				t.Errorf("typed call: %v %s %q; raw call: %v %s %q", tcode, tei.GetReason(), status.Convert(terr).Message(), code, ei.GetReason(), status.Convert(err).Message())
			}
		})
	}
}

func TestConnectionRefusedNeverApplied(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr+"/iaas/")
	_, err = c.Call(context.Background(), "RunInstances", map[string]string{"image_id": "centos7x64d"}, false)
	code, ei := info(t, err)
	if code != codes.Unavailable || ei.GetReason() != "UPSTREAM_UNAVAILABLE" || ei.GetMetadata()["may_have_applied"] != "false" {
		t.Errorf("got %v %v", code, ei)
	}
	if !strings.Contains(err.Error(), "safe to retry") {
		t.Errorf("message %q", err)
	}
}

func TestConnectionResetAfterWriteMayHaveApplied(t *testing.T) {
	var requests atomic.Int32
	endpoint := rawServer(t, func(conn net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		requests.Add(1)
		reset(conn)
	})
	c := newClient(t, endpoint)
	_, err := c.Call(context.Background(), "RunInstances", map[string]string{"image_id": "centos7x64d"}, false)
	code, ei := info(t, err)
	if code != codes.Unavailable || ei.GetMetadata()["may_have_applied"] != "true" {
		t.Errorf("got %v %v", code, ei)
	}
	if !strings.Contains(err.Error(), "may have been applied") {
		t.Errorf("message %q", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// dropSecond is an upstream that counts the requests it reads and answers each with ret_code 0, but
// the second: it reads that one and then drops its connection without an answer.
func dropSecond(t *testing.T, requests *atomic.Int32) (endpoint string, stop func()) {
	return rawServerStop(t, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if requests.Add(1) == 2 {
				reset(conn)
				return
			}
			body := `{"ret_code":0}`
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
}

// TestReusedConnectionNotReplayed checks that net/http does not silently re-send a GET (QingCloud's GETs
// change state) when a kept-alive connection closes after the request was written.
func TestReusedConnectionNotReplayed(t *testing.T) {
	var requests atomic.Int32
	endpoint, stop := dropSecond(t, &requests)
	// A replay needs a new connection (the first one was reset): count the dials.
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c := newClient(t, endpoint, func(cfg *backend.Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	if _, err := c.Call(context.Background(), "DescribeZones", nil, false); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(context.Background(), "RunInstances", nil, false)
	if err == nil {
		t.Fatal("no error")
	}
	if _, ei := info(t, err); ei.GetMetadata()["may_have_applied"] != "true" {
		t.Errorf("metadata %v", ei.GetMetadata())
	}
	// The transport re-sends, if at all, before Call returns; every request it sent is read once the
	// server's connections have ended.
	tr.CloseIdleConnections()
	stop()
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections dialed, want 1 (the failed request must not be replayed)", n)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2 (the failed one must not be replayed)", n)
	}
}

// TestDeadlines runs each case in a synctest bubble with the upstream in memory: deadlines and the
// upstream's delay are on the bubble's clock.
func TestDeadlines(t *testing.T) {
	// upstream answers after 5 s, unless the request is canceled first (it then says so on canceled).
	upstream := func(t *testing.T) (string, func(*backend.Config), chan struct{}) {
		canceled := make(chan struct{}, 4)
		endpoint, mem := memUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
				canceled <- struct{}{}
			case <-time.After(5 * time.Second):
				writeJSON(w, `{"ret_code":0}`)
			}
		}))
		return endpoint, mem, canceled
	}
	bubble := func(name string, f func(t *testing.T)) { t.Run(name, func(t *testing.T) { synctest.Test(t, f) }) }

	bubble("caller deadline", func(t *testing.T) {
		endpoint, mem, canceled := upstream(t)
		c := newClient(t, endpoint, mem)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Call(ctx, "DescribeInstances", nil, false)
		if code, ei := info(t, err); code != codes.DeadlineExceeded || ei.GetReason() != "DEADLINE_EXCEEDED" || ei.GetMetadata()["may_have_applied"] != "true" {
			t.Errorf("got %v %v", code, ei)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
		select {
		case <-canceled:
		case <-time.After(2 * time.Second):
			t.Error("the upstream request was not canceled")
		}
	})
	bubble("caller cancel", func(t *testing.T) {
		endpoint, mem, canceled := upstream(t)
		c := newClient(t, endpoint, mem)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.Call(ctx, "DescribeInstances", nil, false)
		if code, _ := info(t, err); code != codes.Canceled {
			t.Errorf("got %v", err)
		}
		<-canceled
	})
	bubble("already expired", func(t *testing.T) {
		endpoint, mem, _ := upstream(t)
		c := newClient(t, endpoint, mem)
		ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
		defer cancel()
		_, err := c.Call(ctx, "RunInstances", nil, false)
		if code, ei := info(t, err); code != codes.DeadlineExceeded || ei.GetMetadata()["may_have_applied"] != "false" {
			t.Errorf("got %v %v", code, ei)
		}
	})
	bubble("client timeout without caller deadline", func(t *testing.T) {
		endpoint, mem, canceled := upstream(t)
		c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.Timeout = 100 * time.Millisecond; cfg.MaxAttempts = 1 })
		_, err := c.Call(context.Background(), "DescribeInstances", nil, false)
		if code, ei := info(t, err); code != codes.Unavailable || !strings.Contains(err.Error(), "did not answer within 100ms") || ei.GetMetadata()["may_have_applied"] != "true" {
			t.Errorf("got %v", err)
		}
		<-canceled
	})
	bubble("earlier caller deadline wins over the client timeout", func(t *testing.T) {
		endpoint, mem, canceled := upstream(t)
		c := newClient(t, endpoint, mem, func(cfg *backend.Config) { cfg.Timeout = time.Minute })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Call(ctx, "DescribeInstances", nil, false)
		if code, _ := info(t, err); code != codes.DeadlineExceeded {
			t.Errorf("got %v", err)
		}
		<-canceled
	})
}

func TestNew(t *testing.T) {
	good := backend.Config{Endpoint: "https://api.qingcloud.com/iaas/", Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK-secret"}}
	if _, err := backend.New(good); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*backend.Config)
		want string
	}{
		{"empty endpoint", func(c *backend.Config) { c.Endpoint = "" }, "Config.Endpoint"},
		{"not http", func(c *backend.Config) { c.Endpoint = "ftp://api.qingcloud.com/iaas/" }, "Config.Endpoint"},
		{"no host", func(c *backend.Config) { c.Endpoint = "https:///iaas/" }, "Config.Endpoint"},
		{"relative", func(c *backend.Config) { c.Endpoint = "/iaas/" }, "Config.Endpoint"},
		{"user info", func(c *backend.Config) { c.Endpoint = "https://ak:SK-secret@api.qingcloud.com/iaas/" }, "Config.Endpoint"},
		{"query", func(c *backend.Config) { c.Endpoint = "https://api.qingcloud.com/iaas/?zone=pek3a" }, "Config.Endpoint"},
		{"unparsable", func(c *backend.Config) { c.Endpoint = "http://[::1" }, "Config.Endpoint"},
		{"no access key", func(c *backend.Config) { c.Credentials.AccessKeyID = "" }, "Config.Credentials.AccessKeyID"},
		{"no secret", func(c *backend.Config) { c.Credentials.SecretAccessKey = "" }, "Config.Credentials.SecretAccessKey"},
		{"signature method", func(c *backend.Config) { c.SignatureMethod = "HmacMD5" }, "Config.SignatureMethod"},
		{"negative timeout", func(c *backend.Config) { c.Timeout = -time.Second }, "Config.Timeout"},
		{"negative dial timeout", func(c *backend.Config) { c.DialTimeout = -time.Second }, "Config.DialTimeout"},
		{"negative attempts", func(c *backend.Config) { c.MaxAttempts = -1 }, "Config.MaxAttempts"},
		{"negative retry delay", func(c *backend.Config) { c.RetryBaseDelay = -time.Second }, "Config.RetryBaseDelay"},
		{"max delay below base", func(c *backend.Config) { c.RetryBaseDelay = time.Second; c.RetryMaxDelay = time.Millisecond }, "Config.RetryMaxDelay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := backend.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "SK-secret") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestEmptyAction(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1/iaas/")
	_, err := c.Call(context.Background(), "", nil, false)
	if code, _ := info(t, err); code != codes.InvalidArgument {
		t.Errorf("got %v", err)
	}
}

func TestErrorsAreStatusErrors(t *testing.T) {
	// errors.Is with context errors is not promised; callers use status codes.
	c := newClient(t, "http://127.0.0.1:1/iaas/")
	_, err := c.Call(context.Background(), "DescribeZones", nil, false)
	if _, ok := status.FromError(err); !ok || errors.Unwrap(err) != nil && strings.Contains(errors.Unwrap(err).Error(), "signature") {
		t.Errorf("got %v", err)
	}
}

// TestTypedCallLogsValuesThatDidNotFit: a value that does not fit the response message is skipped and
// logged (a warning the first time per action, then at debug level); the rest of the answer is decoded
// in the same pass that checked ret_code, with or without coalescing.
func TestTypedCallLogsValuesThatDidNotFit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"ret_code":0,"total_count":1,"instance_set":[{"instance_id":"i-1","vcpus_current":{"n":1}}]}`)
	}))
	defer up.Close()
	for _, coalesce := range []bool{true, false} {
		var logs testutil.SyncBuffer
		c := newClient(t, up.URL+"/iaas/", func(cfg *backend.Config) {
			cfg.DisableCoalescing = !coalesce
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		for range 2 {
			resp, err := c.InvokeMethod(context.Background(), methodByAction(t, "DescribeInstances"), &iaasv1.DescribeInstancesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := resp.(*iaasv1.DescribeInstancesResponse)
			if got.GetTotalCount() != 1 || got.GetInstanceSet()[0].GetInstanceId() != "i-1" || got.GetInstanceSet()[0].VcpusCurrent != nil {
				t.Fatalf("coalesce %v: got %v", coalesce, got)
			}
		}
		out := logs.String()
		warn := strings.Count(out, `level=WARN msg="qingcloud answer did not fully fit`)
		debug := strings.Count(out, `level=DEBUG msg="qingcloud answer did not fully fit`)
		if warn != 1 || debug != 1 || !strings.Contains(out, "instance_set[0].vcpus_current") {
			t.Errorf("coalesce %v: %d warnings, %d debug lines:\n%s", coalesce, warn, debug, out)
		}
	}
}

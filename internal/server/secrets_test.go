package server_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

const (
	leakAccessKeyID = "QYLEAKTESTKEYID0001"
	leakSecret      = "SECRET-9b1d7f3e-only-in-config-Zq81"
	leakWrongSecret = "WRONGSECRET-51c0aa7e-also-never-shown"
	leakToken       = "tok-4c2e9a1f-bearer-never-logged-Xk2"
	leakWrongToken  = "tok-badbadbad-7d3f-never-logged-either"
)

// bearerAuth stands in for the auth interceptors cmd/server passes in Config: it rejects calls
// without "authorization: Bearer <token>".
func bearerAuth(token string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			if v == "Bearer "+token {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	}
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}, func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}
}

// leakCapture collects everything the facade tells anyone.
type leakCapture struct {
	b strings.Builder
}

func (c *leakCapture) add(what string, v ...any) {
	fmt.Fprintf(&c.b, "--- %s\n%s\n", what, fmt.Sprint(v...))
}

// addErr records an error's text and its full google.rpc.Status (every detail).
func (c *leakCapture) addErr(what string, err error) {
	if err == nil {
		c.add(what, "ok")
		return
	}
	b, _ := protojson.Marshal(status.Convert(err).Proto())
	c.add(what, err.Error(), "\n", string(b))
}

// TestNoSecretInLogsErrorsMetricsOrTraces runs successful and failing calls (a wrong secret, missing
// and wrong bearer tokens, upstream errors and faults, reserved parameters, streams) over gRPC and
// REST, with every log at debug level, and checks that no access secret, bearer token or request
// signature appears in the logs, the errors (messages and details), the REST answers, the metrics or
// the spans; and that the access key id appears in no metric or span.
func TestNoSecretInLogsErrorsMetricsOrTraces(t *testing.T) {
	keys := map[string]string{leakAccessKeyID: leakSecret}
	unary, stream := bearerAuth(leakToken)
	good := newObsStack(t, obsOptions{keys: keys, accessKeyID: leakAccessKeyID, secret: leakSecret,
		unary: []grpc.UnaryServerInterceptor{unary}, stream: []grpc.StreamServerInterceptor{stream}})
	wrong := newObsStack(t, obsOptions{keys: keys, accessKeyID: leakAccessKeyID, secret: leakWrongSecret,
		unary: []grpc.UnaryServerInterceptor{unary}, stream: []grpc.StreamServerInterceptor{stream}})
	var c leakCapture
	authed := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+token, "x-request-id", "leak-test")
	}

	for _, s := range []*obsStack{good, wrong} {
		zones := iaasv1.NewZoneServiceClient(s.conn)
		inst := iaasv1.NewInstanceServiceClient(s.conn)
		call := iaasv1.NewCallServiceClient(s.conn)
		var hdr, trl metadata.MD
		_, err := zones.DescribeZones(authed(leakToken), &iaasv1.DescribeZonesRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl))
		c.addErr("DescribeZones", err)
		c.add("headers", hdr, trl)
		if s == wrong && status.Code(err) != codes.Unauthenticated {
			t.Fatalf("DescribeZones with a wrong secret: %v, want UNAUTHENTICATED", err)
		}
		if s == good && err != nil {
			t.Fatalf("DescribeZones: %v", err)
		}
		_, err = zones.DescribeZones(authed(leakWrongToken), &iaasv1.DescribeZonesRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("DescribeZones with a wrong token: %v", err)
		}
		c.addErr("wrong token", err)
		_, err = zones.DescribeZones(ctxT(t), &iaasv1.DescribeZonesRequest{})
		c.addErr("no token", err)
		_, err = inst.TerminateInstances(authed(leakToken), &iaasv1.TerminateInstancesRequest{Instances: []string{"i-doesnotx"}})
		c.addErr("TerminateInstances unknown", err)
		_, err = inst.RunInstances(authed(leakToken), &iaasv1.RunInstancesRequest{LoginMode: proto.String("passwd"), LoginPasswd: proto.String("Passw0rd1")})
		c.addErr("RunInstances invalid", err)
		params, _ := structpb.NewStruct(map[string]any{"signature": leakSecret, "access_key_id": leakAccessKeyID, "token": leakToken})
		_, err = call.Call(authed(leakToken), &iaasv1.CallRequest{Action: "DescribeZones", Params: params})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Call with reserved parameters: %v", err)
		}
		// Echoing the caller's own values back in a violation would be harmless but is not done
		// either: check the message names the parameters, not their values.
		c.addErr("Call reserved params", err)
		_, err = call.Call(authed(leakToken), &iaasv1.CallRequest{Action: "NoSuchActionAnywhere"})
		c.addErr("Call unknown action", err)
		st, err := inst.DescribeInstancesAll(authed(leakToken), &iaasv1.DescribeInstancesAllRequest{})
		if err == nil {
			for err == nil {
				_, err = st.Recv()
			}
			if err == io.EOF {
				err = nil
			}
		}
		c.addErr("DescribeInstancesAll", err)
		w, err := iaasv1.NewWatchServiceClient(s.conn).WatchJobs(authed(leakToken), &iaasv1.WatchJobsRequest{JobIds: []string{"j-doesnotx"}})
		if err == nil {
			_, err = w.Recv()
		}
		c.addErr("WatchJobs unknown", err)

		// Upstream faults: ret_code 5000, HTTP 502, a reset connection, a truncated body.
		for _, f := range []emulator.Faults{{RetCode5000: 1}, {HTTP502: 1}, {ConnReset: 1}, {TruncatedBody: 1}, {RetCode2500: 1}} {
			s.emu.SetFaults(f)
			_, err = zones.DescribeZones(authed(leakToken), &iaasv1.DescribeZonesRequest{})
			c.addErr(fmt.Sprintf("fault %+v", f), err)
			if err == nil {
				t.Errorf("fault %+v: no error", f)
			}
		}
		s.emu.SetFaults(emulator.Faults{})

		// REST, with the token in the Authorization header.
		for _, r := range []struct{ method, path, body, token string }{
			{"GET", "/v1/iaas/DescribeZones", "", leakToken},
			{"GET", "/v1/iaas/DescribeZones", "", leakWrongToken},
			{"POST", "/v1/iaas/TerminateInstances", `{"instances":["i-doesnotx"]}`, leakToken},
			{"POST", "/v1/iaas:call", `{"action":"DescribeZones","params":{"signature":"` + leakSecret + `"}}`, leakToken},
			{"POST", "/v1/iaas/RunInstances", `{"count":"many"}`, leakToken},
			{"GET", "/v1/iaas/jobs:watch?job_ids=j-doesnotx", "", leakToken},
		} {
			resp, body := s.do(t, r.method, r.path, r.body, map[string]string{"Authorization": "Bearer " + r.token})
			c.add("REST "+r.method+" "+r.path, resp.Status, "\n", resp.Header, "\n", body)
		}
	}

	// Scrape, then stop the pollers and servers: once every call has finished, their spans have ended
	// and their last log lines are in. Then collect logs, metrics and spans.
	scrapes := map[*obsStack]string{}
	for _, s := range []*obsStack{good, wrong} {
		scrapes[s] = s.scrape(t)
		s.quiesce()
	}
	var telemetryOut strings.Builder
	for _, s := range []*obsStack{good, wrong} {
		m := scrapes[s]
		telemetryOut.WriteString(m)
		for _, sp := range s.spans.Ended() {
			fmt.Fprintf(&telemetryOut, "span %q %v %q\n", sp.Name(), sp.Status().Code, sp.Status().Description)
			for _, a := range sp.Attributes() {
				fmt.Fprintf(&telemetryOut, "  %s=%s\n", a.Key, a.Value.Emit())
			}
			for _, e := range sp.Events() {
				fmt.Fprintf(&telemetryOut, "  event %s\n", e.Name)
				for _, a := range e.Attributes {
					fmt.Fprintf(&telemetryOut, "    %s=%s\n", a.Key, a.Value.Emit())
				}
			}
		}
		c.add("logs", s.logs.String())
	}
	c.add("metrics and spans", telemetryOut.String())
	all := c.b.String()

	// Sanity: the capture holds what it should, so the absence checks mean something.
	for _, want := range []string{`"msg":"finished call"`, `"request_id":"leak-test"`, "QINGCLOUD_1200", "Unauthenticated", "missing or invalid bearer token",
		"QINGCLOUD_2100", "UNAVAILABLE", telemetryNameHint, `"component":"backend"`, "span \"QingCloud DescribeZones\""} {
		if !strings.Contains(all, want) {
			t.Fatalf("the capture lacks %q; the test does not see what it should", want)
		}
	}

	forbidden := map[string]string{
		"the secret access key":       leakSecret,
		"the wrong secret access key": leakWrongSecret,
		"the bearer token":            leakToken,
		"the wrong bearer token":      leakWrongToken,
		"a signature parameter":       "signature=",
	}
	var sigs int
	for _, s := range []*obsStack{good, wrong} {
		for _, r := range s.upstream.requests() {
			if r.signature == "" {
				continue
			}
			sigs++
			forbidden["the signature of a "+r.action+" request"] = r.signature
			forbidden["the escaped signature of a "+r.action+" request"] = url.QueryEscape(r.signature)
		}
	}
	if sigs < 10 {
		t.Fatalf("only %d signed upstream requests were seen", sigs)
	}
	for what, s := range forbidden {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("%s appears in the output: ...%s...", what, excerpt(all, i, len(s)))
		}
	}
	if i := strings.Index(telemetryOut.String(), leakAccessKeyID); i >= 0 {
		t.Errorf("the access key id appears in metrics or spans: ...%s...", excerpt(telemetryOut.String(), i, len(leakAccessKeyID)))
	}
}

// telemetryNameHint is a metric the capture must include.
const telemetryNameHint = "qingcloud_upstream_ret_codes_total"

func excerpt(s string, i, n int) string {
	lo, hi := max(0, i-120), min(len(s), i+n+120)
	return s[lo:hi]
}

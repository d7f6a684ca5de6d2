package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth/authtest"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// running is a server started by start: its addresses, its logs, and how to stop it.
type running struct {
	addrs  listening
	logs   *testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// stop cancels the server's context (what SIGTERM does) and waits for run to return.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of the cancel")
		return nil
	}
}

// start runs the server in a goroutine with args and a fixed environment (HOME unset: no default
// config file is read) and waits until it serves.
func start(t *testing.T, args []string, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &testutil.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan listening, 1)
	go func() {
		r.done <- run(ctx, args, func(k string) string { return env[k] }, r.logs, func(l listening) { ready <- l })
	}()
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("run returned before serving: %v\nlogs:\n%s", err, r.logs)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("the server did not start within 20s; logs:\n%s", r.logs)
	}
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

var runReq = &iaasv1.RunInstancesRequest{
	ImageId: proto.String("centos7x64d"), InstanceType: proto.String("c1m1"),
	LoginMode: proto.String("passwd"), LoginPasswd: proto.String("Passw0rd1"), Vxnets: []string{"vxnet-0"},
}

// TestRunLocalWithoutConfiguration is the README's `go run ./cmd/server`: no keys, no file, no
// variables: the built-in emulator on loopback, no caller auth.
func TestRunLocalWithoutConfiguration(t *testing.T) {
	r := start(t, []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}, nil)
	ctx := ctxT(t)
	conn := dial(t, r.addrs.GRPC, nil)
	zones, err := iaasv1.NewZoneServiceClient(conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
	if err != nil || len(zones.GetZoneSet()) == 0 {
		t.Fatalf("DescribeZones = %v, %v", zones, err)
	}
	resp, err := http.Get("http://" + r.addrs.HTTP + "/v1/iaas/DescribeZones")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST DescribeZones: %s", resp.Status)
	}
	var out bytes.Buffer
	if err := healthcheck([]string{"-grpc-addr", r.addrs.GRPC}, &out); err != nil || out.String() != "SERVING\n" {
		t.Fatalf("healthcheck = %q, %v", out.String(), err)
	}
	for _, want := range []string{"built-in QingCloud emulator", `caller_auth="none (loopback only)"`, "tls=off", "profiles=default"} {
		if !strings.Contains(r.logs.String(), want) {
			t.Errorf("logs miss %q:\n%s", want, r.logs)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}
}

func TestRunRefusesPublicAddressWithoutCallerAuth(t *testing.T) {
	start := time.Now()
	err := run(context.Background(), []string{"-grpc-addr", "0.0.0.0:0", "-http-addr", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard, func(listening) { t.Error("the server started") })
	if err == nil || !strings.Contains(err.Error(), "-grpc-addr") || !strings.Contains(err.Error(), "no caller authentication") {
		t.Fatalf("run = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("run took long to refuse")
	}
}

// tenants is an emulator with two accounts and a TLS + mutual TLS server with one profile and one
// token per account.
type tenants struct {
	emu           *emulator.Server
	r             *running
	ca            *authtest.CA
	client        authtest.Pair
	tokA, tokB    string
	secretA, secB string
	grpcA, grpcB  context.Context
	conn          *grpc.ClientConn
	httpc         *http.Client
	restBase      string
	configFile    string
}

func startTenants(t *testing.T) *tenants {
	t.Helper()
	tt := &tenants{tokA: auth.GenerateToken(), tokB: auth.GenerateToken(), secretA: "secret-of-A-" + auth.GenerateToken()[:8], secB: "secret-of-B-" + auth.GenerateToken()[:8]}
	emu, err := emulator.Listen("127.0.0.1:0", emulator.Options{
		Keys:       map[string]string{"KEYA": tt.secretA, "KEYB": tt.secB},
		JobPending: 20 * time.Millisecond, JobWorking: 50 * time.Millisecond, Quota: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	tt.emu = emu
	tt.ca = authtest.NewCA(t, "ca")
	srv := tt.ca.Server(t, "server")
	tt.client = tt.ca.Client(t, "client")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b.secret"), []byte(tt.secB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tt.configFile = filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`
zone: pek3a
protocol: http
qingcloud_grpc:
  log_level: debug
  tls:
    cert_file: %s
    key_file: %s
    client_ca_file: %s
  profiles:
    team-a: {qy_access_key_id: KEYA, qy_secret_access_key: %s}
    team-b: {qy_access_key_id: KEYB, secret_access_key_file: b.secret}
  tokens:
    - {name: a-ci, sha256: %s, profile: team-a}
    - {name: b-ci, sha256: %s, profile: team-b}
`, srv.CertFile, srv.KeyFile, tt.ca.File, tt.secretA, auth.HashToken(tt.tokA), auth.HashToken(tt.tokB))
	if err := os.WriteFile(tt.configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tt.r = start(t, []string{"-config", tt.configFile, "-endpoint", emu.Endpoint(),
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-health-addr", "127.0.0.1:0"}, nil)
	clientTLS := &tls.Config{RootCAs: tt.ca.Pool(), Certificates: []tls.Certificate{tt.client.TLS}, MinVersion: tls.VersionTLS12}
	tt.conn = dial(t, tt.r.addrs.GRPC, credentials.NewTLS(clientTLS))
	ctx := ctxT(t)
	tt.grpcA, tt.grpcB = withToken(ctx, tt.tokA), withToken(ctx, tt.tokB)
	tt.httpc = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 20 * time.Second}
	t.Cleanup(tt.httpc.CloseIdleConnections)
	tt.restBase = "https://" + tt.r.addrs.HTTP
	return tt
}

// rest sends a REST request with an optional token and returns the status and body.
func (tt *tenants) rest(t *testing.T, method, path, token string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tt.restBase+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := tt.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func instanceIDs(resp *iaasv1.DescribeInstancesResponse) []string {
	var ids []string
	for _, i := range resp.GetInstanceSet() {
		ids = append(ids, i.GetInstanceId())
	}
	return ids
}

// TestRunTenantsAreIsolated: each token acts with its own profile's keys (two emulator accounts), over
// gRPC with mutual TLS and over HTTPS REST; missing, wrong and other tenants' tokens get nothing.
func TestRunTenantsAreIsolated(t *testing.T) {
	tt := startTenants(t)
	inst := iaasv1.NewInstanceServiceClient(tt.conn)
	ctx := ctxT(t)

	// Missing and wrong tokens.
	_, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "Bearer <token>") {
		t.Fatalf("no token: %v", err)
	}
	wrong := auth.GenerateToken()
	_, err = inst.DescribeInstances(withToken(ctx, wrong), &iaasv1.DescribeInstancesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}

	// Tenant A creates an instance; only A sees it.
	run, err := inst.RunInstances(tt.grpcA, runReq)
	if err != nil || len(run.GetInstances()) != 1 {
		t.Fatalf("RunInstances(A) = %v, %v", run, err)
	}
	id := run.GetInstances()[0]
	a, err := inst.DescribeInstances(tt.grpcA, &iaasv1.DescribeInstancesRequest{})
	if err != nil || !contains(instanceIDs(a), id) {
		t.Fatalf("A's DescribeInstances = %v, %v", instanceIDs(a), err)
	}
	b, err := inst.DescribeInstances(tt.grpcB, &iaasv1.DescribeInstancesRequest{})
	if err != nil || contains(instanceIDs(b), id) {
		t.Fatalf("B sees A's instance: %v, %v", instanceIDs(b), err)
	}
	b, err = inst.DescribeInstances(tt.grpcB, &iaasv1.DescribeInstancesRequest{Instances: []string{id}})
	if err != nil || len(b.GetInstanceSet()) != 0 {
		t.Fatalf("B describes A's instance by id: %v, %v", instanceIDs(b), err)
	}
	// B cannot act on A's instance either.
	if _, err := inst.TerminateInstances(tt.grpcB, &iaasv1.TerminateInstancesRequest{Instances: []string{id}}); status.Code(err) != codes.NotFound {
		t.Fatalf("B terminating A's instance: %v", err)
	}
	// Watches poll with the watcher's keys: B cannot follow A's job.
	watchB, err := iaasv1.NewWatchServiceClient(tt.conn).WatchJobs(tt.grpcB, &iaasv1.WatchJobsRequest{JobIds: []string{run.GetJobId()}})
	if err == nil {
		_, err = watchB.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("B watching A's job: %v", err)
	}
	watchA, err := iaasv1.NewWatchServiceClient(tt.conn).WatchJobs(tt.grpcA, &iaasv1.WatchJobsRequest{JobIds: []string{run.GetJobId()}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := watchA.Recv(); err != nil || ev.GetJob().GetJob().GetJobId() != run.GetJobId() {
		t.Fatalf("A watching its job: %v, %v", ev, err)
	}

	// The same over REST (HTTPS with a client certificate; the gateway reaches gRPC in-process).
	code, body := tt.rest(t, "GET", "/v1/iaas/DescribeInstances", tt.tokA, "")
	if code != 200 || !strings.Contains(body, id) {
		t.Fatalf("REST A: %d %s", code, body)
	}
	code, body = tt.rest(t, "GET", "/v1/iaas/DescribeInstances?instances="+id, tt.tokB, "")
	if code != 200 || strings.Contains(body, id) {
		t.Fatalf("REST B sees A's instance: %d %s", code, body)
	}
	code, body = tt.rest(t, "GET", "/v1/iaas/DescribeInstances", "", "")
	if code != 401 || !strings.Contains(body, `"UNAUTHENTICATED"`) || !strings.Contains(body, `the header \"Authorization: Bearer`) {
		t.Fatalf("REST without a token: %d %s", code, body)
	}
	code, _ = tt.rest(t, "GET", "/v1/iaas/DescribeInstances", wrong, "")
	if code != 401 {
		t.Fatalf("REST with a wrong token: %d", code)
	}
	code, body = tt.rest(t, "POST", "/v1/iaas:call", tt.tokB, `{"action":"TerminateInstances","params":{"instances":["`+id+`"]}}`)
	if code != 404 {
		t.Fatalf("REST B terminating A's instance: %d %s", code, body)
	}
	// Health needs no token.
	if code, _ := tt.rest(t, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("/healthz without a token: %d", code)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRunTLS: plaintext, TLS without a client certificate, and certificates of another CA are all
// refused on both listeners; health and reflection need no token; the healthcheck subcommand speaks
// TLS and mutual TLS, and the plaintext health listener serves health only.
func TestRunTLS(t *testing.T) {
	tt := startTenants(t)
	ctx := ctxT(t)
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		t.Cleanup(cancel)
		return c
	}

	// Mutual TLS: health and reflection without a token.
	h, err := healthpb.NewHealthClient(tt.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over mutual TLS: %v, %v", h, err)
	}

	other := authtest.NewCA(t, "other")
	stranger := other.Client(t, "stranger")
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":               insecure.NewCredentials(),
		"no client certificate":   credentials.NewTLS(&tls.Config{RootCAs: tt.ca.Pool()}),
		"another CA's client":     credentials.NewTLS(&tls.Config{RootCAs: tt.ca.Pool(), Certificates: []tls.Certificate{stranger.TLS}}),
		"server not trusted":      credentials.NewTLS(&tls.Config{RootCAs: other.Pool(), Certificates: []tls.Certificate{tt.client.TLS}}),
		"TLS 1.1 with a cert":     credentials.NewTLS(&tls.Config{RootCAs: tt.ca.Pool(), Certificates: []tls.Certificate{tt.client.TLS}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}),
		"token but no client crt": credentials.NewTLS(&tls.Config{RootCAs: tt.ca.Pool()}),
	} {
		conn := dial(t, tt.r.addrs.GRPC, creds)
		_, err := iaasv1.NewZoneServiceClient(conn).DescribeZones(withToken(short(), tt.tokA), &iaasv1.DescribeZonesRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC, %s: %v; want UNAVAILABLE (handshake refused)", name, err)
		}
	}
	for name, cfg := range map[string]*tls.Config{
		"no client certificate": {RootCAs: tt.ca.Pool()},
		"another CA's client":   {RootCAs: tt.ca.Pool(), Certificates: []tls.Certificate{stranger.TLS}},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		if resp, err := c.Get(tt.restBase + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("REST, %s: %s; want a refused handshake", name, resp.Status)
		}
	}
	if resp, err := http.Get("http://" + tt.r.addrs.HTTP + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plaintext HTTP to the TLS listener: %s", resp.Status)
		}
	}

	// The healthcheck subcommand.
	var out bytes.Buffer
	args := []string{"-grpc-addr", tt.r.addrs.GRPC, "-ca", tt.ca.File, "-cert", tt.client.CertFile, "-key", tt.client.KeyFile, "-timeout", "3s"}
	if err := healthcheck(args, &out); err != nil || out.String() != "SERVING\n" {
		t.Fatalf("healthcheck over mutual TLS = %q, %v", out.String(), err)
	}
	for name, a := range map[string][]string{
		"plaintext":             {"-grpc-addr", tt.r.addrs.GRPC, "-timeout", "1s"},
		"no client certificate": {"-grpc-addr", tt.r.addrs.GRPC, "-ca", tt.ca.File, "-timeout", "1s"},
		"system roots":          {"-grpc-addr", tt.r.addrs.GRPC, "-tls", "-timeout", "1s"},
		"cert without key":      {"-grpc-addr", tt.r.addrs.GRPC, "-cert", tt.client.CertFile},
	} {
		if err := healthcheck(a, io.Discard); err == nil {
			t.Errorf("healthcheck, %s: succeeded", name)
		}
	}
	// The plaintext health listener: health only, for probes that cannot do TLS or tokens.
	out.Reset()
	if err := healthcheck([]string{"-grpc-addr", tt.r.addrs.Health}, &out); err != nil || out.String() != "SERVING\n" {
		t.Fatalf("healthcheck on the health listener = %q, %v", out.String(), err)
	}
	hconn := dial(t, tt.r.addrs.Health, nil)
	if _, err := iaasv1.NewZoneServiceClient(hconn).DescribeZones(withToken(ctx, tt.tokA), &iaasv1.DescribeZonesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("DescribeZones on the health listener: %v", err)
	}
	// Anyone may reach it, so it reads no large messages (a health check request is a service name).
	if _, err := healthpb.NewHealthClient(hconn).Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("a", 1<<20)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 1 MiB health check on the health listener: %v, want RESOURCE_EXHAUSTED", err)
	}
	if !strings.Contains(tt.r.logs.String(), "tls=mutual") || !strings.Contains(tt.r.logs.String(), `caller_auth="bearer tokens (2) + client certificates"`) {
		t.Fatalf("logs:\n%s", tt.r.logs)
	}
}

// TestRunClientsCannotChooseTheUpstream: parameters, metadata and headers naming another endpoint or
// host change nothing: every call goes to the configured endpoint.
func TestRunClientsCannotChooseTheUpstream(t *testing.T) {
	evilURL, hits := startRecorder(t)
	tt := startTenants(t)
	before := tt.emu.Emulator().Stats().TotalRequests

	md := metadata.Pairs("endpoint", evilURL, "host", strings.TrimPrefix(evilURL, "http://"), "x-forwarded-host", strings.TrimPrefix(evilURL, "http://"),
		"qingcloud-endpoint", evilURL, "grpc-metadata-endpoint", evilURL)
	ctx := metadata.NewOutgoingContext(tt.grpcA, metadata.Join(md, metadata.Pairs("authorization", "Bearer "+tt.tokA)))
	params, _ := structpb.NewStruct(map[string]any{"endpoint": evilURL, "host": strings.TrimPrefix(evilURL, "http://"), "uri": "/evil", "protocol": "http", "port": 1})
	if _, err := iaasv1.NewCallServiceClient(tt.conn).Call(ctx, &iaasv1.CallRequest{Action: "DescribeZones", Params: params}); err != nil {
		t.Fatalf("Call with endpoint parameters: %v", err)
	}
	if _, err := iaasv1.NewZoneServiceClient(tt.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{}); err != nil {
		t.Fatalf("DescribeZones with endpoint metadata: %v", err)
	}
	for _, path := range []string{"/v1/iaas/DescribeZones?endpoint=" + evilURL, "/v1/iaas/DescribeZones"} {
		req, _ := http.NewRequest("GET", tt.restBase+path, nil)
		req.Header.Set("Authorization", "Bearer "+tt.tokA)
		req.Header.Set("Endpoint", evilURL)
		req.Header.Set("X-Forwarded-Host", strings.TrimPrefix(evilURL, "http://"))
		req.Header.Set("Grpc-Metadata-Endpoint", evilURL)
		req.Header.Set("Grpc-Metadata-Host", strings.TrimPrefix(evilURL, "http://"))
		req.Host = strings.TrimPrefix(evilURL, "http://")
		resp, err := tt.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// An unknown query parameter may be refused (400); it is never followed.
		if resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("REST %s: %s", path, resp.Status)
		}
	}
	code, body := tt.rest(t, "POST", "/v1/iaas:call", tt.tokA, `{"action":"DescribeZones","params":{"endpoint":"`+evilURL+`","host":"evil"}}`)
	if code != 200 {
		t.Fatalf("REST call with endpoint parameters: %d %s", code, body)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the other endpoint received %d requests", n)
	}
	if got := tt.emu.Emulator().Stats().TotalRequests - before; got < 4 {
		t.Fatalf("the configured emulator saw %d requests, want at least 4", got)
	}
}

// TestRunNoSecretsInLogsOrErrors: QingCloud secrets and bearer tokens never appear in the logs (at
// debug level) or in the answers, whatever the caller sends.
func TestRunNoSecretsInLogsOrErrors(t *testing.T) {
	tt := startTenants(t)
	inst := iaasv1.NewInstanceServiceClient(tt.conn)
	ctx := ctxT(t)
	wrong := auth.GenerateToken()
	var answers []string
	note := func(err error) {
		if err != nil {
			answers = append(answers, err.Error())
		}
	}
	_, err := inst.DescribeInstances(tt.grpcA, &iaasv1.DescribeInstancesRequest{})
	note(err)
	_, err = inst.DescribeInstances(withToken(ctx, wrong), &iaasv1.DescribeInstancesRequest{})
	note(err)
	_, err = inst.DescribeInstances(metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+tt.tokB), &iaasv1.DescribeInstancesRequest{})
	note(err)
	_, err = inst.TerminateInstances(tt.grpcB, &iaasv1.TerminateInstancesRequest{Instances: []string{"i-nothere1"}})
	note(err)
	params, _ := structpb.NewStruct(map[string]any{"signature": tt.secretA})
	_, err = iaasv1.NewCallServiceClient(tt.conn).Call(tt.grpcA, &iaasv1.CallRequest{Action: "DescribeZones", Params: params})
	note(err)
	for _, tok := range []string{tt.tokA, wrong, ""} {
		_, body := tt.rest(t, "GET", "/v1/iaas/DescribeInstances?limit=1", tok, "")
		answers = append(answers, body)
	}
	_, body := tt.rest(t, "GET", "/v1/iaas/DescribeInstances?access_token="+tt.tokB, tt.tokB, "")
	answers = append(answers, body)
	// A start-up error about the same file.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("qingcloud_grpc:\n  tokens:\n    - sha256: "+tt.tokA+"\n  profiles:\n    x: {qy_secret_access_key: "+tt.secretA+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	note(run(context.Background(), []string{"-config", bad}, func(string) string { return "" }, tt.r.logs, nil))
	if len(answers) < 9 {
		t.Fatalf("only %d answers collected", len(answers))
	}
	if err := tt.r.stop(t); err != nil {
		t.Fatal(err)
	}
	logs := tt.r.logs.String()
	if !strings.Contains(logs, "finished call") {
		t.Fatalf("no call was logged:\n%s", logs)
	}
	for name, secret := range map[string]string{"secret of A": tt.secretA, "secret of B": tt.secB, "token A": tt.tokA, "token B": tt.tokB, "wrong token": wrong} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
		for _, a := range answers {
			if strings.Contains(a, secret) {
				t.Errorf("an answer contains the %s: %s", name, a)
			}
		}
	}
}

// startRecorder starts an HTTP server that answers like QingCloud and counts the requests it gets.
func startRecorder(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ret_code":0,"zone_set":[{"zone_id":"evil","status":"active"}],"total_count":1}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/iaas/", &hits
}

// TestMetricsListener moves GET /metrics off the REST listener onto -metrics-addr.
func TestMetricsListener(t *testing.T) {
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	r := start(t, []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"}, nil)
	if r.addrs.Metrics == "" {
		t.Fatal("no metrics listener")
	}
	if code, body := get("http://" + r.addrs.Metrics + "/metrics"); code != 200 || !strings.Contains(body, "qingcloud_") {
		t.Fatalf("GET /metrics on -metrics-addr: %d %.200s", code, body)
	}
	if code, _ := get("http://" + r.addrs.HTTP + "/metrics"); code != http.StatusNotFound {
		t.Fatalf("GET /metrics on the REST listener: %d, want 404 with -metrics-addr", code)
	}
	if code, _ := get("http://" + r.addrs.HTTP + "/v1/iaas/DescribeZones"); code != 200 {
		t.Fatalf("REST still serves the API: %d", code)
	}

	plain := start(t, []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}, nil)
	if code, body := get("http://" + plain.addrs.HTTP + "/metrics"); code != 200 || !strings.Contains(body, "qingcloud_") {
		t.Fatalf("GET /metrics on the REST listener without -metrics-addr: %d", code)
	}
}

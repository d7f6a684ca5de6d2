package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// tenantStack is the server wired as cmd/server wires it: bearer tokens for two profiles, each with
// its own emulator account, and the server and the watch hub resolving tenants from one tenant.Directory.
type tenantStack struct {
	emu        *emulator.Emulator
	hub        *watch.Hub
	conn       *grpc.ClientConn
	rest       string
	tokA, tokB string
	// grpcRead and restRead count the bytes the server read from its gRPC and REST connections.
	grpcRead, restRead *atomic.Int64
}

func newTenantStack(t *testing.T) *tenantStack {
	t.Helper()
	emu := emulator.New(emulator.Options{
		Keys:       map[string]string{"KEYA": "secret-a", "KEYB": "secret-b"},
		JobPending: time.Minute, Quota: -1,
	})
	up := httptest.NewServer(emu)
	t.Cleanup(up.Close)
	var tenants []tenant.Tenant
	for _, p := range []struct{ name, key, secret string }{{"team-a", "KEYA", "secret-a"}, {"team-b", "KEYB", "secret-b"}} {
		be, err := backend.New(backend.Config{Endpoint: up.URL + "/iaas/", Credentials: signer.Credentials{AccessKeyID: p.key, SecretAccessKey: p.secret}})
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tenant.Tenant{Profile: p.name, Upstream: be, Zone: "pek3a"})
	}
	dir, err := tenant.NewDirectory(tenants...)
	if err != nil {
		t.Fatal(err)
	}
	s := &tenantStack{emu: emu, tokA: auth.GenerateToken(), tokB: auth.GenerateToken()}
	hash := func(tok string) [32]byte {
		h, err := auth.ParseHash(auth.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	authn, err := auth.New(auth.Config{Tokens: []auth.Token{
		{Name: "a", Hash: hash(s.tokA), Profile: "team-a"},
		{Name: "b", Hash: hash(s.tokB), Profile: "team-b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.hub, err = watch.New(watch.Options{Tenants: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.hub.Close)
	srv, err := server.New(server.Config{
		Tenants:            dir,
		Watch:              s.hub,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{authn.UnaryInterceptor()},
		StreamInterceptors: []grpc.StreamServerInterceptor{authn.StreamInterceptor()},
		ServerOptions:      []grpc.ServerOption{grpc.InTapHandle(authn.TapHandle())},
		CheckCaller:        authn.CheckHTTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	lis := bufconn.Listen(1 << 20)
	s.grpcRead = new(atomic.Int64)
	go func() { _ = srv.Serve(countingListener{lis, s.grpcRead}) }()
	s.conn = testutil.DialBufconn(t, lis)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewUnstartedServer(h)
	s.restRead = new(atomic.Int64)
	rest.Listener = countingListener{rest.Listener, s.restRead}
	rest.Start()
	t.Cleanup(rest.Close)
	s.rest = rest.URL
	return s
}

// countingListener counts the bytes the server reads from the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// TestAuthEveryRPCNeedsAToken calls every method the server registers without a token (and with a
// wrong one): all but health and reflection answer UNAUTHENTICATED, and nothing reaches the upstream.
// An empty message is a valid encoding of every request type, so one request fits all methods.
func TestAuthEveryRPCNeedsAToken(t *testing.T) {
	s := newTenantStack(t)
	ctx := ctxT(t)
	n := 0
	for _, tok := range []string{"", auth.GenerateToken()} {
		callCtx := ctx
		if tok != "" {
			callCtx = bearer(ctx, tok)
		}
		for _, m := range allMethods(t, s) {
			if auth.Exempt(m.name) {
				continue
			}
			n++
			var err error
			if m.stream {
				var st grpc.ClientStream
				st, err = s.conn.NewStream(callCtx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: m.clientStream}, m.name)
				if err == nil {
					if err = st.SendMsg(&emptypb.Empty{}); err == nil {
						_ = st.CloseSend()
						err = st.RecvMsg(&emptypb.Empty{})
					}
				}
			} else {
				err = s.conn.Invoke(callCtx, m.name, &emptypb.Empty{}, &emptypb.Empty{})
			}
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s (token %v): %v, want UNAUTHENTICATED", m.name, tok != "", err)
			}
		}
	}
	if n < 2*300 {
		t.Fatalf("only %d calls checked", n)
	}
	if got := s.emu.Stats().TotalRequests; got != 0 {
		t.Fatalf("unauthenticated calls made %d upstream requests", got)
	}
}

type rpcMethod struct {
	name                 string
	stream, clientStream bool
}

// allMethods lists every method registered on the server, from server reflection (which needs no
// token).
func allMethods(t *testing.T, s *tenantStack) []rpcMethod {
	t.Helper()
	var out []rpcMethod
	refl, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := refl.Recv()
	if err != nil {
		t.Fatalf("reflection without a token: %v", err)
	}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc.GetName()}}); err != nil {
			t.Fatal(err)
		}
		fr, err := refl.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range fr.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(raw, fd); err != nil {
				t.Fatal(err)
			}
			for _, sd := range fd.GetService() {
				full := fd.GetPackage() + "." + sd.GetName()
				if full != svc.GetName() {
					continue
				}
				for _, md := range sd.GetMethod() {
					out = append(out, rpcMethod{name: "/" + full + "/" + md.GetName(), stream: md.GetServerStreaming() || md.GetClientStreaming(), clientStream: md.GetClientStreaming()})
				}
			}
		}
	}
	_ = refl.CloseSend()
	return out
}

// TestAuthHealthAndReflectionNeedNoToken: probes and grpcurl work without credentials.
func TestAuthHealthAndReflectionNeedNoToken(t *testing.T) {
	s := newTenantStack(t)
	ctx := ctxT(t)
	if st, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", st, err)
	}
	if ms := allMethods(t, s); len(ms) < 300 {
		t.Fatalf("reflection listed %d methods", len(ms))
	}
	resp, err := http.Get(s.rest + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	resp, err = http.Get(s.rest + "/v1/iaas/DescribeZones")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("REST without a token: %s", resp.Status)
	}
}

// TestAuthTenantsSeeOnlyTheirOwn: two tokens, two emulator accounts; resources, CallService and
// watches stay within the caller's account, and each profile polls with its own poller.
func TestAuthTenantsSeeOnlyTheirOwn(t *testing.T) {
	s := newTenantStack(t)
	ctx := ctxT(t)
	a, b := bearer(ctx, s.tokA), bearer(ctx, s.tokB)
	vols := iaasv1.NewVolumeServiceClient(s.conn)
	created, err := vols.CreateVolumes(a, &iaasv1.CreateVolumesRequest{Size: proto.Int64(10), VolumeName: proto.String("a-data")})
	if err != nil || len(created.GetVolumes()) != 1 {
		t.Fatalf("CreateVolumes(A): %v, %v", created, err)
	}
	id := created.GetVolumes()[0]
	for _, tc := range []struct {
		ctx  context.Context
		want int
	}{{a, 1}, {b, 0}} {
		got, err := vols.DescribeVolumes(tc.ctx, &iaasv1.DescribeVolumesRequest{Volumes: []string{id}})
		if err != nil || len(got.GetVolumeSet()) != tc.want {
			t.Fatalf("DescribeVolumes(%s) = %d volumes, %v; want %d", id, len(got.GetVolumeSet()), err, tc.want)
		}
	}
	// CallService too: B deleting A's volume is NOT_FOUND, and A's volume stays.
	params, _ := structpb.NewStruct(map[string]any{"volumes": []any{id}})
	if _, err := iaasv1.NewCallServiceClient(s.conn).Call(b, &iaasv1.CallRequest{Action: "DeleteVolumes", Params: params}); status.Code(err) != codes.NotFound {
		t.Fatalf("B deleting A's volume: %v", err)
	}
	// Over REST with the Authorization header.
	req, _ := http.NewRequest("GET", s.rest+"/v1/iaas/DescribeVolumes?volumes="+id, nil)
	req.Header.Set("Authorization", "Bearer "+s.tokB)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	if resp.StatusCode != 200 || strings.Contains(body, id) {
		t.Fatalf("REST B: %s %s", resp.Status, body)
	}

	// Watches: A follows its job; B's watch of the same job id is polled with B's keys and finds
	// nothing; the hub keeps one poller per profile.
	w := iaasv1.NewWatchServiceClient(s.conn)
	wa, err := w.WatchJobs(a, &iaasv1.WatchJobsRequest{JobIds: []string{created.GetJobId()}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := wa.Recv(); err != nil || ev.GetJob().GetJob().GetJobId() != created.GetJobId() {
		t.Fatalf("A's watch: %v, %v", ev, err)
	}
	wb, err := w.WatchJobs(b, &iaasv1.WatchJobsRequest{JobIds: []string{created.GetJobId()}})
	if err == nil {
		_, err = wb.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("B's watch of A's job: %v", err)
	}
	// B follows a job of its own: while both watches are open, each profile has its own poller.
	createdB, err := vols.CreateVolumes(b, &iaasv1.CreateVolumesRequest{Size: proto.Int64(10)})
	if err != nil {
		t.Fatal(err)
	}
	wb2, err := w.WatchJobs(b, &iaasv1.WatchJobsRequest{JobIds: []string{createdB.GetJobId()}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := wb2.Recv(); err != nil || ev.GetJob().GetJob().GetJobId() != createdB.GetJobId() {
		t.Fatalf("B's watch of its job: %v, %v", ev, err)
	}
	if got := s.hub.Stats().Pollers; got != 2 {
		t.Fatalf("pollers = %d, want one per profile (2)", got)
	}
}

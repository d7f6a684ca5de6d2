package server_test

// Benchmarks of the facade's overhead per call: the same action against the same emulator, called
// directly (signed HTTP GET, JSON decoded: what an SDK does) and through the facade over gRPC (bufconn)
// and REST (httptest, loopback TCP). Each iteration makes one direct call and one facade call, timed
// separately, so both see the same machine state and the ratio comes from one run. See
// docs/bench-upstream.md for the method and the figures.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/restjson"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// benchStack is a facade on an emulator with 100 instances, without a quota on either side, and a
// direct HTTP client for the same emulator. Coalescing is off: the parallel benchmark's callers make
// identical calls, and sharing them would hide the per-call cost being measured.
type benchStack struct {
	*upStack
	direct *http.Client
	signer signer.Signer
}

func newBenchStack(tb testing.TB) *benchStack {
	tb.Helper()
	s := newUpStack(tb, emulator.Options{Quota: -1}, benchBackend)
	run, err := iaasv1.NewInstanceServiceClient(s.conn).RunInstances(context.Background(), runRequest(100))
	if err != nil || len(run.GetInstances()) != 100 {
		tb.Fatalf("RunInstances: %v", err)
	}
	return &benchStack{
		upStack: s,
		direct:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		signer:  signer.Signer{Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}},
	}
}

// callDirect signs and sends one GET to the emulator and decodes the JSON, as an SDK would.
func (s *benchStack) callDirect(params map[string]string) error {
	signed, err := s.signer.Sign(http.MethodGet, "/iaas/", params)
	if err != nil {
		return err
	}
	resp, err := s.direct.Get(s.endpoint + "?" + signed)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out["ret_code"] != float64(0) {
		return fmt.Errorf("ret_code %v: %v", out["ret_code"], out["message"])
	}
	return nil
}

// benchBackend is the backend configuration of the benchmarks' facades.
func benchBackend(c *backend.Config) {
	c.Budget = budget.Unlimited()
	c.DisableCoalescing = true
}

// callREST sends one REST GET to the facade and decodes the JSON.
func (s *benchStack) callREST(path string) error { return getJSON(s.direct, s.rest+path) }

// getJSON sends one GET by client and decodes the JSON answer into a map.
func getJSON(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out map[string]any
	return json.NewDecoder(resp.Body).Decode(&out)
}

// benchCase is one action called the three ways.
type benchCase struct {
	name   string
	direct map[string]string // QingCloud parameters
	grpc   func(ctx context.Context, s *benchStack) error
	rest   string // REST path and query
}

var benchCases = []benchCase{
	{
		name:   "DescribeZones",
		direct: map[string]string{"action": "DescribeZones", "zone": "pek3a"},
		grpc: func(ctx context.Context, s *benchStack) error {
			_, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(ctx, &iaasv1.DescribeZonesRequest{})
			return err
		},
		rest: "/v1/iaas/DescribeZones",
	},
	{
		name:   "DescribeInstances100",
		direct: map[string]string{"action": "DescribeInstances", "zone": "pek3a", "limit": "100", "verbose": "1"},
		grpc: func(ctx context.Context, s *benchStack) error {
			resp, err := iaasv1.NewInstanceServiceClient(s.conn).DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{
				Limit: proto.Int32(100), Verbose: proto.Int32(1)})
			if err == nil && len(resp.GetInstanceSet()) != 100 {
				err = fmt.Errorf("%d instances", len(resp.GetInstanceSet()))
			}
			return err
		},
		rest: "/v1/iaas/DescribeInstances?limit=100&verbose=1",
	},
}

// pair times one direct call and one facade call per iteration and reports both and their ratio.
func pair(b *testing.B, direct, facade func() error) {
	for range 20 { // warm connections and caches
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		if err := facade(); err != nil {
			b.Fatal(err)
		}
	}
	var dDirect, dFacade time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := facade(); err != nil {
			b.Fatal(err)
		}
		dFacade += time.Since(t1)
		dDirect += t1.Sub(t0)
		n++
	}
	report(b, dDirect, dFacade, n)
}

func report(b *testing.B, dDirect, dFacade time.Duration, n int) {
	b.ReportMetric(float64(dDirect.Microseconds())/float64(n), "direct-µs/call")
	b.ReportMetric(float64(dFacade.Microseconds())/float64(n), "facade-µs/call")
	b.ReportMetric(float64(dFacade-dDirect)/float64(n)/1e3, "overhead-µs/call")
	b.ReportMetric(float64(dFacade)/float64(dDirect), "ratio")
}

// BenchmarkFacadeOverhead: one caller, one call at a time. ns/op and allocs are of the pair (direct
// + facade); the custom metrics split them.
func BenchmarkFacadeOverhead(b *testing.B) {
	s := newBenchStack(b)
	ctx := context.Background()
	for _, bc := range benchCases {
		b.Run(bc.name+"/gRPC", func(b *testing.B) {
			pair(b, func() error { return s.callDirect(bc.direct) }, func() error { return bc.grpc(ctx, s) })
		})
		b.Run(bc.name+"/REST", func(b *testing.B) {
			pair(b, func() error { return s.callDirect(bc.direct) }, func() error { return s.callREST(bc.rest) })
		})
	}
}

// BenchmarkFacadeOverheadParallel: GOMAXPROCS×4 concurrent callers, each alternating a direct call and a
// facade call; the ratio compares the mean latencies under that load.
func BenchmarkFacadeOverheadParallel(b *testing.B) {
	s := newBenchStack(b)
	ctx := context.Background()
	for _, bc := range benchCases {
		for _, via := range []string{"gRPC", "REST"} {
			facade := func() error { return bc.grpc(ctx, s) }
			if via == "REST" {
				facade = func() error { return s.callREST(bc.rest) }
			}
			b.Run(bc.name+"/"+via, func(b *testing.B) {
				var dDirect, dFacade, n atomic.Int64
				b.SetParallelism(4)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						t0 := time.Now()
						if err := s.callDirect(bc.direct); err != nil {
							b.Error(err)
							return
						}
						t1 := time.Now()
						if err := facade(); err != nil {
							b.Error(err)
							return
						}
						dFacade.Add(int64(time.Since(t1)))
						dDirect.Add(int64(t1.Sub(t0)))
						n.Add(1)
					}
				})
				if n.Load() > 0 {
					report(b, time.Duration(dDirect.Load()), time.Duration(dFacade.Load()), int(n.Load()))
				}
			})
		}
	}
}

// TestBenchPaths runs each benchmarked path once, so a broken benchmark fails `go test`.
func TestBenchPaths(t *testing.T) {
	s := newBenchStack(t)
	for _, bc := range benchCases {
		if err := s.callDirect(bc.direct); err != nil {
			t.Fatalf("%s direct: %v", bc.name, err)
		}
		if err := bc.grpc(context.Background(), s); err != nil {
			t.Fatalf("%s gRPC: %v", bc.name, err)
		}
		if err := s.callREST(bc.rest); err != nil {
			t.Fatalf("%s REST: %v", bc.name, err)
		}
	}
	// RunInstances, then each case once over gRPC and REST: every facade call is one upstream request.
	if st := s.rec.Total(); st.Attempts != 5 || st.RetCodes[0] != 5 {
		t.Fatalf("backend stats %+v", st)
	}
	// The floor calls each make one upstream call.
	before := s.requests("DescribeZones")
	viaGRPC, viaREST := floorCalls(t, s.direct, func() error { return s.callDirect(benchCases[0].direct) }, s.zones(t))
	viaBackend := floorGRPC(t, s.zones(t), s.backendZones)
	viaHandlers := s.bareZones(t)
	viaRESTBackend := floorREST(t, s.direct, s.backendZonesJSON)
	viaRESTHandlers := s.restWithoutChain(t, benchCases[0].rest)
	for name, call := range map[string]func() error{"gRPC": viaGRPC, "REST": viaREST, "gRPC+backend": viaBackend, "gRPC+handlers": viaHandlers,
		"REST+backend": viaRESTBackend, "REST+handlers": viaRESTHandlers} {
		if err := call(); err != nil {
			t.Fatalf("floor %s: %v", name, err)
		}
	}
	if got := s.requests("DescribeZones") - before; got != 6+2 { // and zones' two calls
		t.Fatalf("the floor calls made %d DescribeZones requests, want 8", got)
	}
}

// floorGRPC serves handle as the one method of a bare grpc-go server (bufconn, the server options of the
// facade that change speed: NumStreamWorkers) and returns a call of it, which decodes the answer into a
// new message of reply's type.
func floorGRPC(tb testing.TB, reply proto.Message, handle func(context.Context) (proto.Message, error)) func() error {
	tb.Helper()
	gs := grpc.NewServer(grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "floor.Floor",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(&emptypb.Empty{}); err != nil {
				return nil, err
			}
			return handle(ctx)
		}}},
	}, struct{}{})
	conn := testutil.ServeBufconn(tb, gs)
	return func() error {
		return conn.Invoke(context.Background(), "/floor.Floor/Call", &emptypb.Empty{}, reply.ProtoReflect().New().Interface())
	}
}

// floorCalls are the two floor calls of BenchmarkTransportFloor: a bare grpc-go handler (floorGRPC)
// and a bare net/http handler (floorREST), each making the direct call and answering what the
// facade answers for that call (answer, already made: the caller still receives and decodes it), with
// none of the facade's own work.
func floorCalls(tb testing.TB, client *http.Client, direct func() error, answer proto.Message) (viaGRPC, viaREST func() error) {
	tb.Helper()
	viaGRPC = floorGRPC(tb, answer, func(context.Context) (proto.Message, error) { return answer, direct() })
	answerJSON, err := restjson.Marshal(answer)
	if err != nil {
		tb.Fatal(err)
	}
	viaREST = floorREST(tb, client, func(context.Context) ([]byte, error) { return answerJSON, direct() })
	return viaGRPC, viaREST
}

// floorREST serves handle's JSON from a bare net/http handler (loopback TCP) and returns a call of it
// by client, which decodes the answer into a map as callREST does.
func floorREST(tb testing.TB, client *http.Client, handle func(context.Context) ([]byte, error)) func() error {
	tb.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := handle(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	tb.Cleanup(hs.Close)
	return func() error { return getJSON(client, hs.URL+"/") }
}

// backendZonesJSON is backendZones answered as the facade's REST JSON (restjson).
func (s *benchStack) backendZonesJSON(ctx context.Context) ([]byte, error) {
	m, err := s.backendZones(ctx)
	if err != nil {
		return nil, err
	}
	return restjson.Marshal(m)
}

// zones is the facade's answer to DescribeZones.
func (s *benchStack) zones(tb testing.TB) *iaasv1.DescribeZonesResponse {
	resp, err := iaasv1.NewZoneServiceClient(s.conn).DescribeZones(context.Background(), &iaasv1.DescribeZonesRequest{})
	if err != nil || len(resp.GetZoneSet()) == 0 {
		tb.Fatalf("DescribeZones: %v, %d zones", err, len(resp.GetZoneSet()))
	}
	return resp
}

// backendZones is the facade's upstream call of DescribeZones alone: the backend's InvokeMethod, as the
// facade's handler makes it, without the server around it.
func (s *benchStack) backendZones(ctx context.Context) (proto.Message, error) {
	return s.be.InvokeMethod(ctx, api.ByAction("DescribeZones"), &iaasv1.DescribeZonesRequest{})
}

// restWithoutChain is a second facade on the same emulator whose REST calls skip the interceptor
// chain (Server.DropRESTInterceptors), and a call of path on it.
func (s *benchStack) restWithoutChain(tb testing.TB, path string) func() error {
	tb.Helper()
	bare := newUpStackOn(tb, s.emu, benchBackend)
	bare.srv.DropRESTInterceptors()
	return func() error { return getJSON(s.direct, bare.rest+path) }
}

// bareZones serves the facade's action services without its interceptors (Server.BareGRPC, bufconn)
// and returns a DescribeZones call of it.
func (s *benchStack) bareZones(tb testing.TB) func() error {
	tb.Helper()
	gs := s.srv.BareGRPC()
	client := iaasv1.NewZoneServiceClient(testutil.ServeBufconn(tb, gs))
	return func() error {
		_, err := client.DescribeZones(context.Background(), &iaasv1.DescribeZonesRequest{})
		return err
	}
}

// BenchmarkTransportFloor measures what a facade whose own work cost nothing would pay (floorCalls),
// against the same direct call alone, in one run: its gRPC and REST ratios are the lowest
// BenchmarkFacadeOverhead's could be with grpc-go and net/http. The floor's handler makes the direct
// call, decoding into a map like the benchmark's direct caller; gRPC+backend makes the facade's own
// upstream call instead (the backend, which decodes into the typed answer), so that its difference to
// the facade is what the server adds around the backend (interceptors, handler). gRPC+handlers
// serves the facade's own services and handlers without the interceptor chain (Server.BareGRPC):
// its difference to the facade is what the chain costs. REST+backend makes the backend's call in the
// bare net/http handler and answers the facade's JSON of it (restjson): its difference to the facade
// is grpc-gateway, the in-process call, the HTTP middleware and the chain. REST+handlers is the whole
// REST path of a second facade on the same emulator but without the interceptor chain: its
// difference to the facade is what the chain costs over REST.
func BenchmarkTransportFloor(b *testing.B) {
	s := newBenchStack(b)
	bc := benchCases[0] // DescribeZones: a small call, where the fixed costs show
	direct := func() error { return s.callDirect(bc.direct) }
	answer := s.zones(b)
	viaGRPC, viaREST := floorCalls(b, s.direct, direct, answer)
	viaBackend := floorGRPC(b, answer, s.backendZones)
	viaHandlers := s.bareZones(b)
	viaRESTBackend := floorREST(b, s.direct, s.backendZonesJSON)
	viaRESTHandlers := s.restWithoutChain(b, bc.rest)
	b.Run(bc.name+"/gRPC", func(b *testing.B) { pair(b, direct, viaGRPC) })
	b.Run(bc.name+"/REST", func(b *testing.B) { pair(b, direct, viaREST) })
	b.Run(bc.name+"/gRPC+backend", func(b *testing.B) { pair(b, direct, viaBackend) })
	b.Run(bc.name+"/gRPC+handlers", func(b *testing.B) { pair(b, direct, viaHandlers) })
	b.Run(bc.name+"/REST+backend", func(b *testing.B) { pair(b, direct, viaRESTBackend) })
	b.Run(bc.name+"/REST+handlers", func(b *testing.B) { pair(b, direct, viaRESTHandlers) })
}

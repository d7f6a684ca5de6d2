package testutil

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// DialBufconn returns a plaintext gRPC client connection to the server listening on lis, closed
// when t ends.
func DialBufconn(t testing.TB, lis *bufconn.Listener) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("testutil: dial bufconn: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// GRPCServer is a gRPC server ServeBufconn can serve: *grpc.Server, or the project's server.
type GRPCServer interface {
	Serve(net.Listener) error
	Stop()
}

// ServeBufconn serves srv on a new in-memory listener, stops it when t ends, and returns a client
// connection to it (DialBufconn).
func ServeBufconn(t testing.TB, srv GRPCServer) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return DialBufconn(t, lis)
}

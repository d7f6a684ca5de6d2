package testutil

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"google.golang.org/grpc/test/bufconn"
)

// MemServer is an HTTP server on an in-memory listener (bufconn) rather than loopback TCP, so that a
// test can run it in a testing/synctest bubble: on the bubble's fake clock, delays, timeouts and
// backoffs keep their exact values whatever the machine's load (goroutines blocked on real network
// I/O would keep the bubble from advancing). Start it inside the bubble; it closes when the test ends.
type MemServer struct {
	// URL is the server's base URL, e.g. "http://memserver"; only a Transport of the server reaches it.
	URL string

	lis *bufconn.Listener
	srv *http.Server

	mu         sync.Mutex
	transports []*http.Transport
}

// NewMemServer serves h until the end of the test.
func NewMemServer(t testing.TB, h http.Handler) *MemServer {
	s := &MemServer{URL: "http://memserver", lis: bufconn.Listen(1 << 20), srv: &http.Server{Handler: h}}
	go func() { _ = s.srv.Serve(s.lis) }()
	t.Cleanup(s.Close)
	return s
}

// Transport returns a new transport whose connections reach the server, whatever the request's host.
func (s *MemServer) Transport() *http.Transport {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }}
	s.mu.Lock()
	s.transports = append(s.transports, tr)
	s.mu.Unlock()
	return tr
}

// Client returns a client over a new Transport.
func (s *MemServer) Client() *http.Client { return &http.Client{Transport: s.Transport()} }

// Close stops the server, closing its connections and the idle ones of its transports.
func (s *MemServer) Close() {
	_ = s.srv.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range s.transports {
		tr.CloseIdleConnections()
	}
}

package testutil

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
)

// MemServer is an HTTP server on an in-memory listener (net.Pipe connections) rather than loopback
// TCP, so that a test can run it in a testing/synctest bubble: on the bubble's fake clock, delays,
// timeouts and backoffs keep their exact values whatever the machine's load (goroutines blocked on
// real network I/O would keep the bubble from advancing). Start it inside the bubble; it closes when
// the test ends.
//
// It does not use grpc's bufconn: a bufconn read deadline cleared right after being set in the past
// (net/http does that after every request) can still fire, failing the connection's next read.
type MemServer struct {
	// URL is the server's base URL, "http://memserver"; only a Transport of the server reaches it.
	URL string

	lis *pipeListener
	srv *http.Server

	mu         sync.Mutex
	transports []*http.Transport
}

// NewMemServer serves h until the end of the test.
func NewMemServer(t testing.TB, h http.Handler) *MemServer {
	s := &MemServer{URL: "http://memserver", lis: newPipeListener(), srv: &http.Server{Handler: h}}
	go func() { _ = s.srv.Serve(s.lis) }()
	t.Cleanup(s.Close)
	return s
}

// Transport returns a new transport whose connections reach the server, whatever the request's host.
func (s *MemServer) Transport() *http.Transport {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return s.lis.dial(ctx) }}
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

// pipeListener is a net.Listener whose connections are the server ends of net.Pipe pairs.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// dial returns the client end of a new connection, once the server has accepted it.
func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-ctx.Done():
		err := ctx.Err()
		client.Close()
		server.Close()
		return nil, err
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "memserver" }

package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Limits bounds what one connection may hold on the gRPC and REST listeners, so that connections
// that send slowly, or not at all, are closed rather than held. The zero value of a field means its
// default (DefaultLimits); docs/security.md lists them with what a caller sees at each.
type Limits struct {
	// HeaderTimeout bounds the time from accepting a connection (REST: from the start of each request)
	// to having its headers: REST ReadHeaderTimeout; gRPC ConnectionTimeout, which covers the TLS
	// handshake and the HTTP/2 preface. A silent TCP connection is closed after it.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time to read a REST request's body; a body still arriving then is refused
	// with 400 and the connection is closed.
	BodyTimeout time.Duration
	// IdleTimeout closes connections with no request or call in progress for that long (REST
	// IdleTimeout, gRPC MaxConnectionIdle: GOAWAY, then close at most 5 s later).
	IdleTimeout time.Duration
	// KeepaliveTime and KeepaliveTimeout: a gRPC connection silent for KeepaliveTime is pinged, and
	// closed when the ping is not answered within KeepaliveTimeout (a peer gone with calls open).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// MinPingInterval is the shortest interval between a client's keepalive pings: a client that
	// pings more often is sent GOAWAY ("too_many_pings").
	MinPingInterval time.Duration
	// MaxHeaderBytes bounds the headers of a request or call: REST MaxHeaderBytes (request line
	// included), gRPC MaxHeaderListSize (decoded size, so HPACK cannot amplify past it).
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the calls (HTTP/2 streams) open at once on one connection.
	MaxConcurrentStreams uint32
}

// DefaultLimits are the limits of a server whose configuration sets none.
func DefaultLimits() Limits {
	return Limits{
		HeaderTimeout:        10 * time.Second,
		BodyTimeout:          30 * time.Second,
		IdleTimeout:          2 * time.Minute,
		KeepaliveTime:        time.Minute,
		KeepaliveTimeout:     20 * time.Second,
		MinPingInterval:      10 * time.Second,
		MaxHeaderBytes:       64 << 10,
		MaxConcurrentStreams: 256,
	}
}

// withDefaults fills the unset fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.HeaderTimeout, d.HeaderTimeout)
	set(&l.BodyTimeout, d.BodyTimeout)
	set(&l.IdleTimeout, d.IdleTimeout)
	set(&l.KeepaliveTime, d.KeepaliveTime)
	set(&l.KeepaliveTimeout, d.KeepaliveTimeout)
	set(&l.MinPingInterval, d.MinPingInterval)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	return l
}

// grpcOptions are the gRPC server options that enforce l.
func (l Limits) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(l.HeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.IdleTimeout,
			Time:              l.KeepaliveTime,
			Timeout:           l.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.MinPingInterval, PermitWithoutStream: true}),
		grpc.MaxHeaderListSize(uint32(l.MaxHeaderBytes)),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
	}
}

// MaxHealthMessageBytes bounds the messages of the health-only listener (ServeHealth), which anyone
// may reach: a health check request is a service name.
const MaxHealthMessageBytes = 4 << 10

// ConfigureHTTP sets the timeouts and header limits of the server's Limits on hs, the REST listener's
// server (the body timeout is applied by HTTPHandler).
func (s *Server) ConfigureHTTP(hs *http.Server) {
	l := s.limits
	hs.ReadHeaderTimeout = l.HeaderTimeout
	hs.IdleTimeout = l.IdleTimeout
	hs.MaxHeaderBytes = l.MaxHeaderBytes
	if hs.HTTP2 == nil {
		hs.HTTP2 = &http.HTTP2Config{}
	}
	hs.HTTP2.MaxConcurrentStreams = int(l.MaxConcurrentStreams)
	hs.HTTP2.SendPingTimeout = l.KeepaliveTime
	hs.HTTP2.PingTimeout = l.KeepaliveTimeout
}

// errBodyTimeout is the read error of a body that did not arrive within Limits.BodyTimeout.
var errBodyTimeout = errors.New("the request body did not arrive in time")

// limitBodyTime gives a request BodyTimeout to deliver its body: the connection's read deadline is
// set when the handler starts and lifted once the body has been read to its end, so that a response
// that streams for long (watch) is not cut. A body still arriving at the deadline makes the read fail
// (grpc-gateway answers 400 naming the timeout) and net/http closes the connection.
func (s *Server) limitBodyTime(next http.Handler) http.Handler {
	d := s.limits.BodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			next.ServeHTTP(w, r) // a writer without deadlines (tests' recorders)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: d}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline at the end of the body and names a timeout.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, fmt.Errorf("%w: send it within %v", errBodyTimeout, b.timeout)
	}
	return n, err
}

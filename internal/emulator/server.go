package emulator

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is an Emulator listening on a TCP address.
type Server struct {
	e    *Emulator
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	once sync.Once
	err  error
}

// Listen starts an Emulator for opts on addr (e.g. "127.0.0.1:0") and serves it until Close.
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e := New(opts)
	s := &Server{
		e:  e,
		ln: ln,
		srv: &http.Server{
			Handler:           e,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Endpoint returns the API endpoint, e.g. "http://127.0.0.1:43121/iaas/".
func (s *Server) Endpoint() string { return "http://" + s.ln.Addr().String() + "/iaas/" }

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Emulator returns the served Emulator.
func (s *Server) Emulator() *Emulator { return s.e }

// Close stops serving, closes open connections and waits for the serve loop to end.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.srv.Close()
		<-s.done
		if err == nil {
			err = s.err
		}
	})
	return err
}

package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
)

// TestStartKillRestart checks that a started server answers, that Kill stops it and loses its data,
// and that Restart brings it back, empty, on the same address.
func TestStartKillRestart(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on a started server: %v", err)
	}
	s.Kill()
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	err := c.Ping(short).Err()
	cancel2()
	if err == nil {
		t.Fatal("PING answered after Kill")
	}
	addr := s.Addr
	s.Restart()
	if s.Addr != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after a restart = %d, %v; want 0 (no persistence)", n, err)
	}
}

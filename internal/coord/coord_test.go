package coord_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/coord"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/redistest"
	tu "github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// waitFor polls cond (an observable state) until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func open(t *testing.T, cfg coord.Config) *coord.Coord {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 200 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := coord.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicasShareTheLimit starts three replicas: each sees three, so each falls back to a third;
// when one leaves, the others see two. A configured share wins.
func TestReplicasShareTheLimit(t *testing.T) {
	srv := redistest.Start(t)
	var cs []*coord.Coord
	for range 3 {
		c := open(t, coord.Config{URL: srv.URL()})
		cs = append(cs, c)
	}
	defer cs[0].Close()
	defer cs[1].Close()
	for _, c := range cs {
		waitFor(t, "three replicas, so a share of 1/3", func() bool { return c.Replicas() == 3 && c.Share() == 1.0/3 })
	}
	if cs[0].ID() == cs[1].ID() {
		t.Fatalf("two replicas have the id %s", cs[0].ID())
	}
	if err := cs[2].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two replicas after one closed", func() bool { return cs[0].Replicas() == 2 })
	fixed := open(t, coord.Config{URL: srv.URL(), FallbackShare: 0.5})
	defer fixed.Close()
	if s := fixed.Share(); s != 0.5 {
		t.Fatalf("configured share = %v, want 0.5", s)
	}
}

// TestHeartbeatFallsBackAndRejoins kills Redis under a replica: the replica set component falls back
// (logged once, counted, OnChange called), and rejoins when Redis returns; it keeps its last count.
func TestHeartbeatFallsBackAndRejoins(t *testing.T) {
	srv := redistest.Start(t)
	var logs tu.SyncBuffer
	var mu sync.Mutex
	var changes []bool
	c := open(t, coord.Config{URL: srv.URL(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnChange: func(s coord.Status) {
			mu.Lock()
			changes = append(changes, s.Fallback())
			mu.Unlock()
		}})
	defer c.Close()
	status := func() coord.ComponentStatus { return c.Status().Components["replicas"] }
	waitFor(t, "a first heartbeat", func() bool { _, ok := c.Status().Components["replicas"]; return ok })
	srv.Kill()
	waitFor(t, "the fallback", func() bool { return status().Fallback })
	want := `
# HELP qingcloud_redis_fallback 1 while the component cannot reach Redis and works alone (local budget share, local polling), else 0.
# TYPE qingcloud_redis_fallback gauge
qingcloud_redis_fallback{component="replicas"} 1
# HELP qingcloud_redis_fallbacks_total Times the component fell back because Redis was unreachable.
# TYPE qingcloud_redis_fallbacks_total counter
qingcloud_redis_fallbacks_total{component="replicas"} 1
`
	if err := testutil.CollectAndCompare(c.Collector(), strings.NewReader(want), coord.MetricFallback, coord.MetricFallbacks); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	waitFor(t, "the rejoin", func() bool { return !status().Fallback })
	if st := status(); st.Fallbacks != 1 || st.Error == "" {
		t.Fatalf("status after one outage: %+v; want 1 fallback and its error", st)
	}
	out := logs.String()
	if strings.Count(out, "Redis unreachable") != 1 || strings.Count(out, "Redis reachable again") != 1 {
		t.Fatalf("logs should tell each change once:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Fatalf("OnChange saw fallback states %v; want [true false]", changes)
	}
}

// TestComponentCountsMembers checks that a component is in fallback while any member is.
func TestComponentCountsMembers(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, coord.Config{URL: srv.URL()})
	defer c.Close()
	k := c.Component("budget")
	k.Down(errors.New("dial tcp: connection refused"))
	k.Down(errors.New("dial tcp: connection refused"))
	k.Up()
	if !c.Status().Components["budget"].Fallback {
		t.Fatal("the component left the fallback while a member is still down")
	}
	k.Up()
	k.Up() // an extra Up is ignored
	if st := c.Status().Components["budget"]; st.Fallback || st.Fallbacks != 1 {
		t.Fatalf("status %+v; want out of fallback after 1", st)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := coord.Open(coord.Config{URL: "http://x"}); err == nil {
		t.Fatal("Open accepted an http URL")
	}
	if _, err := coord.Open(coord.Config{URL: "redis://x", FallbackShare: 1.5}); err == nil || !strings.Contains(err.Error(), "share") {
		t.Fatalf("Open with share 1.5 = %v", err)
	}
}

package tenant_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

type fakeUpstream struct{ tenant.Upstream }

func TestDirectory(t *testing.T) {
	up := fakeUpstream{}
	d, err := tenant.NewDirectory(tenant.Tenant{Profile: "b", Upstream: up, Zone: "gd2a"}, tenant.Tenant{Profile: "a", Upstream: up, Zone: "pek3a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Profiles(), ","); got != "a,b" || !d.Has("a") || d.Has("c") {
		t.Fatalf("Profiles = %s", got)
	}
	if tn, err := d.Lookup(auth.NewContext(context.Background(), auth.Identity{Profile: "b"})); err != nil || tn.Zone != "gd2a" || tn.Profile != "b" {
		t.Fatalf("Lookup(b) = %+v, %v", tn, err)
	}
	if _, err := d.Lookup(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Lookup without identity = %v", err)
	}
	if _, err := d.Lookup(auth.NewContext(context.Background(), auth.Identity{Profile: "c"})); status.Code(err) != codes.Internal {
		t.Fatalf("Lookup(c) = %v", err)
	}
	if _, err := tenant.NewDirectory(tenant.Tenant{Profile: "a", Upstream: up}, tenant.Tenant{Profile: "a", Upstream: up}); err == nil {
		t.Fatal("duplicate profile accepted")
	}
	if _, err := tenant.NewDirectory(tenant.Tenant{Profile: "a"}); err == nil {
		t.Fatal("tenant without upstream accepted")
	}
}

func TestSingle(t *testing.T) {
	up := fakeUpstream{}
	tn, err := tenant.Single{Profile: "p", Upstream: up, Zone: "pek3a"}.Lookup(context.Background())
	if err != nil || tn.Profile != "p" || tn.Upstream != up || tn.Zone != "pek3a" {
		t.Fatalf("Lookup = %+v, %v", tn, err)
	}
}

// load reads a configuration from a file with yaml and the given flags.
func load(t *testing.T, yaml string, args ...string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(append([]string{"-config", path}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func lookup(t *testing.T, s *tenant.Set, profile string) tenant.Tenant {
	t.Helper()
	tn, err := s.Lookup(auth.NewContext(context.Background(), auth.Identity{Profile: profile}))
	if err != nil {
		t.Fatalf("Lookup(%s): %v", profile, err)
	}
	return tn
}

// TestBuildKeys: every profile calls with its own keys and default zone, and profiles that share an
// access key share its quota budget.
func TestBuildKeys(t *testing.T) {
	emu := httptest.NewServer(emulator.New(emulator.Options{Keys: map[string]string{"KEYA": "secret-a", "KEYB": "secret-b"}, Quota: -1}))
	t.Cleanup(emu.Close)
	cfg := load(t, `
zone: pek3a
qingcloud_grpc:
  profiles:
    a1: {qy_access_key_id: KEYA, qy_secret_access_key: secret-a, zone: gd2}
    a2: {qy_access_key_id: KEYA, qy_secret_access_key: secret-a}
    b: {qy_access_key_id: KEYB, qy_secret_access_key: secret-b}
  tokens:
    - {name: a, sha256: `+auth.HashToken(auth.GenerateToken())+`, profile: a1}
`, "-endpoint", emu.URL+"/iaas/")
	s, err := tenant.Build(cfg, tenant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.Emulator() != nil {
		t.Fatal("keys are configured, yet the built-in emulator was started")
	}
	if got, want := strings.Join(s.Profiles(), ","), "a1,a2,b"; got != want {
		t.Fatalf("profiles = %s, want %s", got, want)
	}
	if z := lookup(t, s, "a1").Zone; z != "gd2" {
		t.Errorf("a1 zone = %q, want gd2", z)
	}
	if z := lookup(t, s, "b").Zone; z != "pek3a" {
		t.Errorf("b zone = %q, want pek3a", z)
	}
	for _, p := range []string{"a1", "b"} {
		if _, err := lookup(t, s, p).Upstream.Call(context.Background(), "DescribeZones", nil, false); err != nil {
			t.Fatalf("%s: DescribeZones: %v", p, err)
		}
	}
	used := map[string]int{}
	for _, b := range s.Backends() {
		used[b.Profile] = b.Budget.Stats().Used
	}
	// a1 and a2 share KEYA's budget (one call each seen by both), b has its own.
	if used["a1"] != 1 || used["a2"] != 1 || used["b"] != 1 {
		t.Fatalf("budget use by profile = %v, want a1=1 a2=1 (KEYA) b=1", used)
	}
	if _, err := lookup(t, s, "a2").Upstream.Call(context.Background(), "DescribeZones", nil, false); err != nil {
		t.Fatal(err)
	}
	for _, b := range s.Backends() {
		used[b.Profile] = b.Budget.Stats().Used
	}
	if used["a1"] != 2 || used["a2"] != 2 || used["b"] != 1 {
		t.Fatalf("budget use by profile = %v, want a1=2 a2=2 (KEYA) b=1", used)
	}
}

// TestBuildEmulator: without keys, Build starts the built-in emulator with one isolated account per
// profile, and Close stops it.
func TestBuildEmulator(t *testing.T) {
	cfg := load(t, `
zone: pek3a
qingcloud_grpc:
  profiles:
    team-a: {zone: gd2}
  tokens:
    - {name: a, sha256: `+auth.HashToken(auth.GenerateToken())+`, profile: team-a}
`, "-emulator-addr", "127.0.0.1:0")
	s, err := tenant.Build(cfg, tenant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emu := s.Emulator()
	if emu == nil {
		t.Fatal("no emulator started")
	}
	ctx := context.Background()
	a, def := lookup(t, s, "team-a"), lookup(t, s, config.DefaultProfile)
	if a.Zone != "gd2" || def.Zone != "pek3a" {
		t.Fatalf("zones: team-a %q, default %q", a.Zone, def.Zone)
	}
	raw, err := a.Upstream.Call(ctx, "RunInstances", map[string]string{"zone": "gd2", "image_id": "centos7x64d", "instance_type": "c1m1",
		"login_mode": "passwd", "login_passwd": "Passw0rd1", "vxnets.1": "vxnet-0"}, false)
	if err != nil {
		t.Fatalf("team-a RunInstances: %v", err)
	}
	var run struct{ Instances []string }
	if err := json.Unmarshal(raw, &run); err != nil || len(run.Instances) != 1 {
		t.Fatalf("RunInstances = %s, %v", raw, err)
	}
	// The default profile's account (the documented example keys) does not see team-a's instance.
	for _, tc := range []struct {
		tn   tenant.Tenant
		want int
	}{{a, 1}, {def, 0}} {
		raw, err := tc.tn.Upstream.Call(ctx, "DescribeInstances", map[string]string{"zone": "gd2", "instances.1": run.Instances[0]}, false)
		var got struct {
			TotalCount int `json:"total_count"`
		}
		if err != nil || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("%s DescribeInstances: %s, %v", tc.tn.Profile, raw, err)
		}
		if got.TotalCount != tc.want {
			t.Errorf("%s sees %d of team-a's instances, want %d", tc.tn.Profile, got.TotalCount, tc.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upstream.Call(ctx, "DescribeZones", map[string]string{"zone": "gd2"}, false); status.Code(err) != codes.Unavailable {
		t.Fatalf("a call after Close = %v, want UNAVAILABLE (the emulator stopped)", err)
	}
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
)

func TestHashTokenCommand(t *testing.T) {
	token := auth.GenerateToken()
	var out bytes.Buffer
	if err := hashToken(nil, strings.NewReader(token+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != auth.HashToken(token) {
		t.Fatalf("hash-token printed %q", got)
	}
	if strings.Contains(out.String(), token) {
		t.Fatal("hash-token echoed the token")
	}

	out.Reset()
	if err := hashToken([]string{"-generate"}, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	var gen, sum string
	if _, err := fmt.Sscanf(out.String(), "token: %s\nsha256: %s\n", &gen, &sum); err != nil || auth.HashToken(gen) != sum || auth.CheckToken(gen) != nil {
		t.Fatalf("hash-token -generate printed %q (%v)", out.String(), err)
	}

	for name, tc := range map[string]struct {
		args  []string
		stdin string
		want  string
	}{
		"empty stdin":       {nil, "\n", "no token on stdin"},
		"short token":       {nil, "hunter2\n", "at least 32"},
		"two lines":         {nil, token + "\n" + token + "\n", "more than one line"},
		"token as an arg":   {[]string{token}, "", "read from stdin, not from arguments"},
		"token like a flag": {[]string{"-" + token}, "", "read from stdin, not from arguments"},
		"space in a token":  {nil, token + " x\n", "not a letter"},
	} {
		var out bytes.Buffer
		err := hashToken(tc.args, strings.NewReader(tc.stdin), &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error holds the token", name)
		}
		if strings.Contains(out.String(), token) {
			t.Errorf("%s: the output holds the token: %q", name, out.String())
		}
	}
}

// TestRunEmulatorProfiles: with no QingCloud keys at all, each profile gets its own emulator account,
// so tenants are isolated locally too.
func TestRunEmulatorProfiles(t *testing.T) {
	tokA, tokB := auth.GenerateToken(), auth.GenerateToken()
	f := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf("qingcloud_grpc:\n  profiles:\n    team-a: {}\n    team-b: {zone: sh1a}\n  tokens:\n    - {sha256: %s, profile: team-a}\n    - {sha256: %s, profile: team-b}\n",
		auth.HashToken(tokA), auth.HashToken(tokB))
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}, map[string]string{"QINGCLOUD_CONFIG": f})
	ctx := ctxT(t)
	inst := iaasv1.NewInstanceServiceClient(dial(t, r.addrs.GRPC, nil))
	if _, err := inst.DescribeInstances(ctx, &iaasv1.DescribeInstancesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	run, err := inst.RunInstances(withToken(ctx, tokA), runReq)
	if err != nil {
		t.Fatal(err)
	}
	a, err := inst.DescribeInstances(withToken(ctx, tokA), &iaasv1.DescribeInstancesRequest{})
	if err != nil || !contains(instanceIDs(a), run.GetInstances()[0]) {
		t.Fatalf("A: %v, %v", instanceIDs(a), err)
	}
	// B's default zone is sh1a; ask for A's zone explicitly.
	b, err := inst.DescribeInstances(withToken(ctx, tokB), &iaasv1.DescribeInstancesRequest{Zone: a.GetInstanceSet()[0].ZoneId})
	if err != nil || len(b.GetInstanceSet()) != 0 {
		t.Fatalf("B sees %v, %v", instanceIDs(b), err)
	}
	if !strings.Contains(r.logs.String(), "profiles=default,team-a,team-b") {
		t.Fatalf("logs:\n%s", r.logs)
	}
}

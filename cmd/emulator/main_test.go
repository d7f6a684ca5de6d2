package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:7780" || c.opts.Keys != nil || c.opts.JobPending != emulator.DefaultJobPending ||
		c.opts.Quota != emulator.DefaultQuota || c.opts.TimeWindow != emulator.DefaultTimeWindow {
		t.Fatalf("defaults %+v", c)
	}
	c, err = parseFlags([]string{"-addr", "127.0.0.1:0", "-keys", "A:sa, B:sb", "-job-pending", "5ms", "-job-working", "10ms",
		"-quota", "-1", "-time-window", "-1s", "-fault-5100", "0.25", "-fault-reset", "1", "-latency", "30ms",
		"-fail-actions", "RunInstances, StopInstances", "-done-with-failure", "CreateVolumes", "-fault-actions", "RunInstances"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := c.opts.Faults
	if c.opts.Keys["A"] != "sa" || c.opts.Keys["B"] != "sb" || c.opts.JobPending != 5*time.Millisecond ||
		c.opts.Quota != -1 || c.opts.TimeWindow != -time.Second || f.RetCode5100 != 0.25 || f.ConnReset != 1 ||
		f.Latency != 30*time.Millisecond || strings.Join(f.FailActions, ",") != "RunInstances,StopInstances" ||
		f.DoneWithFailure[0] != "CreateVolumes" || f.Actions[0] != "RunInstances" {
		t.Fatalf("parsed %+v", c.opts)
	}
	for _, bad := range [][]string{
		{"-fault-502", "2"}, {"-keys", "nosecret"}, {"-keys", ","}, {"extra"}, {"-job-pending", "soon"},
		{"-addr", "7780"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestBanner(t *testing.T) {
	var b strings.Builder
	printBanner(&b, "http://127.0.0.1:7780/iaas/", nil)
	for _, want := range []string{"http://127.0.0.1:7780/iaas/", emulator.DefaultAccessKeyID, emulator.DefaultSecretAccessKey,
		"http://127.0.0.1:7780/_emulator/faults"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printBanner(&b, "http://127.0.0.1:1/iaas/", map[string]string{"K1": "topsecret"})
	if !strings.Contains(b.String(), "K1") || strings.Contains(b.String(), "topsecret") {
		t.Errorf("custom keys banner:\n%s", b.String())
	}
}

// TestLoopbackOnly: an address beyond loopback is refused with an error naming -allow-remote,
// unless that flag is given.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7780", "127.1.2.3:0", "[::1]:7780", "localhost:7780", "[::ffff:127.0.0.1]:1"} {
		if _, err := parseFlags([]string{"-addr", addr}, io.Discard); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:7780", ":7780", "[::]:7780", "10.0.0.5:7780", "example.com:7780"} {
		_, err := parseFlags([]string{"-addr", addr}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-allow-remote") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%s: err %v, want a refusal naming -allow-remote", addr, err)
		}
		c, err := parseFlags([]string{"-addr", addr, "-allow-remote"}, io.Discard)
		if err != nil || !c.allowRemote {
			t.Errorf("%s -allow-remote: %v", addr, err)
		}
	}
}

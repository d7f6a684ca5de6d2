package emulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// run starts instances and returns their ids and the job id.
func (f *fixture) run(kv ...string) ([]string, string) {
	f.t.Helper()
	out := f.c.ok("RunInstances", append([]string{"image_id", "centos7x64d", "instance_type", "c1m1",
		"login_mode", "passwd", "login_passwd", "Passw0rd", "vxnets.1", "vxnet-0"}, kv...)...)
	return strs(out["instances"]), out["job_id"].(string)
}

// running starts one instance and waits for it.
func (f *fixture) running(kv ...string) string {
	f.t.Helper()
	ids, _ := f.run(kv...)
	f.finish()
	return ids[0]
}

func (f *fixture) instance(id string, kv ...string) map[string]any {
	f.t.Helper()
	return f.c.one("DescribeInstances", "instance_set", "instances", id, kv...)
}

// expectState checks status and transition_status of a described resource.
func expectState(t *testing.T, what string, got map[string]any, status, transition string) {
	t.Helper()
	if got["status"] != status || got["transition_status"] != transition {
		t.Fatalf("%s: status %v/%v, want %s/%s", what, got["status"], got["transition_status"], status, transition)
	}
}

// TestInstanceLifecycle drives one instance through every state of §7.5 with a fake clock.
func TestInstanceLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	ids, job := f.run("count", "2", "instance_name", "web")
	if len(ids) != 2 {
		t.Fatalf("instances %v", ids)
	}
	id := ids[0]

	// pending/creating while the job is pending and working; no private IP yet.
	inst := f.instance(id)
	expectState(t, "created", inst, "pending", "creating")
	if f.jobStatus(job) != "pending" {
		t.Fatal("job not pending")
	}
	if vx := inst["vxnets"].([]any); len(vx) != 1 || vx[0].(map[string]any)["private_ip"] != "" {
		t.Fatalf("vxnets while creating %v", inst["vxnets"])
	}
	msg := f.c.fail(1400, "StopInstances", "instances.1", id)
	if !strings.Contains(msg, "is [creating], please try later") || !strings.HasPrefix(msg, "PermissionDenied, ") {
		t.Fatalf("stop while creating: %q", msg)
	}
	f.clk.Advance(testPending)
	if f.jobStatus(job) != "working" {
		t.Fatal("job not working")
	}
	expectState(t, "working", f.instance(id), "pending", "creating")
	f.clk.Advance(testWorking)
	if f.jobStatus(job) != "successful" {
		t.Fatal("job not successful")
	}
	inst = f.instance(id)
	expectState(t, "after RunInstances", inst, "running", "")
	nic := inst["vxnets"].([]any)[0].(map[string]any)
	if nic["vxnet_id"] != "vxnet-0" || nic["private_ip"] == "" || nic["nic_id"] == "" {
		t.Fatalf("nic %v", nic)
	}
	if inst["instance_name"] != "web" || inst["image"].(map[string]any)["image_id"] != "centos7x64d" ||
		num(inst["vcpus_current"]) != 1 || num(inst["memory_current"]) != 1024 || inst["zone_id"] != "pek3a" {
		t.Fatalf("instance %v", inst)
	}
	if inst["security_group"].(map[string]any)["is_default"] != float64(1) {
		t.Fatalf("security group %v", inst["security_group"])
	}

	steps := []struct {
		action             string
		kv                 []string
		during, transition string
		after              string
	}{
		{"StopInstances", []string{"force", "1"}, "running", "stopping", "stopped"},
		{"ResizeInstances", []string{"cpu", "2", "memory", "4096"}, "stopped", "", "stopped"},
		{"StartInstances", nil, "stopped", "starting", "running"},
		{"RestartInstances", nil, "running", "restarting", "running"},
		{"ResetInstances", []string{"login_mode", "passwd", "login_passwd", "Passw0rd2"}, "running", "resetting", "running"},
		{"TerminateInstances", nil, "running", "terminating", "terminated"},
		{"CeaseInstances", nil, "terminated", "", "ceased"},
	}
	for _, s := range steps {
		out := f.c.ok(s.action, append([]string{"instances.1", id}, s.kv...)...)
		expectState(t, s.action+" running", f.instance(id), s.during, s.transition)
		f.finish()
		if st := f.jobStatus(out["job_id"].(string)); st != "successful" {
			t.Fatalf("%s job %s", s.action, st)
		}
		expectState(t, s.action+" done", f.instance(id), s.after, "")
		if s.action == "ResizeInstances" {
			if inst := f.instance(id); num(inst["vcpus_current"]) != 2 || num(inst["memory_current"]) != 4096 ||
				inst["instance_type"] != "c2m4" {
				t.Fatalf("after resize %v", inst)
			}
		}
	}
	if vx := f.instance(id)["vxnets"].([]any); len(vx) != 0 {
		t.Fatalf("terminated instance still has vxnets %v", vx)
	}

	// Deleted resources stay visible for Retention, then disappear.
	f.clk.Advance(emulator.DefaultRetention - time.Minute)
	f.instance(id)
	f.clk.Advance(2 * time.Minute)
	if out := f.c.ok("DescribeInstances", "instances.1", id); num(out["total_count"]) != 0 {
		t.Fatalf("instance visible after retention: %v", out)
	}
	f.c.fail(2100, "StartInstances", "instances.1", id)
	if st := f.emu.Stats().Keys[emulator.DefaultAccessKeyID].Resources["instance"]; st != 1 {
		t.Fatalf("live instances %d, want 1", st)
	}
}

// TestInstanceWrongState checks the 1400 messages that name the state.
func TestInstanceWrongState(t *testing.T) {
	f := newFixture(t, nil)
	id := f.running()
	tests := []struct {
		action string
		kv     []string
		want   string
	}{
		{"StartInstances", nil, "instance [" + id + "] is not stopped, can not be started"},
		{"ResizeInstances", []string{"instance_type", "c2m2"}, "is not stopped, can not be resized"},
		{"CeaseInstances", nil, "is not terminated, can not be ceased"},
	}
	for _, tc := range tests {
		msg := f.c.fail(1400, tc.action, append([]string{"instances.1", id}, tc.kv...)...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.action, msg, tc.want)
		}
	}
	f.c.ok("StopInstances", "instances.1", id)
	f.finish()
	msg := f.c.fail(1400, "StopInstances", "instances.1", id)
	if msg != "PermissionDenied, instance ["+id+"] is not running, can not be stopped" {
		t.Fatalf("stop stopped: %q", msg)
	}
	f.c.ok("StartInstances", "instances.1", id)
	if msg := f.c.fail(1400, "TerminateInstances", "instances.1", id); !strings.Contains(msg, "is [starting], please try later") {
		t.Fatalf("terminate while starting: %q", msg)
	}
	// All-or-nothing: one bad instance refuses the whole request.
	other := f.running() // also lets id finish starting
	f.c.ok("StopInstances", "instances.1", id)
	f.finish()
	f.c.fail(1400, "StopInstances", "instances.1", other, "instances.2", id)
	expectState(t, "other", f.instance(other), "running", "")
}

// TestRunInstancesParams covers sizing, login modes, vxnets and invalid parameters.
func TestRunInstancesParams(t *testing.T) {
	f := newFixture(t, nil)
	base := []string{"image_id", "centos7x64d", "login_mode", "passwd", "login_passwd", "Passw0rd"}
	ok := func(kv ...string) map[string]any {
		out := f.c.ok("RunInstances", append(append([]string{}, base...), kv...)...)
		f.finish()
		return f.instance(strs(out["instances"])[0])
	}
	if inst := ok("cpu", "4", "memory", "8192", "instance_type", "c1m1"); num(inst["vcpus_current"]) != 4 ||
		num(inst["memory_current"]) != 8192 {
		t.Fatalf("cpu/memory win over instance_type: %v", inst)
	}
	if inst := ok("instance_type", "s1.large.r2"); num(inst["vcpus_current"]) != 2 || num(inst["memory_current"]) != 4096 {
		t.Fatalf("s1.large.r2: %v", inst)
	}
	if inst := ok("instance_type", "c1m1"); len(inst["vxnets"].([]any)) != 0 {
		t.Fatalf("instance without vxnets: %v", inst["vxnets"])
	}
	kp := f.c.ok("CreateKeyPair", "keypair_name", "k")["keypair_id"].(string)
	inst := f.instance(strs(f.c.ok("RunInstances", "image_id", "centos7x64d", "instance_type", "c1m1", "login_mode",
		"keypair", "login_keypair", kp)["instances"])[0], "verbose", "1")
	if got := strs(inst["keypair_ids"]); len(got) != 1 || got[0] != kp {
		t.Fatalf("keypair_ids %v", inst["keypair_ids"])
	}

	bad := []struct {
		code int
		kv   []string
	}{
		{1100, []string{"image_id", "centos7x64d", "login_mode", "passwd", "login_passwd", "x"}}, // no type
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c9m9", "login_mode", "passwd", "login_passwd", "x"}},
		{1100, []string{"image_id", "centos7x64d", "cpu", "3", "memory", "1024", "login_mode", "passwd", "login_passwd", "x"}},
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "telepathy"}},
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd"}},
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "keypair"}},
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "x", "count", "0"}},
		{1100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "x", "count", "two"}},
		{2100, []string{"image_id", "img-nothere", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "x"}},
		{2100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "keypair", "login_keypair", "kp-nothere1"}},
		{2100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "x", "vxnets.1", "vxnet-nothere"}},
		{2100, []string{"image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "x", "security_group", "sg-nothere1"}},
	}
	for _, tc := range bad {
		f.c.fail(tc.code, "RunInstances", tc.kv...)
	}
}

// TestDescribeInstancesFilters covers instances.N with unknown ids, status.N, search_word,
// image_id.N, instance_type.N and verbose.
func TestDescribeInstancesFilters(t *testing.T) {
	f := newFixture(t, nil)
	a := f.running("instance_name", "alpha-web")
	b := f.running("instance_name", "beta-db", "instance_type", "c2m4")
	f.c.ok("StopInstances", "instances.1", b)
	f.finish()
	count := func(kv ...string) int { return num(f.c.ok("DescribeInstances", kv...)["total_count"]) }
	tests := []struct {
		kv   []string
		want int
	}{
		{nil, 2},
		{[]string{"instances.1", a, "instances.2", "i-nothere1"}, 1},
		{[]string{"instances.1", "i-nothere1"}, 0},
		{[]string{"status.1", "running"}, 1},
		{[]string{"status.1", "running", "status.2", "stopped"}, 2},
		{[]string{"search_word", "WEB"}, 1},
		{[]string{"search_word", a[2:6]}, 1},
		{[]string{"instance_type.1", "c2m4"}, 1},
		{[]string{"image_id.1", "centos7x64d"}, 2},
		{[]string{"image_id.1", "bionic1x64"}, 0},
		{[]string{"instance_class", "0"}, 2},
	}
	for _, tc := range tests {
		if got := count(tc.kv...); got != tc.want {
			t.Errorf("DescribeInstances %v: %d, want %d", tc.kv, got, tc.want)
		}
	}
	if inst := f.instance(a); inst["volume_ids"] != nil {
		t.Fatalf("volume_ids without verbose: %v", inst["volume_ids"])
	}
	if inst := f.instance(a, "verbose", "1"); inst["volume_ids"] == nil || inst["keypair_ids"] == nil {
		t.Fatalf("verbose instance %v", inst)
	}
	// Other zones do not see the instance.
	if n := num(f.c.with(func(c *client) { c.zone = "sh1a" }).ok("DescribeInstances")["total_count"]); n != 0 {
		t.Fatalf("sh1a sees %d instances", n)
	}
	f.c.with(func(c *client) { c.zone = "sh1a" }).fail(2100, "StopInstances", "instances.1", a)
	f.c.ok("ModifyInstanceAttributes", "instance", a, "instance_name", "renamed", "description", "d")
	if inst := f.instance(a); inst["instance_name"] != "renamed" || inst["description"] != "d" {
		t.Fatalf("modified %v", inst)
	}
}

// TestNotFound checks 2100 for unknown resources in mutations, across families.
func TestNotFound(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	tests := []struct {
		action string
		kv     []string
	}{
		{"TerminateInstances", []string{"instances.1", "i-nothere1"}},
		{"StartInstances", []string{"instances.1", inst, "instances.2", "i-nothere1"}},
		{"ModifyInstanceAttributes", []string{"instance", "i-nothere1"}},
		{"DeleteVolumes", []string{"volumes.1", "vol-nothere"}},
		{"AttachVolumes", []string{"volumes.1", "vol-nothere", "instance", inst}},
		{"AssociateEip", []string{"eip", "eip-nothere", "instance", inst}},
		{"ReleaseEips", []string{"eips.1", "eip-nothere"}},
		{"DeleteVxnets", []string{"vxnets.1", "vxnet-nothere"}},
		{"JoinVxnet", []string{"vxnet", "vxnet-nothere", "instances.1", inst}},
		{"DeleteSecurityGroups", []string{"security_groups.1", "sg-nothere1"}},
		{"ApplySecurityGroup", []string{"security_group", "sg-nothere1"}},
		{"DeleteSecurityGroupRules", []string{"security_group_rules.1", "sgr-nothere"}},
		{"DeleteKeyPairs", []string{"keypairs.1", "kp-nothere1"}},
		{"AttachKeyPairs", []string{"keypairs.1", "kp-nothere1", "instances.1", inst}},
		{"CreateSnapshots", []string{"resources.1", "vol-nothere"}},
		{"DeleteSnapshots", []string{"snapshots.1", "ss-nothere1"}},
		{"DeleteTags", []string{"tags.1", "tag-nothere"}},
		{"AttachTags", []string{"resource_tag_pairs.1.tag_id", "tag-nothere", "resource_tag_pairs.1.resource_type", "instance", "resource_tag_pairs.1.resource_id", inst}},
		{"DeleteRouters", []string{"routers.1", "rtr-nothere"}},
		{"DeleteLoadBalancers", []string{"loadbalancers.1", "lb-nothere1"}},
		{"AddLoadBalancerListeners", []string{"loadbalancer", "lb-nothere1", "listeners.1.listener_port", "80", "listeners.1.listener_protocol", "http"}},
		{"DeleteLoadBalancerBackends", []string{"loadbalancer_backends.1", "lbb-nothere"}},
	}
	for _, tc := range tests {
		msg := f.c.fail(2100, tc.action, tc.kv...)
		if !strings.HasPrefix(msg, "ResourceNotFound, ") || !strings.Contains(msg, "nothere") {
			t.Errorf("%s: %q", tc.action, msg)
		}
	}
	// Nothing changed.
	expectState(t, "instance", f.instance(inst), "running", "")
}

// TestInstancesInTheStore: the store answers the instance verbs by the rules of the instance row
// (Start ends in running, not active), a job names an instance listed twice once, and an action
// that only the store answers refuses an unknown instance (2100) but accepts a known one.
func TestInstancesInTheStore(t *testing.T) {
	f := newFixture(t, nil)
	id := f.running()
	job := f.c.ok("StopInstances", "instances.1", id, "instances.2", id)["job_id"].(string)
	if got := f.c.one("DescribeJobs", "job_set", "jobs", job)["resource_ids"]; got != id {
		t.Errorf("resource_ids of a job on %s twice = %v, want it once", id, got)
	}
	f.finish()
	expectState(t, "stopped", f.instance(id), "stopped", "")
	f.c.ok("StartInstances", "instances.1", id)
	expectState(t, "starting", f.instance(id), "stopped", "starting")
	f.finish()
	expectState(t, "started", f.instance(id), "running", "")
	if msg := f.c.fail(2100, "CreateBrokers", "instances.1", "i-nothere1"); !strings.Contains(msg, "i-nothere1") {
		t.Errorf("CreateBrokers of an unknown instance: %q does not name it", msg)
	}
	f.c.ok("CreateBrokers", "instances.1", id)
}

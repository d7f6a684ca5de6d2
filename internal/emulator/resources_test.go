package emulator_test

import (
	"strings"
	"testing"
)

func (f *fixture) volume(id string) map[string]any {
	f.t.Helper()
	return f.c.one("DescribeVolumes", "volume_set", "volumes", id)
}

func (f *fixture) eip(id string) map[string]any {
	f.t.Helper()
	return f.c.one("DescribeEips", "eip_set", "eips", id)
}

// TestVolumeLifecycle: create, attach, detach, resize, delete, with transitions and wrong states.
func TestVolumeLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	out := f.c.ok("CreateVolumes", "size", "20", "volume_name", "data", "volume_type", "2", "count", "2")
	vols := strs(out["volumes"])
	if len(vols) != 2 {
		t.Fatalf("volumes %v", vols)
	}
	vol := vols[0]
	expectState(t, "created", f.volume(vol), "pending", "creating")
	f.c.fail(1400, "AttachVolumes", "volumes.1", vol, "instance", inst)
	f.finish()
	expectState(t, "available", f.volume(vol), "available", "")

	f.c.ok("AttachVolumes", "volumes.1", vol, "instance", inst)
	expectState(t, "attaching", f.volume(vol), "available", "attaching")
	f.finish()
	v := f.volume(vol)
	expectState(t, "attached", v, "in-use", "")
	if v["instance"].(map[string]any)["instance_id"] != inst || v["device"] == "" {
		t.Fatalf("attached volume %v", v)
	}
	if ids := strs(f.instance(inst, "verbose", "1")["volume_ids"]); len(ids) != 1 || ids[0] != vol {
		t.Fatalf("instance volume_ids %v", ids)
	}
	if msg := f.c.fail(1400, "DeleteVolumes", "volumes.1", vol); !strings.Contains(msg, "is not available, can not be deleted") {
		t.Fatalf("delete in-use: %q", msg)
	}
	f.c.fail(1400, "ResizeVolumes", "volumes.1", vol, "size", "30")
	other := f.running()
	if msg := f.c.fail(1400, "DetachVolumes", "volumes.1", vol, "instance", other); !strings.Contains(msg, "not attached to instance") {
		t.Fatalf("detach from other: %q", msg)
	}

	f.c.ok("DetachVolumes", "volumes.1", vol, "instance", inst)
	expectState(t, "detaching", f.volume(vol), "in-use", "detaching")
	f.finish()
	expectState(t, "detached", f.volume(vol), "available", "")
	if v := f.volume(vol); v["instance"].(map[string]any)["instance_id"] != "" {
		t.Fatalf("detached volume still names instance: %v", v["instance"])
	}

	f.c.fail(1400, "ResizeVolumes", "volumes.1", vol, "size", "10") // shrink
	f.c.fail(1100, "ResizeVolumes", "volumes.1", vol, "size", "25") // not a multiple of 10
	f.c.ok("ResizeVolumes", "volumes.1", vol, "size", "50")
	if msg := f.c.fail(1400, "DeleteVolumes", "volumes.1", vol); !strings.Contains(msg, "is [resizing], please try later") {
		t.Fatalf("delete while resizing: %q", msg)
	}
	f.finish()
	if v := f.volume(vol); num(v["size"]) != 50 || num(v["volume_type"]) != 2 {
		t.Fatalf("resized volume %v", v)
	}

	f.c.ok("ModifyVolumeAttributes", "volume", vol, "volume_name", "renamed")
	f.c.ok("DeleteVolumes", "volumes.1", vol)
	expectState(t, "deleting", f.volume(vol), "available", "deleting")
	f.finish()
	expectState(t, "deleted", f.volume(vol), "deleted", "")
	f.c.fail(1400, "AttachVolumes", "volumes.1", vol, "instance", inst)

	// Terminating an instance detaches its volumes.
	f.c.ok("AttachVolumes", "volumes.1", vols[1], "instance", inst)
	f.finish()
	f.c.ok("TerminateInstances", "instances.1", inst)
	f.finish()
	expectState(t, "after terminate", f.volume(vols[1]), "available", "")
	f.c.fail(1100, "CreateVolumes")
	f.c.fail(1100, "CreateVolumes", "size", "20", "volume_type", "7")
}

// TestEIPLifecycle: allocate (no job), associate, dissociate, change bandwidth, release.
func TestEIPLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	out := f.c.ok("AllocateEips", "bandwidth", "5", "eip_name", "pub", "billing_mode", "traffic")
	if _, hasJob := out["job_id"]; hasJob {
		t.Fatal("AllocateEips returned a job")
	}
	id := strs(out["eips"])[0]
	e := f.eip(id)
	expectState(t, "allocated", e, "available", "")
	if num(e["bandwidth"]) != 5 || e["billing_mode"] != "traffic" || e["eip_addr"] == "" {
		t.Fatalf("eip %v", e)
	}
	f.c.fail(1400, "DissociateEips", "eips.1", id)

	f.c.ok("AssociateEip", "eip", id, "instance", inst)
	expectState(t, "associating", f.eip(id), "available", "associating")
	f.finish()
	e = f.eip(id)
	expectState(t, "associated", e, "associated", "")
	if e["resource"].(map[string]any)["resource_id"] != inst {
		t.Fatalf("eip resource %v", e["resource"])
	}
	if ie := f.instance(inst)["eip"].(map[string]any); ie["eip_id"] != id || ie["eip_addr"] != e["eip_addr"] {
		t.Fatalf("instance eip %v", ie)
	}
	if n := num(f.c.ok("DescribeEips", "instance_id", inst)["total_count"]); n != 1 {
		t.Fatalf("DescribeEips instance_id: %d", n)
	}
	other := strs(f.c.ok("AllocateEips", "bandwidth", "1")["eips"])[0]
	if msg := f.c.fail(1400, "AssociateEip", "eip", other, "instance", inst); !strings.Contains(msg, "already has eip") {
		t.Fatalf("second eip: %q", msg)
	}
	if msg := f.c.fail(1400, "ReleaseEips", "eips.1", id); !strings.Contains(msg, "is not available, can not be released") {
		t.Fatalf("release associated: %q", msg)
	}

	f.c.ok("ChangeEipsBandwidth", "eips.1", id, "bandwidth", "10")
	f.finish()
	if num(f.eip(id)["bandwidth"]) != 10 {
		t.Fatal("bandwidth not changed")
	}
	f.c.ok("DissociateEips", "eips.1", id)
	expectState(t, "dissociating", f.eip(id), "associated", "dissociating")
	f.finish()
	expectState(t, "dissociated", f.eip(id), "available", "")
	if ie := f.instance(inst)["eip"].(map[string]any); ie["eip_id"] != "" {
		t.Fatalf("instance still has eip %v", ie)
	}
	f.c.with(func(c *client) { c.zone = "" }).ok("ModifyEipAttributes", "eip", id, "eip_name", "renamed")
	f.c.ok("ReleaseEips", "eips.1", id)
	expectState(t, "releasing", f.eip(id), "available", "releasing")
	f.finish()
	expectState(t, "released", f.eip(id), "released", "")
	f.c.fail(1100, "AllocateEips")
	f.c.fail(1100, "AllocateEips", "bandwidth", "5", "billing_mode", "free")
}

// TestVxnetLifecycle: create, join, DescribeVxnetInstances, leave, delete.
func TestVxnetLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	vx := strs(f.c.ok("CreateVxnets", "vxnet_type", "0", "vxnet_name", "private")["vxnets"])[0]
	if v := f.c.one("DescribeVxnets", "vxnet_set", "vxnets", vx); num(v["vxnet_type"]) != 0 || v["vxnet_name"] != "private" {
		t.Fatalf("vxnet %v", v)
	}
	f.c.ok("JoinVxnet", "vxnet", vx, "instances.1", inst)
	f.c.fail(1400, "JoinVxnet", "vxnet", vx, "instances.1", inst) // busy
	f.finish()
	if msg := f.c.fail(1400, "JoinVxnet", "vxnet", vx, "instances.1", inst); !strings.Contains(msg, "already in vxnet") {
		t.Fatalf("join twice: %q", msg)
	}
	members := set(t, f.c.ok("DescribeVxnetInstances", "vxnet", vx), "instance_set")
	if len(members) != 1 || members[0]["instance_id"] != inst {
		t.Fatalf("vxnet members %v", members)
	}
	if v := f.c.one("DescribeVxnets", "vxnet_set", "vxnets", vx); strs(v["instance_ids"])[0] != inst {
		t.Fatalf("vxnet instance_ids %v", v["instance_ids"])
	}
	if nics := f.instance(inst)["vxnets"].([]any); len(nics) != 2 {
		t.Fatalf("instance nics %v", nics)
	}
	if msg := f.c.fail(1400, "DeleteVxnets", "vxnets.1", vx); !strings.Contains(msg, "still has 1 instances") {
		t.Fatalf("delete in use: %q", msg)
	}
	f.c.ok("LeaveVxnet", "vxnet", vx, "instances.1", inst)
	f.finish()
	if n := num(f.c.ok("DescribeVxnetInstances", "vxnet", vx)["total_count"]); n != 0 {
		t.Fatalf("members after leave: %d", n)
	}
	f.c.fail(1400, "LeaveVxnet", "vxnet", vx, "instances.1", inst)
	f.c.fail(1400, "DeleteVxnets", "vxnets.1", "vxnet-0")
	f.c.ok("ModifyVxnetAttributes", "vxnet", vx, "vxnet_name", "renamed")
	f.c.ok("DeleteVxnets", "vxnets.1", vx)
	if n := num(f.c.ok("DescribeVxnets", "vxnets.1", vx)["total_count"]); n != 0 {
		t.Fatalf("deleted vxnet still listed")
	}
	f.c.fail(1100, "CreateVxnets")
	f.c.fail(1100, "CreateVxnets", "vxnet_type", "5")
}

// TestSecurityGroupLifecycle: create, rules, apply (is_applied), delete.
func TestSecurityGroupLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	sg := f.c.ok("CreateSecurityGroup", "security_group_name", "web")["security_group_id"].(string)
	rules := strs(f.c.ok("AddSecurityGroupRules", "security_group", sg,
		"rules.1.protocol", "tcp", "rules.1.priority", "1", "rules.1.action", "accept", "rules.1.direction", "0",
		"rules.1.val1", "80", "rules.1.val2", "", "rules.1.val3", "",
		"rules.2.protocol", "tcp", "rules.2.priority", "2", "rules.2.val1", "443")["security_group_rules"])
	if len(rules) != 2 {
		t.Fatalf("rules %v", rules)
	}
	group := func() map[string]any {
		return f.c.one("DescribeSecurityGroups", "security_group_set", "security_groups", sg)
	}
	if num(group()["is_applied"]) != 0 {
		t.Fatal("is_applied after adding rules")
	}
	got := set(t, f.c.ok("DescribeSecurityGroupRules", "security_group", sg), "security_group_rule_set")
	if len(got) != 2 || got[0]["val1"] != "80" || num(got[0]["priority"]) != 1 || got[0]["action"] != "accept" {
		t.Fatalf("rule set %v", got)
	}
	out := f.c.ok("ApplySecurityGroup", "security_group", sg, "instances.1", inst)
	if num(group()["is_applied"]) != 0 {
		t.Fatal("applied before the job ended")
	}
	f.finish()
	if f.jobStatus(out["job_id"].(string)) != "successful" || num(group()["is_applied"]) != 1 {
		t.Fatal("not applied after the job")
	}
	if res := group()["resources"].([]any); len(res) != 1 || res[0].(map[string]any)["resource_id"] != inst {
		t.Fatalf("resources %v", res)
	}
	if f.instance(inst)["security_group"].(map[string]any)["security_group_id"] != sg {
		t.Fatal("instance security group not changed")
	}
	f.c.ok("ModifySecurityGroupRuleAttributes", "security_group_rule", rules[0], "priority", "5", "rule_action", "drop")
	if num(group()["is_applied"]) != 0 {
		t.Fatal("is_applied after modifying a rule")
	}
	f.c.ok("DeleteSecurityGroupRules", "security_group_rules.1", rules[1])
	if n := num(f.c.ok("DescribeSecurityGroupRules", "security_group", sg)["total_count"]); n != 1 {
		t.Fatalf("rules after delete: %d", n)
	}
	if msg := f.c.fail(1400, "DeleteSecurityGroups", "security_groups.1", sg); !strings.Contains(msg, "in use") {
		t.Fatalf("delete in use: %q", msg)
	}
	def := f.instance(f.running())["security_group"].(map[string]any)["security_group_id"].(string)
	if msg := f.c.fail(1400, "DeleteSecurityGroups", "security_groups.1", def); !strings.Contains(msg, "default") {
		t.Fatalf("delete default: %q", msg)
	}
	f.c.ok("TerminateInstances", "instances.1", inst)
	f.finish()
	f.c.ok("ModifySecurityGroupAttributes", "security_group", sg, "security_group_name", "renamed")
	f.c.ok("DeleteSecurityGroups", "security_groups.1", sg)
	f.c.fail(1100, "AddSecurityGroupRules", "security_group", def)
	f.c.fail(1100, "AddSecurityGroupRules", "security_group", def, "rules.1.protocol", "tcp", "rules.1.priority", "high")
}

// TestSecurityGroupRuleChanges: rules are listed by priority, Modify clears a value given empty,
// names no other group and makes the group not applied, and a deleted group takes its rules along.
func TestSecurityGroupRuleChanges(t *testing.T) {
	f := newFixture(t, nil)
	sg := f.c.ok("CreateSecurityGroup", "security_group_name", "db")["security_group_id"].(string)
	other := f.c.ok("CreateSecurityGroup")["security_group_id"].(string)
	rules := strs(f.c.ok("AddSecurityGroupRules", "security_group", sg,
		"rules.1.protocol", "tcp", "rules.1.priority", "9", "rules.1.val1", "5432", "rules.1.val2", "5433",
		"rules.2.protocol", "tcp", "rules.2.priority", "3", "rules.2.val1", "22")["security_group_rules"])
	listed := func() []map[string]any {
		return set(t, f.c.ok("DescribeSecurityGroupRules", "security_group", sg), "security_group_rule_set")
	}
	if got := listed(); len(got) != 2 || got[0]["security_group_rule_id"] != rules[1] || num(got[1]["priority"]) != 9 {
		t.Fatalf("rules not ordered by priority: %v", got)
	}
	f.c.ok("ApplySecurityGroup", "security_group", sg)
	f.finish()
	if msg := f.c.fail(1400, "ModifySecurityGroupRuleAttributes", "security_group_rule", rules[0], "security_group", other,
		"val2", ""); !strings.Contains(msg, "not a rule of") {
		t.Fatalf("rule of another group: %q", msg)
	}
	f.c.fail(1100, "ModifySecurityGroupRuleAttributes", "security_group_rule", rules[0], "rule_action", "reject")
	f.c.ok("ModifySecurityGroupRuleAttributes", "security_group_rule", rules[0], "security_group", sg, "val2", "",
		"rule_action", "drop")
	if r := listed()[1]; r["val2"] != "" || r["val1"] != "5432" || r["action"] != "drop" {
		t.Fatalf("modified rule %v", r)
	}
	if g := f.c.one("DescribeSecurityGroups", "security_group_set", "security_groups", sg); num(g["is_applied"]) != 0 {
		t.Fatalf("group applied after a rule changed: %v", g)
	}
	f.c.ok("DeleteSecurityGroups", "security_groups.1", sg)
	if n := num(f.c.ok("DescribeSecurityGroupRules", "security_group_rules.1", rules[0])["total_count"]); n != 0 {
		t.Fatalf("rules of a deleted group listed: %d", n)
	}
	f.c.fail(2100, "DeleteSecurityGroupRules", "security_group_rules.1", rules[1])
}

// TestKeyPairLifecycle: create, attach, detach, delete.
func TestKeyPairLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	out := f.c.ok("CreateKeyPair", "keypair_name", "ops")
	kp := out["keypair_id"].(string)
	if !strings.Contains(out["private_key"].(string), "PRIVATE KEY") {
		t.Fatalf("private key %v", out["private_key"])
	}
	user := f.c.ok("CreateKeyPair", "mode", "user", "public_key", "ssh-rsa AAAAB3Nza user@host")["keypair_id"].(string)
	f.c.ok("AttachKeyPairs", "keypairs.1", kp, "keypairs.2", user, "instances.1", inst)
	f.finish()
	if got := strs(f.instance(inst, "verbose", "1")["keypair_ids"]); len(got) != 2 {
		t.Fatalf("keypair_ids %v", got)
	}
	k := f.c.one("DescribeKeyPairs", "keypair_set", "keypairs", kp)
	if ids := strs(k["instance_ids"]); len(ids) != 1 || ids[0] != inst || !strings.HasPrefix(k["pub_key"].(string), "ssh-rsa ") {
		t.Fatalf("keypair %v", k)
	}
	if n := num(f.c.ok("DescribeKeyPairs", "instance_id", inst)["total_count"]); n != 2 {
		t.Fatalf("DescribeKeyPairs instance_id: %d", n)
	}
	if msg := f.c.fail(1400, "DeleteKeyPairs", "keypairs.1", kp); !strings.Contains(msg, "attached") {
		t.Fatalf("delete attached: %q", msg)
	}
	f.c.ok("DetachKeyPairs", "keypairs.1", kp, "instances.1", inst)
	f.finish()
	f.c.fail(1400, "DetachKeyPairs", "keypairs.1", kp, "instances.1", inst)
	f.c.ok("ModifyKeyPairAttributes", "keypair", kp, "keypair_name", "renamed")
	f.c.ok("DeleteKeyPairs", "keypairs.1", kp)
	if n := num(f.c.ok("DescribeKeyPairs", "keypairs.1", kp)["total_count"]); n != 0 {
		t.Fatal("deleted keypair listed")
	}
	f.c.fail(1100, "CreateKeyPair", "mode", "user")
}

// TestSnapshotLifecycle: snapshot a volume and an instance, create a volume and an image from them.
func TestSnapshotLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	vol := strs(f.c.ok("CreateVolumes", "size", "30")["volumes"])[0]
	f.c.fail(1400, "CreateSnapshots", "resources.1", vol) // still creating
	f.finish()
	out := f.c.ok("CreateSnapshots", "resources.1", vol, "resources.2", inst, "snapshot_name", "nightly", "is_full", "1")
	snaps := strs(out["snapshots"])
	// job_id is a one-element list, as production sends it for CreateSnapshots.
	if jobs := strs(out["job_id"]); len(jobs) != 1 || f.jobStatus(jobs[0]) != "pending" {
		t.Fatalf("CreateSnapshots job_id %#v, want a one-element list naming a pending job", out["job_id"])
	}
	snap := func(id string) map[string]any { return f.c.one("DescribeSnapshots", "snapshot_set", "snapshots", id) }
	expectState(t, "creating", snap(snaps[0]), "pending", "creating")
	f.finish()
	s := snap(snaps[0])
	expectState(t, "created", s, "available", "")
	if s["resource"].(map[string]any)["resource_id"] != vol || num(s["size"]) != 30 || num(s["snapshot_type"]) != 1 {
		t.Fatalf("snapshot %v", s)
	}
	// Clients read latest_snapshot_time; the spec spells it lastest_snapshot_time: both are sent.
	if v := f.volume(vol); v["lastest_snapshot_time"] == nil || v["latest_snapshot_time"] != v["lastest_snapshot_time"] {
		t.Fatalf("volume snapshot times: lastest %v, latest %v", v["lastest_snapshot_time"], v["latest_snapshot_time"])
	}
	if n := num(f.c.ok("DescribeSnapshots", "resource_id", inst)["total_count"]); n != 1 {
		t.Fatalf("snapshots of the instance: %d", n)
	}
	// snapshot_type is an integer filter of the generic store, resource_id a field of the nested resource.
	for typ, want := range map[string]int{"1": 2, "0": 0} {
		if n := num(f.c.ok("DescribeSnapshots", "snapshot_type", typ)["total_count"]); n != want {
			t.Fatalf("snapshots of type %s: %v, want %v", typ, n, want)
		}
	}
	if s["is_taken"] != float64(1) || s["root_id"] != snaps[0] || len(s["tags"].([]any)) != 0 {
		t.Fatalf("snapshot is_taken, root_id, tags: %v", s)
	}
	f.c.fail(1400, "CreateVolumeFromSnapshot", "snapshot", snaps[1]) // an instance snapshot
	nv := f.c.ok("CreateVolumeFromSnapshot", "snapshot", snaps[0], "volume_name", "restored")["volume_id"].(string)
	img := f.c.ok("CaptureInstanceFromSnapshot", "snapshot", snaps[1], "image_name", "golden")["image_id"].(string)
	f.finish()
	if v := f.volume(nv); num(v["size"]) != 30 || v["status"] != "available" {
		t.Fatalf("volume from snapshot %v", v)
	}
	im := f.c.one("DescribeImages", "image_set", "images", img)
	if im["status"] != "available" || im["provider"] != "self" || im["visibility"] != "private" {
		t.Fatalf("captured image %v", im)
	}
	if n := num(f.c.ok("DescribeImages", "provider", "self")["total_count"]); n != 1 {
		t.Fatalf("private images %d", n)
	}
	f.c.ok("ApplySnapshots", "snapshots.1", snaps[0])
	f.finish()
	f.c.ok("ModifySnapshotAttributes", "snapshot", snaps[0], "snapshot_name", "renamed")
	f.c.ok("DeleteSnapshots", "snapshots.1", snaps[0])
	expectState(t, "deleting", snap(snaps[0]), "available", "deleting")
	f.finish()
	expectState(t, "deleted", snap(snaps[0]), "deleted", "")
	f.c.fail(1400, "DeleteImages", "images.1", "centos7x64d")
	f.c.ok("DeleteImages", "images.1", img)
	f.finish()
	expectState(t, "image deleted", f.c.one("DescribeImages", "image_set", "images", img), "deleted", "")
}

// TestTagLifecycle: create, attach, filter by tag, describe verbose, detach, delete.
func TestTagLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	vol := strs(f.c.ok("CreateVolumes", "size", "10")["volumes"])[0]
	tag := f.c.ok("CreateTag", "tag_name", "prod", "color", "#ff0000")["tag_id"].(string)
	f.c.ok("AttachTags",
		"resource_tag_pairs.1.tag_id", tag, "resource_tag_pairs.1.resource_type", "instance", "resource_tag_pairs.1.resource_id", inst,
		"resource_tag_pairs.2.tag_id", tag, "resource_tag_pairs.2.resource_type", "volume", "resource_tag_pairs.2.resource_id", vol)
	tags := f.instance(inst)["tags"].([]any)
	if len(tags) != 1 || tags[0].(map[string]any)["tag_id"] != tag || tags[0].(map[string]any)["tag_name"] != "prod" {
		t.Fatalf("instance tags %v", tags)
	}
	f.running()
	if n := num(f.c.ok("DescribeInstances", "tags.1", tag)["total_count"]); n != 1 {
		t.Fatalf("instances with tag: %d", n)
	}
	tg := f.c.one("DescribeTags", "tag_set", "tags", tag, "verbose", "1")
	if num(tg["resource_count"]) != 2 || len(tg["resource_tag_pairs"].([]any)) != 2 || len(tg["resource_type_count"].([]any)) != 2 {
		t.Fatalf("tag %v", tg)
	}
	f.c.fail(2100, "AttachTags", "resource_tag_pairs.1.tag_id", tag, "resource_tag_pairs.1.resource_type", "volume",
		"resource_tag_pairs.1.resource_id", inst) // wrong type
	f.c.fail(1100, "AttachTags", "resource_tag_pairs.1.tag_id", tag)
	f.c.ok("DetachTags", "resource_tag_pairs.1.tag_id", tag, "resource_tag_pairs.1.resource_type", "instance",
		"resource_tag_pairs.1.resource_id", inst)
	if n := num(f.c.ok("DescribeInstances", "tags.1", tag)["total_count"]); n != 0 {
		t.Fatalf("instances with tag after detach: %d", n)
	}
	f.c.ok("ModifyTagAttributes", "tag", tag, "tag_name", "staging")
	if n := num(f.c.ok("DescribeTags", "search_word", "stag")["total_count"]); n != 1 {
		t.Fatal("search by new name")
	}
	f.c.ok("DeleteTags", "tags.1", tag)
	if tags := f.volume(vol)["tags"].([]any); len(tags) != 0 {
		t.Fatalf("volume tags after delete %v", tags)
	}
}

// TestRouterLifecycle: create, join a managed vxnet (instances get IPs from it), power off/on,
// update, leave, delete.
func TestRouterLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	out := f.c.ok("CreateRouters", "router_name", "gw", "vpc_network", "192.168.0.0/16")
	rt := strs(out["routers"])[0]
	router := func() map[string]any { return f.c.one("DescribeRouters", "router_set", "routers", rt) }
	expectState(t, "creating", router(), "pending", "creating")
	f.finish()
	expectState(t, "active", router(), "active", "")
	vx := strs(f.c.ok("CreateVxnets", "vxnet_type", "1")["vxnets"])[0]
	unmanaged := strs(f.c.ok("CreateVxnets", "vxnet_type", "0")["vxnets"])[0]
	f.c.fail(1400, "JoinRouter", "vxnet", unmanaged, "router", rt, "ip_network", "192.168.2.0/24")
	f.c.fail(1100, "JoinRouter", "vxnet", vx, "router", rt, "ip_network", "not-a-network")
	f.c.ok("JoinRouter", "vxnet", vx, "router", rt, "ip_network", "192.168.1.0/24")
	expectState(t, "joining", router(), "active", "updating")
	f.finish()
	rv := set(t, f.c.ok("DescribeRouterVxnets", "router", rt), "router_vxnet_set")
	if len(rv) != 1 || rv[0]["vxnet_id"] != vx || rv[0]["manager_ip"] != "192.168.1.1" || rv[0]["ip_network"] != "192.168.1.0/24" {
		t.Fatalf("router vxnets %v", rv)
	}
	if n := num(f.c.ok("DescribeRouters", "vxnet", vx)["total_count"]); n != 1 {
		t.Fatal("DescribeRouters vxnet filter")
	}
	inst := f.running("vxnets.1", vx)
	ip := f.instance(inst)["vxnets"].([]any)[0].(map[string]any)["private_ip"].(string)
	if !strings.HasPrefix(ip, "192.168.1.") {
		t.Fatalf("private ip %q not in the router network", ip)
	}
	if msg := f.c.fail(1400, "DeleteRouters", "routers.1", rt); !strings.Contains(msg, "still has vxnet") {
		t.Fatalf("delete with vxnet: %q", msg)
	}
	f.c.ok("PowerOffRouters", "routers.1", rt)
	expectState(t, "poweroffing", router(), "active", "poweroffing")
	f.finish()
	expectState(t, "poweroffed", router(), "poweroffed", "")
	f.c.fail(1400, "UpdateRouters", "routers.1", rt)
	f.c.ok("PowerOnRouters", "routers.1", rt)
	f.finish()
	f.c.ok("UpdateRouters", "routers.1", rt)
	f.finish()
	if num(router()["is_applied"]) != 1 {
		t.Fatal("router not applied")
	}
	f.c.fail(1400, "LeaveRouter", "vxnets.1", vx, "router", rt) // instance still in the vxnet
	f.c.ok("TerminateInstances", "instances.1", inst)
	f.finish()
	f.c.ok("LeaveRouter", "vxnets.1", vx, "router", rt)
	f.finish()
	f.c.ok("ModifyRouterAttributes", "router", rt, "router_name", "renamed")
	f.c.ok("DeleteRouters", "routers.1", rt)
	expectState(t, "deleting", router(), "active", "deleting")
	f.finish()
	expectState(t, "deleted", router(), "deleted", "")
}

// TestLoadBalancerLifecycle: create with an EIP, listeners and backends, update, stop/start, delete.
func TestLoadBalancerLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	inst := f.running()
	eip := strs(f.c.ok("AllocateEips", "bandwidth", "2")["eips"])[0]
	lb := f.c.ok("CreateLoadBalancer", "eips.1", eip, "loadbalancer_name", "front")["loadbalancer_id"].(string)
	describe := func(kv ...string) map[string]any {
		return f.c.one("DescribeLoadBalancers", "loadbalancer_set", "loadbalancers", lb, kv...)
	}
	expectState(t, "creating", describe(), "pending", "creating")
	expectState(t, "eip associating", f.eip(eip), "available", "associating")
	f.finish()
	l := describe()
	expectState(t, "active", l, "active", "")
	if eips := l["eips"].([]any); len(eips) != 1 || eips[0].(map[string]any)["eip_id"] != eip {
		t.Fatalf("lb eips %v", l["eips"])
	}
	expectState(t, "eip associated", f.eip(eip), "associated", "")

	lis := strs(f.c.ok("AddLoadBalancerListeners", "loadbalancer", lb,
		"listeners.1.listener_port", "80", "listeners.1.listener_protocol", "http", "listeners.1.backend_protocol", "http",
		"listeners.1.balance_mode", "roundrobin", "listeners.1.session_sticky", "insert|3600",
		"listeners.1.healthy_check_method", "http|/index.html", "listeners.1.healthy_check_option", "10|5|2|5",
		"listeners.1.forwardfor", "1")["loadbalancer_listeners"])
	if len(lis) != 1 || num(describe()["is_applied"]) != 0 {
		t.Fatalf("listeners %v / is_applied", lis)
	}
	if msg := f.c.fail(1400, "AddLoadBalancerListeners", "loadbalancer", lb, "listeners.1.listener_port", "80",
		"listeners.1.listener_protocol", "tcp"); !strings.Contains(msg, "already used") {
		t.Fatalf("duplicate port: %q", msg)
	}
	f.c.fail(1100, "AddLoadBalancerListeners", "loadbalancer", lb, "listeners.1.listener_port", "81", "listeners.1.listener_protocol", "gopher")
	bks := strs(f.c.ok("AddLoadBalancerBackends", "loadbalancer_listener", lis[0],
		"backends.1.resource_id", inst, "backends.1.port", "8080", "backends.1.weight", "10")["loadbalancer_backends"])
	f.c.fail(2100, "AddLoadBalancerBackends", "loadbalancer_listener", lis[0], "backends.1.resource_id", "i-nothere1", "backends.1.port", "80")
	b := f.c.one("DescribeLoadBalancerBackends", "loadbalancer_backend_set", "loadbalancer_backends", bks[0])
	if b["resource_id"] != inst || num(b["port"]) != 8080 || num(b["weight"]) != 10 || b["status"] != "active" {
		t.Fatalf("backend %v", b)
	}
	ls := f.c.one("DescribeLoadBalancerListeners", "loadbalancer_listener_set", "loadbalancer_listeners", lis[0], "verbose", "1")
	if num(ls["listener_port"]) != 80 || len(ls["backends"].([]any)) != 1 || ls["session_sticky"] != "insert|3600" {
		t.Fatalf("listener %v", ls)
	}
	if got := describe("verbose", "1")["listeners"].([]any); len(got) != 1 {
		t.Fatalf("verbose lb listeners %v", got)
	}
	f.c.ok("ModifyLoadBalancerBackendAttributes", "loadbalancer_backend", bks[0], "weight", "20", "disabled", "1")
	if b := f.c.one("DescribeLoadBalancerBackends", "loadbalancer_backend_set", "loadbalancer_backends", bks[0]); num(b["weight"]) != 20 || b["status"] != "down" {
		t.Fatalf("disabled backend %v", b)
	}
	f.c.ok("ModifyLoadBalancerBackendAttributes", "loadbalancer_backend", bks[0], "disabled", "0")
	f.c.ok("ModifyLoadBalancerListenerAttributes", "loadbalancer_listener", lis[0], "balance_mode", "leastconn")
	f.c.ok("UpdateLoadBalancers", "loadbalancers.1", lb)
	expectState(t, "updating", describe(), "active", "updating")
	f.finish()
	if num(describe()["is_applied"]) != 1 {
		t.Fatal("lb not applied")
	}
	f.c.ok("StopLoadBalancers", "loadbalancers.1", lb)
	expectState(t, "stopping", describe(), "active", "stopping")
	f.finish()
	expectState(t, "stopped", describe(), "stopped", "")
	f.c.fail(1400, "StopLoadBalancers", "loadbalancers.1", lb)
	f.c.ok("StartLoadBalancers", "loadbalancers.1", lb)
	f.finish()
	f.c.fail(1100, "ResizeLoadBalancers", "loadbalancers.1", lb) // loadbalancer_type is needed
	f.c.fail(1100, "StartLoadBalancers")                         // so is a load balancer
	job := f.c.ok("ResizeLoadBalancers", "loadbalancers.1", lb, "loadbalancer_type", "3")["job_id"].(string)
	expectState(t, "resizing", describe(), "active", "updating")
	f.finish()
	if l := describe(); num(l["loadbalancer_type"]) != 3 {
		t.Fatalf("resized lb %v", l)
	}
	if j := f.c.one("DescribeJobs", "job_set", "jobs", job); j["resource_ids"] != lb {
		t.Fatalf("resize job %v", j)
	}
	f.c.ok("DeleteLoadBalancerBackends", "loadbalancer_backends.1", bks[0])
	bks = strs(f.c.ok("AddLoadBalancerBackends", "loadbalancer_listener", lis[0],
		"backends.1.resource_id", inst, "backends.1.port", "8081")["loadbalancer_backends"])
	f.c.ok("DeleteLoadBalancerListeners", "loadbalancer_listeners.1", lis[0])
	f.c.fail(2100, "ModifyLoadBalancerBackendAttributes", "loadbalancer_backend", bks[0], "weight", "3") // went with its listener
	f.c.ok("ModifyLoadBalancerAttributes", "loadbalancer", lb, "loadbalancer_name", "renamed")
	f.c.ok("DissociateEipsFromLoadBalancer", "loadbalancer", lb, "eips.1", eip)
	f.finish()
	expectState(t, "eip after dissociate", f.eip(eip), "available", "")
	f.c.ok("AssociateEipsToLoadBalancer", "loadbalancer", lb, "eips.1", eip)
	f.finish()
	out := f.c.ok("DeleteLoadBalancers", "loadbalancers.1", lb)
	if got := strs(out["loadbalancers"]); len(got) != 1 || got[0] != lb {
		t.Fatalf("DeleteLoadBalancers loadbalancers %v", got)
	}
	expectState(t, "deleting", describe(), "active", "deleting")
	f.finish()
	expectState(t, "deleted", describe(), "deleted", "")
	expectState(t, "eip freed", f.eip(eip), "available", "")
	f.c.fail(1100, "CreateLoadBalancer")
}

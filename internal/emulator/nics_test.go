package emulator_test

import (
	"slices"
	"testing"
)

// nicIDsOf returns the nic_id of each of an instance's vxnets.
func nicIDsOf(inst map[string]any) []string {
	var out []string
	for _, v := range inst["vxnets"].([]any) {
		out = append(out, v.(map[string]any)["nic_id"].(string))
	}
	return out
}

// TestNicAttachDetach: AttachNics attaches stored NICs to an instance (its vxnets list them, the NIC
// shows instance_id and is in-use when the job ends), DetachNics reverses it, terminating the
// instance frees them, and what QingCloud refuses is refused: an in-use NIC, a NIC of another zone,
// an unknown instance or NIC, detaching a NIC that is not attached, deleting an in-use NIC.
func TestNicAttachDetach(t *testing.T) {
	f := newFixture(t, nil)
	inst, other := f.running(), f.running()
	var nics []string
	for _, o := range f.c.ok("CreateNics", "vxnet", "vxnet-0", "count", "2")["nics"].([]any) {
		nics = append(nics, o.(map[string]any)["nic_id"].(string))
	}
	n1, n2 := nics[0], nics[1]
	nic := func(id string) map[string]any { return f.c.one("DescribeNics", "nic_set", "nics", id) }

	f.c.ok("AttachNics", "instance", inst, "nics.1", n1)
	if d := nic(n1); d["instance_id"] != inst || d["status"] != "available" {
		t.Fatalf("attaching nic %v, want instance_id %s while the job runs", d, inst)
	}
	f.c.fail(1400, "AttachNics", "instance", inst, "nics.1", n2) // the instance is busy attaching
	f.finish()
	if d := nic(n1); d["instance_id"] != inst || d["status"] != "in-use" {
		t.Fatalf("attached nic %v", d)
	}
	if n := num(f.c.ok("DescribeNics", "instances.1", inst)["total_count"]); n != 1 {
		t.Fatalf("DescribeNics instances.1: %d, want 1", n)
	}
	vx := f.instance(inst)["vxnets"].([]any)
	if ids := nicIDsOf(f.instance(inst)); len(ids) != 2 || ids[1] != n1 {
		t.Fatalf("instance vxnets %v, want its own NIC and %s", vx, n1)
	}
	if got := vx[1].(map[string]any); got["vxnet_id"] != "vxnet-0" || got["private_ip"] != nic(n1)["private_ip"] {
		t.Fatalf("attached nic in the instance %v", got)
	}

	for _, c := range []struct {
		name string
		code int
		kv   []string
	}{
		{"in-use NIC", 1400, []string{"instance", other, "nics.1", n1}},
		{"unknown instance", 2100, []string{"instance", "i-nothere1", "nics.1", n2}},
		{"unknown NIC", 2100, []string{"instance", other, "nics.1", "52:54:00:00:00:01"}},
	} {
		t.Run(c.name, func(t *testing.T) { f.c.fail(c.code, "AttachNics", c.kv...) })
	}
	f.c.fail(1400, "DeleteNics", "nics.1", n1)
	f.c.fail(1400, "DetachNics", "nics.1", n2) // not attached

	// A NIC of another zone: unknown from the instance's zone, refused from a region that sees both.
	b := f.c.with(func(c *client) { c.zone = "pek3b" })
	far := b.ok("CreateNics", "vxnet", "vxnet-0")["nics"].([]any)[0].(map[string]any)["nic_id"].(string)
	near := strs(f.c.with(func(c *client) { c.zone = "pek3c" }).ok("RunInstances", "image_id", "centos7x64d",
		"instance_type", "c1m1", "login_mode", "passwd", "login_passwd", "Passw0rd")["instances"])[0]
	f.finish()
	f.c.fail(2100, "AttachNics", "instance", inst, "nics.1", far)
	f.c.with(func(c *client) { c.zone = "pek3" }).fail(1400, "AttachNics", "instance", near, "nics.1", far)

	f.c.ok("DetachNics", "nics.1", n1)
	f.finish()
	if d := nic(n1); d["instance_id"] != "" || d["status"] != "available" {
		t.Fatalf("detached nic %v", d)
	}
	if ids := nicIDsOf(f.instance(inst)); slices.Contains(ids, n1) {
		t.Fatalf("instance still lists detached nic: %v", ids)
	}

	// LeaveVxnet takes the instance's NICs in that vxnet along: a stored one is available again.
	vxu := strs(f.c.ok("CreateVxnets", "vxnet_type", "0")["vxnets"])[0]
	n3 := f.c.ok("CreateNics", "vxnet", vxu)["nics"].([]any)[0].(map[string]any)["nic_id"].(string)
	f.c.ok("AttachNics", "instance", inst, "nics.1", n3)
	f.finish()
	f.c.ok("LeaveVxnet", "vxnet", vxu, "instances.1", inst)
	f.finish()
	if d := nic(n3); d["instance_id"] != "" || d["status"] != "available" || slices.Contains(nicIDsOf(f.instance(inst)), n3) {
		t.Fatalf("nic of a left vxnet %v", d)
	}

	f.c.ok("AttachNics", "instance", inst, "nics.1", n1, "nics.2", n2)
	f.finish()
	f.c.ok("TerminateInstances", "instances.1", inst)
	f.finish()
	for _, id := range nics {
		if d := nic(id); d["instance_id"] != "" || d["status"] != "available" {
			t.Fatalf("nic of a terminated instance %v", d)
		}
	}
	f.c.ok("DeleteNics", "nics.1", n1)
}

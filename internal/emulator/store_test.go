package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// TestStoreServerCertificate: a family without status or job, answered by the generic store only:
// create returns the id, describe lists it with the request's fields (never the private key),
// modify changes it, delete removes it, and an unknown id is 2100.
func TestStoreServerCertificate(t *testing.T) {
	f := newFixture(t, nil)
	id, _ := f.c.ok("CreateServerCertificate", "server_certificate_name", "web", "certificate_content", "-----BEGIN CERTIFICATE-----",
		"private_key", "-----BEGIN PRIVATE KEY-----")["server_certificate_id"].(string)
	if !idPattern(id) || id[:3] != "sc-" {
		t.Fatalf("server_certificate_id %q", id)
	}
	sc := f.c.one("DescribeServerCertificates", "server_certificate_set", "server_certificates", id)
	if sc["server_certificate_name"] != "web" || sc["certificate_content"] != "-----BEGIN CERTIFICATE-----" || sc["private_key"] != nil ||
		sc["create_time"] == nil {
		t.Fatalf("described %v", sc)
	}
	// Another zone does not see it; search_word finds it by name.
	if n := num(f.c.with(func(c *client) { c.zone = "sh1a" }).ok("DescribeServerCertificates")["total_count"]); n != 0 {
		t.Fatalf("sh1a sees %d certificates", n)
	}
	if n := num(f.c.ok("DescribeServerCertificates", "search_word", "WE")["total_count"]); n != 1 {
		t.Fatalf("search_word: %d", n)
	}
	f.c.ok("ModifyServerCertificateAttributes", "server_certificate", id, "server_certificate_name", "api", "description", "d")
	sc = f.c.one("DescribeServerCertificates", "server_certificate_set", "server_certificates", id)
	if sc["server_certificate_name"] != "api" || sc["description"] != "d" {
		t.Fatalf("modified %v", sc)
	}
	if got := strs(f.c.ok("DeleteServerCertificates", "server_certificates.1", id)["server_certificates"]); len(got) != 1 || got[0] != id {
		t.Fatalf("deleted %v", got)
	}
	if n := num(f.c.ok("DescribeServerCertificates", "server_certificates.1", id)["total_count"]); n != 0 {
		t.Fatalf("deleted certificate still listed")
	}
	f.c.fail(2100, "DeleteServerCertificates", "server_certificates.1", id)
	f.c.fail(2100, "ModifyServerCertificateAttributes", "server_certificate", "sc-nothere1")
}

// TestStoreCacheLifecycle: a delayed family with a status, answered by the generic store: created
// pending under a job and active when it ends; stopped, started and deleted through the verbs'
// transitions; deleted items stay visible as deleted.
func TestStoreCacheLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	vx := strs(f.c.ok("CreateVxnets", "vxnet_type", "1")["vxnets"])[0]
	out := f.c.ok("CreateCache", "cache_size", "2", "cache_type", "redis3.0.5", "vxnet", vx, "cache_name", "sessions")
	id := out["cache_id"].(string)
	cache := func() map[string]any { return f.c.one("DescribeCaches", "cache_set", "caches", id) }
	expectState(t, "creating", cache(), "pending", "creating")
	if c := cache(); c["cache_name"] != "sessions" || num(c["cache_size"]) != 2 || c["cache_type"] != "redis3.0.5" {
		t.Fatalf("cache %v", c)
	}
	if f.jobStatus(out["job_id"].(string)) != "pending" {
		t.Fatal("job not pending")
	}
	f.c.fail(1400, "StopCaches", "caches.1", id) // busy creating
	f.finish()
	expectState(t, "created", cache(), "active", "")
	if got := strs(f.c.ok("StopCaches", "caches.1", id)["cache_ids"]); len(got) != 1 || got[0] != id {
		t.Fatalf("StopCaches cache_ids %v", got)
	}
	expectState(t, "stopping", cache(), "active", "stopping")
	f.finish()
	expectState(t, "stopped", cache(), "stopped", "")
	f.c.ok("StartCaches", "caches.1", id)
	f.finish()
	expectState(t, "started", cache(), "active", "")
	f.c.ok("DeleteCaches", "caches.1", id)
	f.finish()
	expectState(t, "deleted", cache(), "deleted", "")
	f.c.fail(1400, "DeleteCaches", "caches.1", id)
	if n := num(f.c.ok("DescribeCaches", "status.1", "active")["total_count"]); n != 0 {
		t.Fatalf("active caches: %d", n)
	}
}

// FuzzGenericStore sends actions answered by the generic store with one fuzzed parameter (any name,
// any value) on top of a valid request: the answer is JSON with ret_code 0 or a client error, never
// an internal error (5000, a recovered panic).
func FuzzGenericStore(f *testing.F) {
	actions := []string{"CreateServerCertificate", "DescribeServerCertificates", "ModifyServerCertificateAttributes",
		"CreateCache", "DescribeCaches", "StopCaches", "DeleteCaches", "CreateKeyPair", "DescribeKeyPairs",
		"AddRouterStatics", "DescribeRouterStatics", "CreateCluster", "StopClusters", "GetVPNCerts"}
	f.Add(uint8(0), "server_certificate_name", "web")
	f.Add(uint8(3), "cache_size", "99999999999999999999")
	f.Add(uint8(5), "caches.1", "c-nothere1")
	f.Add(uint8(7), "mode", "user")
	f.Add(uint8(9), "statics.1.val1", "\x00")
	f.Add(uint8(1), "limit", "-5")
	emu := emulator.New(emulator.Options{Quota: -1})
	base := map[string]string{
		"certificate_content": "c", "private_key": "k", "server_certificate": "sc-x", "cache_size": "1", "cache_type": "redis",
		"vxnet": "vxnet-0", "caches.1": "c-x", "router": "rtr-x", "statics.1.static_type": "1", "conf": "{}", "clusters.1": "cl-x",
	}
	f.Fuzz(func(t *testing.T, which uint8, name, value string) {
		if name == "" || name == "signature" || strings.ContainsAny(name, "&=") {
			return
		}
		p := map[string]string{"action": actions[int(which)%len(actions)], "access_key_id": emulator.DefaultAccessKeyID,
			"signature_method": "HmacSHA256", "signature_version": "1", "zone": "pek3a",
			"time_stamp": time.Now().UTC().Format("2006-01-02T15:04:05Z")}
		for k, v := range base {
			p[k] = v
		}
		p[name] = value
		p["signature"] = testSign("GET", "/iaas/", "HmacSHA256", emulator.DefaultSecretAccessKey, p)
		req := httptest.NewRequest("GET", "/iaas/?"+canonical(p)+"&signature="+pctEncode(p["signature"]), nil)
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s=%q: bad JSON %q", p["action"], name, value, rec.Body.Bytes())
		}
		if c := code(out); c >= 5000 || c < 0 {
			t.Fatalf("%s %s=%q: %v", p["action"], name, value, out)
		}
	})
}

// TestStoreCreateNics: CreateNics answers its list of objects (nic_id, private_ip) per the spec, one
// per count, and the NICs exist for DescribeNics and DeleteNics; the vxnet must exist and the
// private_ips must be addresses, at most count of them.
func TestStoreCreateNics(t *testing.T) {
	f := newFixture(t, nil)
	out := f.c.ok("CreateNics", "vxnet", "vxnet-0", "count", "2", "nic_name", "data", "private_ips.1", "10.70.9.9")
	nics, _ := out["nics"].([]any)
	if len(nics) != 2 {
		t.Fatalf("CreateNics nics %#v, want 2 objects", out["nics"])
	}
	mac := regexp.MustCompile(`^52:54:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`)
	for i, o := range nics {
		n := o.(map[string]any)
		id, _ := n["nic_id"].(string)
		if !mac.MatchString(id) || len(n) != 2 {
			t.Fatalf("nic %d: %v, want nic_id (a MAC address) and private_ip", i, n)
		}
		ip := n["private_ip"].(string)
		if i == 0 && ip != "10.70.9.9" || i == 1 && (ip == "" || ip == "10.70.9.9") {
			t.Fatalf("nic %d private_ip %q", i, ip)
		}
		d := f.c.one("DescribeNics", "nic_set", "nics", id)
		if d["status"] != "available" || d["vxnet_id"] != "vxnet-0" || d["private_ip"] != ip || d["nic_name"] != "data" {
			t.Fatalf("described nic %v", d)
		}
	}
	if n := num(f.c.ok("DescribeNics", "nic_name", "data")["total_count"]); n != 2 {
		t.Fatalf("DescribeNics nic_name: %d", n)
	}
	id := nics[0].(map[string]any)["nic_id"].(string)
	f.c.ok("DeleteNics", "nics.1", id)
	f.finish()
	if d := f.c.one("DescribeNics", "nic_set", "nics", id); d["status"] != "deleted" {
		t.Fatalf("deleted nic %v", d)
	}
	f.c.fail(2100, "CreateNics", "vxnet", "vxnet-nothere1")
	f.c.fail(1100, "CreateNics", "vxnet", "vxnet-0", "private_ips.1", "10.70.9.10", "private_ips.2", "10.70.9.11")
	f.c.fail(1100, "CreateNics", "vxnet", "vxnet-0", "private_ips.1", "not-an-ip")
	f.c.fail(1100, "CreateNics", "vxnet", "vxnet-0", "count", "0")
	if n := num(f.c.ok("DescribeNics")["total_count"]); n != 2 {
		t.Fatalf("refused creates left NICs: %d listed", n)
	}
}

// TestStoreModifyChangesItsTargetOnly: a Modify action changes the item of its required id parameter,
// not another item it names (the security group of ModifyLoadBalancerAttributes keeps its description).
func TestStoreModifyChangesItsTargetOnly(t *testing.T) {
	f := newFixture(t, nil)
	sg := f.c.ok("CreateSecurityGroup", "security_group_name", "web")["security_group_id"].(string)
	f.c.ok("ModifySecurityGroupAttributes", "security_group", sg, "description", "the web tier")
	eip := strs(f.c.ok("AllocateEips", "bandwidth", "2")["eips"])[0]
	lb := f.c.ok("CreateLoadBalancer", "eips.1", eip, "loadbalancer_name", "front")["loadbalancer_id"].(string)
	f.finish()
	f.c.ok("ModifyLoadBalancerAttributes", "loadbalancer", lb, "security_group", sg, "description", "the balancer")
	if g := f.c.one("DescribeSecurityGroups", "security_group_set", "security_groups", sg); g["description"] != "the web tier" {
		t.Fatalf("security group changed by a Modify of a load balancer: %v", g)
	}
	if l := f.c.one("DescribeLoadBalancers", "loadbalancer_set", "loadbalancers", lb); l["description"] != "the balancer" {
		t.Fatalf("load balancer not modified: %v", l)
	}
}

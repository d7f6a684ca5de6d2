package emulator_test

import (
	"testing"
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

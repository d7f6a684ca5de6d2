package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// TestSignatureVerification covers GET and POST on /iaas and /iaas/, both HMAC algorithms, and
// the authentication failures (1100 for missing or repeated parameters, 1200 for keys and
// signatures).
func TestSignatureVerification(t *testing.T) {
	f := newFixture(t, nil)
	good := []struct {
		name string
		mod  func(*client)
	}{
		{"GET /iaas/", func(*client) {}},
		{"GET /iaas", func(c *client) { c.path = "/iaas" }},
		{"POST /iaas/", func(c *client) { c.method = http.MethodPost }},
		{"POST /iaas", func(c *client) { c.method, c.path = http.MethodPost, "/iaas" }},
		{"GET HmacSHA1", func(c *client) { c.algo = "HmacSHA1" }},
		{"POST HmacSHA1", func(c *client) { c.method, c.algo = http.MethodPost, "HmacSHA1" }},
		{"tolerated extras", func(c *client) {
			c.extra = map[string]string{"version": "1", "req_id": "0123abcd", "api_lang": "en",
				"expires": c.now().Add(20 * time.Minute).Format("2006-01-02T15:04:05Z"), "unknown_extra": "x"}
		}},
		{"POST form with + for spaces", func(c *client) {
			c.method = http.MethodPost
			c.extra = map[string]string{"search_word": "a b~*"}
			c.rawBody = func(p map[string]string) string {
				v := url.Values{}
				for k, s := range p {
					v.Set(k, s)
				}
				return v.Encode() // quote_plus style: space -> '+'
			}
		}},
		{"GET unicode value", func(c *client) { c.extra = map[string]string{"search_word": "主机 1"} }},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			f.c.with(func(c *client) { c.t = t; tc.mod(c) }).ok("DescribeInstances")
		})
	}

	bad := []struct {
		name string
		code int
		mod  func(*client)
		kv   []string
	}{
		{"wrong secret", 1200, func(c *client) { c.secret = "nope" }, nil},
		{"wrong secret POST /iaas", 1200, func(c *client) { c.secret, c.method, c.path = "nope", http.MethodPost, "/iaas" }, nil},
		{"wrong secret HmacSHA1", 1200, func(c *client) { c.secret, c.algo = "nope", "HmacSHA1" }, nil},
		{"signed for other path", 1200, func(c *client) {
			c.rawBody = nil
			c.path = "/iaas"
		}, []string{"signature", ""}},
		{"unknown key", 1200, func(c *client) { c.key = "QYUNKNOWN" }, nil},
		{"unknown signature_method", 1200, func(c *client) { c.algo = "HmacMD5" }, nil},
		{"signature_version 2", 1100, func(*client) {}, []string{"signature_version", "2"}},
		{"missing time_stamp", 1100, func(*client) {}, []string{"time_stamp", "\x00"}},
		{"missing access_key_id", 1100, func(*client) {}, []string{"access_key_id", "\x00"}},
		{"missing signature_method", 1100, func(*client) {}, []string{"signature_method", "\x00"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := f.c.with(func(c *client) { c.t = t; tc.mod(c) })
			if tc.name == "signed for other path" {
				// Sign for /iaas/ but send to /iaas.
				p := c.with(func(c *client) { c.path = "/iaas/" }).params("DescribeInstances")
				_, body, err := c.send(p)
				if err != nil {
					t.Fatal(err)
				}
				var out map[string]any
				_ = json.Unmarshal(body, &out)
				if code(out) != 1200 {
					t.Fatalf("ret_code %v, want 1200", out)
				}
				return
			}
			c.fail(tc.code, "DescribeInstances", tc.kv...)
		})
	}

	t.Run("missing signature", func(t *testing.T) {
		p := f.c.params("DescribeInstances")
		delete(p, "signature")
		resp, body, err := f.c.with(func(c *client) { c.rawBody = func(p map[string]string) string { return canonical(p) } }).send(p)
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"ret_code":1100`) {
			t.Fatalf("%v %v %s", err, resp, body)
		}
	})
	t.Run("repeated parameter", func(t *testing.T) {
		c := f.c.with(func(c *client) {
			c.rawBody = func(p map[string]string) string {
				return canonical(p) + "&zone=pek3a&signature=" + pctEncode(p["signature"])
			}
		})
		resp, body, err := c.send(c.params("DescribeInstances"))
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"ret_code":1100`) ||
			!strings.Contains(string(body), "zone") {
			t.Fatalf("%v %v %s", err, resp, body)
		}
	})
}

// TestTimeWindow covers time_stamp skew and expires (1300) and disabling the check.
func TestTimeWindow(t *testing.T) {
	f := newFixture(t, nil)
	ts := func(d time.Duration) string { return f.clk.Now().Add(d).Format("2006-01-02T15:04:05Z") }
	tests := []struct {
		name string
		kv   []string
		want int
	}{
		{"59s behind", []string{"time_stamp", ts(-59 * time.Second)}, 0},
		{"59s ahead", []string{"time_stamp", ts(59 * time.Second)}, 0},
		{"61s behind", []string{"time_stamp", ts(-61 * time.Second)}, 1300},
		{"61s ahead", []string{"time_stamp", ts(61 * time.Second)}, 1300},
		{"zero time (sdk-go TestSigner0)", []string{"time_stamp", "0001-01-01T00:00:00Z"}, 1300},
		{"expires in future, old time_stamp", []string{"time_stamp", ts(-10 * time.Minute), "expires", ts(10 * time.Minute)}, 0},
		{"expires passed", []string{"expires", ts(-time.Second)}, 1300},
		{"bad time_stamp", []string{"time_stamp", "yesterday"}, 1100},
		{"bad expires", []string{"expires", "tomorrow"}, 1100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := f.c.with(func(c *client) { c.t = t })
			if tc.want == 0 {
				c.ok("DescribeZones", tc.kv...)
			} else {
				c.fail(tc.want, "DescribeZones", tc.kv...)
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		g := newFixture(t, func(o *emulator.Options) { o.TimeWindow = -1 })
		g.c.ok("DescribeZones", "time_stamp", "2001-01-01T00:00:00Z", "expires", "2001-01-01T00:00:00Z")
	})
}

// TestProtocolErrors covers unknown actions, missing parameters and zones, and the error shape.
func TestProtocolErrors(t *testing.T) {
	f := newFixture(t, nil)
	msg := f.c.fail(1400, "CreateLoadbalancerPolicy")
	if msg != "PermissionDenied, can't handle this request" {
		t.Fatalf("unknown action message %q", msg)
	}
	if msg := f.c.fail(1100, "", "action", "\x00"); !strings.Contains(msg, "action") {
		t.Fatalf("missing action message %q", msg)
	}
	if msg := f.c.with(func(c *client) { c.zone = "" }).fail(1100, "DescribeInstances"); !strings.Contains(msg, "[zone]") {
		t.Fatalf("missing zone message %q", msg)
	}
	f.c.with(func(c *client) { c.zone = "mars1" }).fail(1100, "DescribeInstances")
	if msg := f.c.fail(1100, "RunInstances", "login_mode", "passwd"); !strings.Contains(msg, "[image_id]") {
		t.Fatalf("missing image_id message %q", msg)
	}
	if msg := f.c.fail(1100, "DescribeInstances", "limit", "ten"); !strings.Contains(msg, "limit") {
		t.Fatalf("bad integer message %q", msg)
	}
	// DescribeZones needs no zone; a region alias is a zone too.
	f.c.with(func(c *client) { c.zone = "" }).ok("DescribeZones")
	f.c.with(func(c *client) { c.zone = "pek3" }).ok("DescribeInstances")

	// The error body has exactly ret_code and message.
	resp, body, err := f.c.send(f.c.params("NoSuchAction"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("error answer: HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 2 || string(m["ret_code"]) != "1400" {
		t.Fatalf("error body %s", body)
	}

	// Other methods and paths.
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+"/iaas/", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE /iaas/: %v %v", resp, err)
	}
	if resp, err := http.Get(f.srv.URL + "/other"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /other: %v %v", resp, err)
	}
}

// TestResponseShape checks JSON types: numbers, RFC 3339 timestamps or null, action names.
func TestResponseShape(t *testing.T) {
	f := newFixture(t, nil)
	run := f.c.ok("RunInstances", "image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd",
		"login_passwd", "Passw0rd", "vxnets.1", "vxnet-0")
	if _, ok := run["ret_code"].(float64); !ok {
		t.Fatalf("ret_code is not a number: %T", run["ret_code"])
	}
	id := strs(run["instances"])[0]
	inst := f.c.one("DescribeInstances", "instance_set", "instances", id)
	for _, k := range []string{"vcpus_current", "memory_current", "instance_class", "sub_code"} {
		if _, ok := inst[k].(float64); !ok {
			t.Errorf("%s = %#v, want a JSON number", k, inst[k])
		}
	}
	for _, k := range []string{"create_time", "status_time"} {
		s, _ := inst[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s = %#v, want RFC 3339 UTC", k, inst[k])
		}
	}
	vol := f.c.ok("CreateVolumes", "size", "10")
	v := f.c.one("DescribeVolumes", "volume_set", "volumes", strs(vol["volumes"])[0])
	if v["lastest_snapshot_time"] != nil || v["latest_snapshot_time"] != nil {
		t.Errorf("lastest_snapshot_time = %#v, latest_snapshot_time = %#v, want null", v["lastest_snapshot_time"], v["latest_snapshot_time"])
	}
	for _, id := range append(strs(run["instances"]), strs(vol["volumes"])...) {
		if !idPattern(id) {
			t.Errorf("id %q does not match <prefix>-[a-z0-9]{8}", id)
		}
	}
	if !idPattern(run["job_id"].(string)) || !strings.HasPrefix(run["job_id"].(string), "j-") {
		t.Errorf("job id %v", run["job_id"])
	}
}

func idPattern(id string) bool {
	prefix, rest, ok := strings.Cut(id, "-")
	if !ok || prefix == "" || len(rest) != 8 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// TestPagination covers offset/limit defaults, the clamp to 100, true total_count and ordering.
func TestPagination(t *testing.T) {
	f := newFixture(t, nil)
	created := map[string]bool{}
	for _, n := range []string{"100", "100", "50"} {
		out := f.c.ok("RunInstances", "image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd",
			"login_passwd", "Passw0rd", "count", n)
		for _, id := range strs(out["instances"]) {
			created[id] = true
		}
		f.clk.Advance(time.Second)
	}
	if len(created) != 250 {
		t.Fatalf("created %d instances", len(created))
	}
	page := func(kv ...string) ([]map[string]any, int) {
		out := f.c.ok("DescribeInstances", kv...)
		return set(t, out, "instance_set"), num(out["total_count"])
	}
	tests := []struct {
		name     string
		kv       []string
		wantLen  int
		wantFrom int // index of the first item in the full order
	}{
		{"defaults", nil, 20, 0},
		{"limit 0 means 20", []string{"limit", "0"}, 20, 0},
		{"negative limit means 20", []string{"limit", "-5"}, 20, 0},
		{"limit 100", []string{"limit", "100"}, 100, 0},
		{"limit 500 clamped", []string{"limit", "500"}, 100, 0},
		{"second page", []string{"offset", "100", "limit", "100"}, 100, 100},
		{"last page", []string{"offset", "200", "limit", "100"}, 50, 200},
		{"past the end", []string{"offset", "250", "limit", "100"}, 0, 250},
		{"far past the end", []string{"offset", "1000"}, 0, 250},
	}
	var all []string
	for off := 0; off < 250; off += 100 {
		items, _ := page("offset", fmt.Sprint(off), "limit", "100")
		for _, it := range items {
			all = append(all, it["instance_id"].(string))
		}
	}
	if len(all) != 250 {
		t.Fatalf("paged through %d instances", len(all))
	}
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] || !created[id] {
			t.Fatalf("instance %s repeated or unknown", id)
		}
		seen[id] = true
	}
	// Newest batch (50) first; within a batch, ordered by id.
	for i := 1; i < 50; i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("order within a batch not by id at %d: %s %s", i, all[i-1], all[i])
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, total := page(tc.kv...)
			if total != 250 || len(items) != tc.wantLen {
				t.Fatalf("got %d items, total_count %d; want %d, 250", len(items), total, tc.wantLen)
			}
			for i, it := range items {
				if it["instance_id"] != all[tc.wantFrom+i] {
					t.Fatalf("item %d = %v, want %s", i, it["instance_id"], all[tc.wantFrom+i])
				}
			}
		})
	}
	t.Run("negative offset", func(t *testing.T) {
		f.c.with(func(c *client) { c.t = t }).fail(1100, "DescribeInstances", "offset", "-1")
	})
	t.Run("filters count in total", func(t *testing.T) {
		// The first batch's job has ended (3s later), the other two have not.
		out := f.c.ok("DescribeInstances", "status.1", "pending", "limit", "10")
		if num(out["total_count"]) != 150 {
			t.Fatalf("pending before the jobs end: %v", out["total_count"])
		}
		f.finish()
		out = f.c.ok("DescribeInstances", "status.1", "running", "limit", "10")
		if num(out["total_count"]) != 250 || len(set(t, out, "instance_set")) != 10 {
			t.Fatalf("running after the jobs: %v", out["total_count"])
		}
	})
}

// TestQuota covers the per-key sliding window and its 2500 answer.
func TestQuota(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.Quota, o.QuotaWindow = 3, time.Minute
		o.Keys = map[string]string{"KEYA": "secret-a", "KEYB": "secret-b"}
	})
	a := f.c.with(func(c *client) { c.key, c.secret = "KEYA", "secret-a" })
	b := f.c.with(func(c *client) { c.key, c.secret = "KEYB", "secret-b" })
	for i := 0; i < 3; i++ {
		a.ok("DescribeZones")
		f.clk.Advance(10 * time.Second)
	}
	if msg := a.fail(2500, "DescribeZones"); !strings.HasPrefix(msg, "QuotaExceeded, ") {
		t.Fatalf("message %q", msg)
	}
	b.ok("DescribeZones")           // other keys are not affected
	f.clk.Advance(31 * time.Second) // the first request leaves the window
	a.ok("DescribeZones")
	a.fail(2500, "DescribeZones")
	st := f.emu.Stats()
	if got := st.Keys["KEYA"].RetCodes["DescribeZones"][2500]; got != 2 {
		t.Fatalf("2500 answers for KEYA = %d, want 2", got)
	}
}

// TestKeyIsolation checks that each access key is its own account.
func TestKeyIsolation(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.Keys = map[string]string{"KEYA": "secret-a", "KEYB": "secret-b"}
	})
	a := f.c.with(func(c *client) { c.key, c.secret = "KEYA", "secret-a" })
	b := f.c.with(func(c *client) { c.key, c.secret = "KEYB", "secret-b" })
	run := a.ok("RunInstances", "image_id", "centos7x64d", "instance_type", "c1m1", "login_mode", "passwd",
		"login_passwd", "Passw0rd", "count", "3")
	id := strs(run["instances"])[0]
	if out := b.ok("DescribeInstances"); num(out["total_count"]) != 0 {
		t.Fatalf("KEYB sees %v instances", out["total_count"])
	}
	if out := b.ok("DescribeInstances", "instances.1", id); num(out["total_count"]) != 0 {
		t.Fatalf("KEYB sees KEYA's instance by id")
	}
	b.fail(2100, "TerminateInstances", "instances.1", id)
	b.fail(2100, "ModifyInstanceAttributes", "instance", id, "instance_name", "x")
	if out := b.ok("DescribeJobs"); num(out["total_count"]) != 0 {
		t.Fatalf("KEYB sees KEYA's jobs")
	}
	st := f.emu.Stats()
	if st.Keys["KEYA"].Resources["instance"] != 3 || st.Keys["KEYB"].Resources["instance"] != 0 {
		t.Fatalf("instance counts %v / %v", st.Keys["KEYA"].Resources, st.Keys["KEYB"].Resources)
	}
	if st.Keys["KEYA"].Requests["RunInstances"] != 1 || st.Keys["KEYB"].Requests["TerminateInstances"] != 1 {
		t.Fatalf("per-key request counts %v / %v", st.Keys["KEYA"].Requests, st.Keys["KEYB"].Requests)
	}
	if st.Keys["KEYB"].RetCodes["TerminateInstances"][2100] != 1 {
		t.Fatalf("per-key ret codes %v", st.Keys["KEYB"].RetCodes)
	}
	// Unauthenticated requests count under "".
	f.c.with(func(c *client) { c.key = "NOBODY" }).fail(1200, "DescribeZones")
	if got := f.emu.Stats().Keys[""].RetCodes["DescribeZones"][1200]; got != 1 {
		t.Fatalf("unauthenticated 1200 count = %d", got)
	}
}

// TestCatalog checks the seeded zones, images, instance types, vxnet-0 and default security group.
func TestCatalog(t *testing.T) {
	f := newFixture(t, nil)
	zones := set(t, f.c.with(func(c *client) { c.zone = "" }).ok("DescribeZones", "limit", "100"), "zone_set")
	var ids []string
	for _, z := range zones {
		ids = append(ids, z["zone_id"].(string))
		if z["status"] != "active" || z["region_id"] == "" {
			t.Errorf("zone %v", z)
		}
	}
	if strings.Join(ids, " ") != "pek3a pek3b pek3c pek3d sh1a sh1b gd2a gd2b ap2a" {
		t.Fatalf("zones %v", ids)
	}
	img := f.c.one("DescribeImages", "image_set", "images", "centos64x86a")
	if img["status"] != "available" || img["provider"] != "system" {
		t.Fatalf("image %v", img)
	}
	it := f.c.one("DescribeInstanceTypes", "instance_type_set", "instance_types", "c2m4")
	if num(it["vcpus_current"]) != 2 || num(it["memory_current"]) != 4096 || it["zone_id"] != "pek3a" {
		t.Fatalf("instance type %v", it)
	}
	v := f.c.one("DescribeVxnets", "vxnet_set", "vxnets", "vxnet-0")
	if v["zone_id"] != "pek3a" {
		t.Fatalf("vxnet-0 %v", v)
	}
	sgs := set(t, f.c.ok("DescribeSecurityGroups"), "security_group_set")
	if len(sgs) != 1 || num(sgs[0]["is_default"]) != 1 || num(sgs[0]["is_applied"]) != 1 {
		t.Fatalf("default security groups in pek3a: %v", sgs)
	}
}

// TestListen serves on a real port and closes cleanly.
func TestListen(t *testing.T) {
	srv, err := emulator.Listen("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ep := srv.Endpoint()
	if !strings.HasPrefix(ep, "http://127.0.0.1:") || !strings.HasSuffix(ep, "/iaas/") {
		t.Fatalf("endpoint %q", ep)
	}
	c := newClient(t, strings.TrimSuffix(ep, "/iaas/"), time.Now)
	c.ok("DescribeZones")
	if srv.Emulator().Stats().Requests["DescribeZones"] != 1 {
		t.Fatal("request not counted")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.send(c.params("DescribeZones")); err == nil {
		t.Fatal("request succeeded after Close")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestContentTypeExact checks that every JSON answer (success, API error, unknown path, wrong
// method, control API) carries exactly "application/json", without a charset: sdk-go before 2023,
// the version the Terraform provider pins, decodes nothing otherwise.
func TestContentTypeExact(t *testing.T) {
	f := newFixture(t, nil)
	check := func(name string, resp *http.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if got := resp.Header.Values("Content-Type"); len(got) != 1 || got[0] != "application/json" {
			t.Errorf("%s: Content-Type %q, want exactly [application/json]", name, got)
		}
	}
	for _, action := range []string{"DescribeZones", "NoSuchAction", "RunInstances"} {
		resp, _, err := f.c.send(f.c.params(action))
		check(action, resp, err)
	}
	resp, _, err := f.c.with(func(c *client) { c.secret = "wrong" }).send(f.c.with(func(c *client) { c.secret = "wrong" }).params("DescribeZones"))
	check("bad signature", resp, err)
	resp, err = http.Get(f.srv.URL + "/other")
	check("unknown path", resp, err)
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+"/iaas/", nil)
	resp, err = http.DefaultClient.Do(req)
	check("DELETE /iaas/", resp, err)
	resp, err = http.Get(f.srv.URL + "/_emulator/stats")
	check("control stats", resp, err)
}

// TestInstanceTypesComplete: DescribeInstanceTypes takes no offset/limit, so one answer holds every
// type (more than a default page of 20), and total_count says how many.
func TestInstanceTypesComplete(t *testing.T) {
	f := newFixture(t, nil)
	out := f.c.ok("DescribeInstanceTypes")
	types := set(t, out, "instance_type_set")
	if len(types) <= 20 || num(out["total_count"]) != len(types) {
		t.Fatalf("%d instance types, total_count %v: want every type (more than 20) in one answer", len(types), out["total_count"])
	}
	seen := map[string]bool{}
	for _, it := range types {
		seen[it["instance_type_id"].(string)] = true
	}
	for _, id := range []string{"small_a", "c1m1", "c16m32", "e2.4xlarge.r4"} {
		if !seen[id] {
			t.Errorf("instance type %s missing", id)
		}
	}
}

// TestRegionZones: every region_id DescribeZones reports is accepted as the zone parameter and covers
// exactly the zones that report it; a resource of a zone outside the region is not seen there.
func TestRegionZones(t *testing.T) {
	f := newFixture(t, nil)
	zones := set(t, f.c.with(func(c *client) { c.zone = "" }).ok("DescribeZones"), "zone_set")
	byRegion := map[string][]string{}
	for _, z := range zones {
		byRegion[z["region_id"].(string)] = append(byRegion[z["region_id"].(string)], z["zone_id"].(string))
	}
	if got := strings.Join(byRegion["pek3"], " "); got != "pek3b pek3c pek3d" {
		t.Fatalf("region pek3 = %q, want pek3b pek3c pek3d (pek3a is a zone of its own)", got)
	}
	kps := map[string]string{} // zone -> key pair id
	for _, z := range zones {
		zone := z["zone_id"].(string)
		kps[zone] = f.c.with(func(c *client) { c.zone = zone }).ok("CreateKeyPair", "keypair_name", zone)["keypair_id"].(string)
	}
	for region, members := range byRegion {
		out := f.c.with(func(c *client) { c.zone = region }).ok("DescribeKeyPairs", "limit", "100")
		var got []string
		for _, kp := range set(t, out, "keypair_set") {
			got = append(got, kp["keypair_name"].(string))
		}
		sort.Strings(got)
		want := append([]string(nil), members...)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("zone=%s sees key pairs of %v, want %v", region, got, want)
		}
	}
	f.c.with(func(c *client) { c.zone = "pek3" }).fail(2100, "DeleteKeyPairs", "keypairs.1", kps["pek3a"])
}

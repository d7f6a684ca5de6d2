package emulator_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// This file signs requests with its own small signer (qingcloud-protocol.md §2.1), independent of
// internal/signer, so that the emulator's verification is checked against a second implementation.

// pctEncode is RFC 3986 percent-encoding: unreserved bytes stay, others become upper-case %XX.
func pctEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// canonical returns the sorted, encoded name=value pairs of params without "signature".
func canonical(params map[string]string) string {
	var keys []string
	for k := range params {
		if k != "signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = pctEncode(k) + "=" + pctEncode(params[k])
	}
	return strings.Join(parts, "&")
}

// testSign returns base64(HMAC(secret, method\npath\ncanonical)).
func testSign(method, path, algo, secret string, params map[string]string) string {
	var h func() hash.Hash = sha256.New
	if algo == "HmacSHA1" {
		h = sha1.New
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n" + canonical(params)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// newClock returns a manual clock for the emulator's Now.
func newClock() *testutil.ManualClock {
	return testutil.NewManualClock(time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC))
}

// client sends signed requests to an emulator.
type client struct {
	t       *testing.T
	base    string // server URL without path
	key     string
	secret  string
	method  string // GET or POST
	path    string // /iaas/ or /iaas
	algo    string
	zone    string
	now     func() time.Time
	httpc   *http.Client
	extra   map[string]string // added to every request
	rawBody func(params map[string]string) string
}

func newClient(t *testing.T, base string, now func() time.Time) *client {
	return &client{t: t, base: base, key: emulator.DefaultAccessKeyID, secret: emulator.DefaultSecretAccessKey,
		method: http.MethodGet, path: "/iaas/", algo: "HmacSHA256", zone: "pek3a", now: now, httpc: &http.Client{Timeout: 30 * time.Second}}
}

// with returns a copy of c changed by f.
func (c *client) with(f func(*client)) *client {
	cc := *c
	f(&cc)
	return &cc
}

// params builds the signed parameter map for action with key/value pairs kv.
func (c *client) params(action string, kv ...string) map[string]string {
	p := map[string]string{
		"action": action, "access_key_id": c.key, "signature_method": c.algo, "signature_version": "1",
		"time_stamp": c.now().UTC().Format("2006-01-02T15:04:05Z"),
	}
	if c.zone != "" {
		p["zone"] = c.zone
	}
	for k, v := range c.extra {
		p[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "\x00" {
			delete(p, kv[i])
			continue
		}
		p[kv[i]] = kv[i+1]
	}
	p["signature"] = testSign(c.method, c.path, c.algo, c.secret, p)
	return p
}

// send sends already signed params and returns the HTTP response and body.
func (c *client) send(p map[string]string) (*http.Response, []byte, error) {
	enc := canonical(p) + "&signature=" + pctEncode(p["signature"])
	if c.rawBody != nil {
		enc = c.rawBody(p)
	}
	var req *http.Request
	var err error
	if c.method == http.MethodPost {
		req, err = http.NewRequest(http.MethodPost, c.base+c.path, strings.NewReader(enc))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(http.MethodGet, c.base+c.path+"?"+enc, nil)
	}
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// call performs action and returns the decoded JSON answer; transport errors fail the test.
func (c *client) call(action string, kv ...string) map[string]any {
	c.t.Helper()
	resp, body, err := c.send(c.params(action, kv...))
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d: %s", action, resp.StatusCode, body)
	}
	// Exactly application/json, as QingCloud sends: older sdk-go versions decode nothing otherwise.
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s: Content-Type %q, want exactly application/json", action, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		c.t.Fatalf("%s: bad JSON %q: %v", action, body, err)
	}
	return out
}

// ok performs action and fails the test unless ret_code is 0.
func (c *client) ok(action string, kv ...string) map[string]any {
	c.t.Helper()
	out := c.call(action, kv...)
	if code(out) != 0 {
		c.t.Fatalf("%s %v: ret_code %v: %v", action, kv, out["ret_code"], out["message"])
	}
	if out["action"] != action+"Response" {
		c.t.Fatalf("%s: action = %v", action, out["action"])
	}
	return out
}

// fail performs action, expects ret_code want and returns the message.
func (c *client) fail(want int, action string, kv ...string) string {
	c.t.Helper()
	out := c.call(action, kv...)
	if code(out) != want {
		c.t.Fatalf("%s %v: ret_code %v (%v), want %d", action, kv, out["ret_code"], out["message"], want)
	}
	msg, _ := out["message"].(string)
	if msg == "" {
		c.t.Fatalf("%s: error without message: %v", action, out)
	}
	return msg
}

func code(out map[string]any) int {
	f, ok := out["ret_code"].(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// set returns the items of a *_set field.
func set(t *testing.T, out map[string]any, name string) []map[string]any {
	t.Helper()
	raw, ok := out[name].([]any)
	if !ok {
		t.Fatalf("%s missing or not an array in %v", name, out)
	}
	items := make([]map[string]any, len(raw))
	for i, r := range raw {
		items[i] = r.(map[string]any)
	}
	return items
}

// one describes a single resource and returns it (fails when absent).
func (c *client) one(action, setName, idParam, id string, kv ...string) map[string]any {
	c.t.Helper()
	items := set(c.t, c.ok(action, append([]string{idParam + ".1", id}, kv...)...), setName)
	if len(items) != 1 {
		c.t.Fatalf("%s %s: %d items", action, id, len(items))
	}
	return items[0]
}

func strs(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i], _ = r.(string)
	}
	return out
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// fixture is an emulator on a fake clock behind httptest, with a client for the default key.
type fixture struct {
	t   *testing.T
	emu *emulator.Emulator
	clk *testutil.ManualClock
	srv *httptest.Server
	c   *client
}

const (
	testPending = time.Second
	testWorking = 2 * time.Second
	testJob     = testPending + testWorking
)

func newFixture(t *testing.T, mod func(*emulator.Options)) *fixture {
	t.Helper()
	clk := newClock()
	opts := emulator.Options{JobPending: testPending, JobWorking: testWorking, Now: clk.Now, Quota: -1}
	if mod != nil {
		mod(&opts)
	}
	emu := emulator.New(opts)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &fixture{t: t, emu: emu, clk: clk, srv: srv, c: newClient(t, srv.URL, clk.Now)}
}

// finish advances the clock past the end of every job started so far.
func (f *fixture) finish() { f.clk.Advance(testJob) }

// jobStatus returns the status of a job.
func (f *fixture) jobStatus(id string) string {
	f.t.Helper()
	return f.c.one("DescribeJobs", "job_set", "jobs", id)["status"].(string)
}

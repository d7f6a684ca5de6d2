package signer_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

const testSecret = "SECRETACCESSKEY"

// decode turns url.Values into the single-valued map a server verifies, failing on repeated keys.
func decode(t testing.TB, vals url.Values) map[string]string {
	t.Helper()
	m := make(map[string]string, len(vals))
	for k, v := range vals {
		if len(v) != 1 {
			t.Fatalf("parameter %q appears %d times", k, len(v))
		}
		m[k] = v[0]
	}
	return m
}

// serverParams decodes a request the way the emulator does: the URL query for GET, the form body for POST.
func serverParams(t testing.TB, r *http.Request) map[string]string {
	t.Helper()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			t.Fatalf("ParseForm: %v", err)
		}
		return decode(t, r.PostForm)
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		t.Fatalf("ParseQuery: %v", err)
	}
	return decode(t, vals)
}

func newRequest(method, path, encoded string) *http.Request {
	if method == http.MethodPost {
		r := httptest.NewRequest(method, "http://api.qingcloud.test"+path, strings.NewReader(encoded))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	return httptest.NewRequest(method, "http://api.qingcloud.test"+path+"?"+encoded, nil)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	params := map[string]string{
		"action":        "RunInstances",
		"instance_name": "云 主机 *~|+&=%",
		"description":   "",
		"vxnets.1":      "vxnet-abcd123|192.168.1.2",
		"userdata":      "a+b/c==",
	}
	for _, alg := range []string{"", signer.HmacSHA256, signer.HmacSHA1} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, path := range []string{"/iaas/", "/iaas"} {
				t.Run(alg+" "+method+" "+path, func(t *testing.T) {
					encoded, err := testSigner(alg).Sign(method, path, params)
					if err != nil {
						t.Fatalf("Sign: %v", err)
					}
					r := newRequest(method, path, encoded)
					got := serverParams(t, r)
					for k, v := range params {
						if got[k] != v {
							t.Errorf("decoded %s = %q, want %q", k, got[k], v)
						}
					}
					if err := signer.Verify(r.Method, r.URL.Path, got, testSecret); err != nil {
						t.Errorf("Verify: %v", err)
					}
				})
			}
		}
	}
}

// TestVerifyToleratesFormEncodings covers encodings other clients send: a Python-style POST body
// (urlencode: spaces as '+', insertion order) and a raw base64 signature whose '+' form-decodes to ' '.
func TestVerifyToleratesFormEncodings(t *testing.T) {
	// Find a request whose signature contains '+', so that the raw form really exercises the tolerance.
	var encoded string
	var sig string
	for i := 0; ; i++ {
		p := map[string]string{"action": "DescribeInstances", "search_word": "web server " + strings.Repeat("x", i)}
		var err error
		encoded, err = testSigner("").Sign(http.MethodPost, "/iaas/", p)
		if err != nil {
			t.Fatal(err)
		}
		vals, _ := url.ParseQuery(encoded)
		if sig = vals.Get("signature"); strings.Contains(sig, "+") {
			break
		}
		if i > 1000 {
			t.Fatal("no signature with '+' found")
		}
	}
	vals, err := url.ParseQuery(encoded)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("python urlencode body", func(t *testing.T) {
		body := vals.Encode() // QueryEscape style: space -> '+'
		if !strings.Contains(body, "web+server") {
			t.Fatalf("body %q does not use '+' for spaces", body)
		}
		r := newRequest(http.MethodPost, "/iaas/", body)
		if err := signer.Verify(http.MethodPost, "/iaas/", serverParams(t, r), testSecret); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
	t.Run("raw base64 signature", func(t *testing.T) {
		rest := url.Values{}
		for k, v := range vals {
			if k != "signature" {
				rest[k] = v
			}
		}
		raw := rest.Encode() + "&signature=" + sig // '+' left unescaped on purpose
		r := newRequest(http.MethodPost, "/iaas/", raw)
		p := serverParams(t, r)
		if !strings.Contains(p["signature"], " ") {
			t.Fatalf("decoded signature %q has no space", p["signature"])
		}
		if err := signer.Verify(http.MethodPost, "/iaas/", p, testSecret); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestVerifyFailures(t *testing.T) {
	encoded, err := testSigner("").Sign(http.MethodGet, "/iaas/", map[string]string{
		"action": "DescribeInstances", "zone": "pek3a", "status.1": "running",
	})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := url.ParseQuery(encoded)
	if err != nil {
		t.Fatal(err)
	}
	good := decode(t, vals)
	if err := signer.Verify(http.MethodGet, "/iaas/", good, testSecret); err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	expected := good["signature"]

	with := func(mod func(p map[string]string)) map[string]string {
		p := make(map[string]string, len(good))
		for k, v := range good {
			p[k] = v
		}
		mod(p)
		return p
	}
	tests := []struct {
		name         string
		method, path string
		params       map[string]string
		secret       string
		want         error
		wantText     string
	}{
		{"wrong secret", "GET", "/iaas/", good, "WRONGSECRET", signer.ErrSignatureMismatch, "signature mismatch"},
		{"tampered value", "GET", "/iaas/", with(func(p map[string]string) { p["zone"] = "pek3b" }), testSecret, signer.ErrSignatureMismatch, ""},
		{"added param", "GET", "/iaas/", with(func(p map[string]string) { p["status.2"] = "stopped" }), testSecret, signer.ErrSignatureMismatch, ""},
		{"removed param", "GET", "/iaas/", with(func(p map[string]string) { delete(p, "status.1") }), testSecret, signer.ErrSignatureMismatch, ""},
		{"empty vs absent", "GET", "/iaas/", with(func(p map[string]string) { p["limit"] = "" }), testSecret, signer.ErrSignatureMismatch, ""},
		{"wrong method", "POST", "/iaas/", good, testSecret, signer.ErrSignatureMismatch, ""},
		{"wrong path", "GET", "/iaas", good, testSecret, signer.ErrSignatureMismatch, ""},
		{"truncated signature", "GET", "/iaas/", with(func(p map[string]string) { p["signature"] = expected[:len(expected)-1] }), testSecret, signer.ErrSignatureMismatch, ""},
		{"lower-cased signature", "GET", "/iaas/", with(func(p map[string]string) { p["signature"] = strings.ToLower(expected) }), testSecret, signer.ErrSignatureMismatch, ""},
		{"garbage signature", "GET", "/iaas/", with(func(p map[string]string) { p["signature"] = "%%%not base64" }), testSecret, signer.ErrSignatureMismatch, ""},
		{"switched to SHA1", "GET", "/iaas/", with(func(p map[string]string) { p["signature_method"] = signer.HmacSHA1 }), testSecret, signer.ErrSignatureMismatch, ""},
		{"unknown method", "GET", "/iaas/", with(func(p map[string]string) { p["signature_method"] = "HmacMD5" }), testSecret, signer.ErrUnknownAlgorithm, "HmacMD5"},
		{"missing method", "GET", "/iaas/", with(func(p map[string]string) { delete(p, "signature_method") }), testSecret, signer.ErrUnknownAlgorithm, "signature_method"},
		{"missing signature", "GET", "/iaas/", with(func(p map[string]string) { delete(p, "signature") }), testSecret, signer.ErrMissingSignature, "signature"},
		{"empty signature", "GET", "/iaas/", with(func(p map[string]string) { p["signature"] = "" }), testSecret, signer.ErrMissingSignature, ""},
		{"empty secret", "GET", "/iaas/", good, "", signer.ErrMissingCredentials, ""},
		{"nil params", "GET", "/iaas/", nil, testSecret, signer.ErrMissingSignature, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signer.Verify(tt.method, tt.path, tt.params, tt.secret)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "signer: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			if tt.wantText != "" && !strings.Contains(msg, tt.wantText) {
				t.Errorf("error %q does not mention %q", msg, tt.wantText)
			}
			for _, secret := range []string{testSecret, tt.secret, expected, url.QueryEscape(expected)} {
				if secret != "" && strings.Contains(msg, secret) {
					t.Errorf("error %q reveals %q", msg, secret)
				}
			}
		})
	}
}

func TestVerifyDoesNotMutate(t *testing.T) {
	encoded, err := testSigner("").Sign("GET", "/iaas/", map[string]string{"action": "DescribeZones"})
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := url.ParseQuery(encoded)
	p := decode(t, vals)
	before := len(p)
	sig := p["signature"]
	if err := signer.Verify("GET", "/iaas/", p, testSecret); err != nil {
		t.Fatal(err)
	}
	if len(p) != before || p["signature"] != sig {
		t.Errorf("Verify mutated params: %v", p)
	}
}

package signer_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "abc", "a b", "+*~|", "云主机", "\xff\x00", "%2B", "2013-08-27T14:30:10Z", ":/?#[]@!$&'()*+,;="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := signer.Escape(in)
		for i := 0; i < len(out); i++ {
			c := out[i]
			switch {
			case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			case c == '%':
				if i+2 >= len(out) || !isUpperHex(out[i+1]) || !isUpperHex(out[i+2]) {
					t.Fatalf("Escape(%q) = %q: bad escape at %d", in, out, i)
				}
				i += 2
			default:
				t.Fatalf("Escape(%q) = %q: byte %q not allowed", in, out, c)
			}
		}
		back, err := url.PathUnescape(out)
		if err != nil || back != in {
			t.Fatalf("PathUnescape(Escape(%q)) = %q, %v", in, back, err)
		}
		if want := refEscapeBytes(in); out != want {
			t.Fatalf("Escape(%q) = %q, reference %q", in, out, want)
		}
	})
}

// fuzzParams builds a params map from lines "name=value" (a line without '=' is a name with an empty value).
func fuzzParams(raw string) map[string]string {
	p := map[string]string{}
	if raw == "" {
		return p
	}
	for line := range strings.SplitSeq(raw, "\n") {
		k, v, _ := strings.Cut(line, "=")
		p[k] = v
	}
	return p
}

func FuzzSignVerify(f *testing.F) {
	f.Add("action=RunInstances\nzone=pek3a\nvxnets.1=vxnet-0|10.0.0.2\ninstance_name=云 主机", "SECRETACCESSKEY", false, false)
	f.Add("action=CreateServerCertificate\ncertificate_content=a+b/c=\r\n", "s e c r e t", true, true)
	f.Add("signature=x\naccess_key_id=evil\ntime_stamp=\nempty", "k", true, false)
	f.Add("=v\n;=&\n%zz=%", "\x00", false, true)
	f.Fuzz(func(t *testing.T, raw, secret string, post, sha1 bool) {
		params := fuzzParams(raw)
		method, path, alg := "GET", "/iaas/", signer.HmacSHA256
		if post {
			method, path = "POST", "/iaas"
		}
		if sha1 {
			alg = signer.HmacSHA1
		}
		s := &signer.Signer{
			Credentials: signer.Credentials{AccessKeyID: "QYACCESSKEYIDEXAMPLE", SecretAccessKey: secret},
			Algorithm:   alg,
			Now:         func() time.Time { return fixedNow },
		}
		encoded, err := s.Sign(method, path, params)
		if secret == "" {
			if !errors.Is(err, signer.ErrMissingCredentials) {
				t.Fatalf("Sign with empty secret: %q, %v", encoded, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}

		vals, err := url.ParseQuery(encoded)
		if err != nil {
			t.Fatalf("ParseQuery(%q): %v", encoded, err)
		}
		got := make(map[string]string, len(vals))
		for k, v := range vals {
			if len(v) != 1 {
				t.Fatalf("%q appears %d times in %q", k, len(v), encoded)
			}
			got[k] = v[0]
		}

		want := make(map[string]string, len(params)+5)
		for k, v := range params {
			want[k] = v
		}
		want["access_key_id"] = "QYACCESSKEYIDEXAMPLE"
		want["signature_method"] = alg
		want["signature_version"] = "1"
		if _, ok := want["time_stamp"]; !ok {
			want["time_stamp"] = "2013-08-27T14:30:10Z"
		}
		delete(want, "signature")
		if ref := refSign(method, path, want, secret); encoded != ref {
			t.Fatalf("Sign disagrees with reference:\n got %q\nwant %q", encoded, ref)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("decoded %q = %q, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want)+1 {
			t.Fatalf("decoded %d params, want %d", len(got), len(want)+1)
		}

		if err := signer.Verify(method, path, got, secret); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := signer.Verify(method, path, got, secret+"x"); !errors.Is(err, signer.ErrSignatureMismatch) {
			t.Fatalf("Verify with wrong secret = %v", err)
		}
	})
}

package signer_test

import (
	"errors"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

var fixedNow = time.Date(2013, 8, 27, 14, 30, 10, 0, time.UTC)

func testSigner(alg string) *signer.Signer {
	return &signer.Signer{
		Credentials: signer.Credentials{AccessKeyID: "QYACCESSKEYIDEXAMPLE", SecretAccessKey: "SECRETACCESSKEY"},
		Algorithm:   alg,
		Now:         func() time.Time { return fixedNow },
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abcXYZ019", "abcXYZ019"},
		{"-_.~", "-_.~"},
		{" ", "%20"},
		{"a b", "a%20b"},
		{"+", "%2B"},
		{"*", "%2A"},
		{"|", "%7C"},
		{"%", "%25"},
		{"%20", "%2520"},
		{":", "%3A"},
		{"2013-08-27T14:30:10Z", "2013-08-27T14%3A30%3A10Z"},
		{":/?#[]@", "%3A%2F%3F%23%5B%5D%40"},
		{"!$&'()*+,;=", "%21%24%26%27%28%29%2A%2B%2C%3B%3D"},
		{"\"<>\\^`{}", "%22%3C%3E%5C%5E%60%7B%7D"},
		{"\x00\t\n\r\x7f", "%00%09%0A%0D%7F"},
		{"é", "%C3%A9"},
		{"云主机", "%E4%BA%91%E4%B8%BB%E6%9C%BA"},
		{"😀", "%F0%9F%98%80"},
		{"\xff\xfe", "%FF%FE"}, // invalid UTF-8 is escaped byte by byte
		{"vxnet-abcd123|192.168.1.2", "vxnet-abcd123%7C192.168.1.2"},
	}
	for _, tt := range tests {
		if got := signer.Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEscapeMatchesReferences compares Escape with both reference encoders on every single byte and on
// mixed strings.
func TestEscapeMatchesReferences(t *testing.T) {
	inputs := []string{"", "plain", "a b+c", "云 主机*~|", "key=value&x=y", "\xc3", "100%", strings.Repeat("ü ", 50)}
	var all []byte
	for c := 0; c < 256; c++ {
		inputs = append(inputs, string([]byte{byte(c)}))
		all = append(all, byte(c))
	}
	inputs = append(inputs, string(all))
	for _, in := range inputs {
		got := signer.Escape(in)
		if want := refEscapeNetURL(in); got != want {
			t.Errorf("Escape(%q) = %q, net/url reference %q", in, got, want)
		}
		if want := refEscapeBytes(in); got != want {
			t.Errorf("Escape(%q) = %q, byte reference %q", in, got, want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"nil", nil, ""},
		{"only signature", map[string]string{"signature": "x"}, ""},
		{"empty value", map[string]string{"b": "", "a": "1"}, "a=1&b="},
		{"byte-wise sort of raw names", map[string]string{
			"vxnets.2": "c", "vxnets.10": "b", "vxnets.1": "a", "Zone": "Z", "_x": "u", "a.b": "d", "a_b": "e",
		}, "Zone=Z&_x=u&a.b=d&a_b=e&vxnets.1=a&vxnets.10=b&vxnets.2=c"},
		// Sorting is by raw name, not by escaped name: raw "a~" (0x7E) < "aé" (0xC3 0xA9), while the
		// escaped forms would sort the other way round ("a%C3%A9" < "a~" because '%' < '~').
		{"names escaped, sorted raw", map[string]string{"aé": "2", "a~": "1", "a b": "0"}, "a%20b=0&a~=1&a%C3%A9=2"},
		{"signature skipped", map[string]string{"signature": "abc", "signature_method": "HmacSHA1"}, "signature_method=HmacSHA1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signer.CanonicalQuery(tt.params); got != tt.want {
				t.Errorf("CanonicalQuery = %q, want %q", got, tt.want)
			}
			if got := refQuery(tt.params); got != tt.want {
				t.Errorf("reference disagrees with the hand-written expectation: %q", got)
			}
		})
	}
}

func TestSignatureUnknownAlgorithm(t *testing.T) {
	for _, alg := range []string{"", "HmacMD5", "hmacsha256", "HMACSHA256", "HmacSHA512"} {
		_, err := signer.Signature("secret", alg, "GET\n/iaas/\n")
		if !errors.Is(err, signer.ErrUnknownAlgorithm) {
			t.Errorf("Signature(%q) error = %v, want ErrUnknownAlgorithm", alg, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+alg+`"`) {
			t.Errorf("Signature(%q) error %q does not name the algorithm", alg, err)
		}
	}
}

// TestSignEdgeVectors signs edge-case parameter sets with Sign and with the reference implementation
// and requires identical output; it also checks the encoded form against expectations written by hand.
func TestSignEdgeVectors(t *testing.T) {
	tests := []struct {
		name         string
		method, path string
		alg          string
		params       map[string]string
		// wantContains are hand-written encodings that must appear in the output.
		wantContains []string
	}{
		{"utf8", "GET", "/iaas/", "", map[string]string{"action": "RunInstances", "instance_name": "测试 机器"},
			[]string{"instance_name=%E6%B5%8B%E8%AF%95%20%E6%9C%BA%E5%99%A8"}},
		{"spaces never plus", "GET", "/iaas/", "", map[string]string{"description": "  two  spaces "},
			[]string{"description=%20%20two%20%20spaces%20"}},
		{"star tilde pipe", "GET", "/iaas", "", map[string]string{"a": "*~|"}, []string{"a=%2A~%7C"}},
		{"reserved", "GET", "/iaas/", "", map[string]string{"q": ":/?#[]@!$&'()*+,;="},
			[]string{"q=%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D"}},
		{"empty values", "GET", "/iaas/", "", map[string]string{"rules.1.val2": "", "rules.1.val3": "", "rules.1.val1": "22"},
			[]string{"rules.1.val1=22&rules.1.val2=&rules.1.val3=&"}},
		{"lb listener pipes", "GET", "/iaas/", "", map[string]string{"listeners.1.healthy_check_option": "10|5|2|5"},
			[]string{"listeners.1.healthy_check_option=10%7C5%7C2%7C5"}},
		{"POST certificate", "POST", "/iaas/", "", map[string]string{
			"action":                  "CreateServerCertificate",
			"certificate_content":     "-----BEGIN CERTIFICATE-----\nMIIB+/x=\n-----END CERTIFICATE-----\n",
			"server_certificate_name": "my cert",
		}, []string{"certificate_content=-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2Fx%3D%0A-----END%20CERTIFICATE-----%0A"}},
		{"HmacSHA1", "GET", "/iaas/", signer.HmacSHA1, map[string]string{"action": "DescribeZones"},
			[]string{"signature_method=HmacSHA1"}},
		{"HmacSHA1 POST utf8", "POST", "/iaas", signer.HmacSHA1, map[string]string{"note": "ü ~*"},
			[]string{"note=%C3%BC%20~%2A"}},
		{"percent and newline", "GET", "/iaas/", "", map[string]string{"x": "100%\r\n"}, []string{"x=100%25%0D%0A"}},
		{"escaped name", "GET", "/iaas/", "", map[string]string{"weird name": "v"}, []string{"weird%20name=v"}},
		{"no params", "GET", "/iaas/", "", nil, []string{"access_key_id=QYACCESSKEYIDEXAMPLE&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&signature="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSigner(tt.alg)
			got, err := s.Sign(tt.method, tt.path, tt.params)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}

			full := maps.Clone(tt.params)
			if full == nil {
				full = map[string]string{}
			}
			full["access_key_id"] = "QYACCESSKEYIDEXAMPLE"
			full["signature_method"] = signer.HmacSHA256
			if tt.alg != "" {
				full["signature_method"] = tt.alg
			}
			full["signature_version"] = "1"
			full["time_stamp"] = "2013-08-27T14:30:10Z"
			if want := refSign(tt.method, tt.path, full, "SECRETACCESSKEY"); got != want {
				t.Errorf("Sign disagrees with reference:\n got %q\nwant %q", got, want)
			}
			if sts, want := signer.StringToSign(tt.method, tt.path, full), refStringToSign(tt.method, tt.path, full); sts != want {
				t.Errorf("StringToSign disagrees with reference:\n got %q\nwant %q", sts, want)
			}
			for _, w := range tt.wantContains {
				if !strings.Contains(got, w) {
					t.Errorf("Sign output %q does not contain %q", got, w)
				}
			}
			if strings.Contains(got, "+") || strings.Contains(got, " ") {
				t.Errorf("Sign output contains '+' or space: %q", got)
			}
			if !strings.HasPrefix(got[strings.LastIndex(got, "&"):], "&signature=") {
				t.Errorf("signature is not the last parameter: %q", got)
			}
		})
	}
}

func TestSignDoesNotMutateAndSetsAuthParams(t *testing.T) {
	in := map[string]string{
		"action":            "DescribeInstances",
		"access_key_id":     "SOMEONE-ELSE",
		"signature_method":  "HmacMD5",
		"signature_version": "2",
		"signature":         "stale",
	}
	orig := maps.Clone(in)
	got, err := testSigner(signer.HmacSHA1).Sign("GET", "/iaas/", in)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !maps.Equal(in, orig) {
		t.Errorf("Sign mutated params: %v, want %v", in, orig)
	}
	vals, err := url.ParseQuery(got)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", got, err)
	}
	want := map[string]string{
		"action":            "DescribeInstances",
		"access_key_id":     "QYACCESSKEYIDEXAMPLE",
		"signature_method":  "HmacSHA1",
		"signature_version": "1",
		"time_stamp":        "2013-08-27T14:30:10Z",
	}
	for k, w := range want {
		if g := vals[k]; len(g) != 1 || g[0] != w {
			t.Errorf("%s = %q, want [%q]", k, g, w)
		}
	}
	if g := vals["signature"]; len(g) != 1 || g[0] == "stale" {
		t.Errorf("signature = %q, want one fresh value", g)
	}
	if len(vals) != len(want)+1 {
		t.Errorf("got %d parameters, want %d: %v", len(vals), len(want)+1, vals)
	}
}

func TestSignTimeStamp(t *testing.T) {
	t.Run("kept when present", func(t *testing.T) {
		got, err := testSigner("").Sign("GET", "/iaas/", map[string]string{"time_stamp": "2020-01-02T03:04:05Z"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "time_stamp=2020-01-02T03%3A04%3A05Z&") {
			t.Errorf("time_stamp not kept: %q", got)
		}
	})
	t.Run("kept when present but empty", func(t *testing.T) {
		got, err := testSigner("").Sign("GET", "/iaas/", map[string]string{"time_stamp": ""})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "&time_stamp=&") {
			t.Errorf("empty time_stamp not kept: %q", got)
		}
	})
	t.Run("Now converted to UTC", func(t *testing.T) {
		s := testSigner("")
		s.Now = func() time.Time {
			return time.Date(2013, 8, 27, 22, 30, 10, 500_000_000, time.FixedZone("CST", 8*3600))
		}
		got, err := s.Sign("GET", "/iaas/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "time_stamp=2013-08-27T14%3A30%3A10Z&") {
			t.Errorf("time_stamp not UTC seconds: %q", got)
		}
	})
	t.Run("nil Now uses time.Now", func(t *testing.T) {
		s := testSigner("")
		s.Now = nil
		before := time.Now().UTC().Truncate(time.Second)
		got, err := s.Sign("GET", "/iaas/", nil)
		after := time.Now().UTC()
		if err != nil {
			t.Fatal(err)
		}
		vals, err := url.ParseQuery(got)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(signer.TimeLayout, vals.Get("time_stamp"))
		if err != nil {
			t.Fatalf("time_stamp %q: %v", vals.Get("time_stamp"), err)
		}
		if ts.Before(before) || ts.After(after) {
			t.Errorf("time_stamp %v not within [%v, %v]", ts, before, after)
		}
	})
}

func TestSignErrors(t *testing.T) {
	tests := []struct {
		name   string
		signer *signer.Signer
		want   error
	}{
		{"nil signer", nil, signer.ErrMissingCredentials},
		{"empty access key", &signer.Signer{Credentials: signer.Credentials{SecretAccessKey: "s3cr3t-value"}}, signer.ErrMissingCredentials},
		{"empty secret", &signer.Signer{Credentials: signer.Credentials{AccessKeyID: "AK"}}, signer.ErrMissingCredentials},
		{"unknown algorithm", &signer.Signer{
			Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "s3cr3t-value"},
			Algorithm:   "HmacSHA512",
		}, signer.ErrUnknownAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.signer.Sign("GET", "/iaas/", map[string]string{"action": "DescribeZones"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Sign error = %v, want %v", err, tt.want)
			}
			if got != "" {
				t.Errorf("Sign returned %q with an error", got)
			}
			if !strings.HasPrefix(err.Error(), "signer: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error %q reveals the secret", err)
			}
			if tt.want == signer.ErrUnknownAlgorithm && !strings.Contains(err.Error(), "HmacSHA512") {
				t.Errorf("error %q does not name the algorithm", err)
			}
		})
	}
}

func TestSignConcurrent(t *testing.T) {
	s := testSigner("")
	params := runInstancesParams()
	want, err := s.Sign("GET", "/iaas/", params)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := s.Sign("GET", "/iaas/", params)
				if err != nil || got != want {
					t.Errorf("concurrent Sign = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// runInstancesParams is a realistic, RunInstances-sized parameter set (without auth parameters).
func runInstancesParams() map[string]string {
	return map[string]string{
		"action":               "RunInstances",
		"zone":                 "pek3a",
		"image_id":             "centos64x86a",
		"instance_type":        "c1m1",
		"cpu":                  "1",
		"memory":               "1024",
		"count":                "2",
		"instance_name":        "web server 云主机",
		"login_mode":           "keypair",
		"login_keypair":        "kp-bn2n77ow",
		"vxnets.1":             "vxnet-abcd123|192.168.1.2",
		"vxnets.2":             "vxnet-0",
		"security_group":       "sg-6ft05wt6",
		"volumes.1":            "vol-aaaaaaaa",
		"volumes.2":            "vol-bbbbbbbb",
		"need_newsid":          "0",
		"need_userdata":        "1",
		"userdata_type":        "plain",
		"userdata_value":       "IyEvYmluL3NoCmVjaG8gaGVsbG8gd29ybGQK+/=",
		"instance_class":       "101",
		"hostname":             "web-1",
		"os_disk_size":         "50",
		"cpu_max":              "4",
		"mem_max":              "8192",
		"time_stamp":           "2013-08-27T14:30:10Z",
		"version":              "1",
		"target_user":          "usr-abcdefgh",
		"resource_group_id":    "rg-12345678",
		"tags.1":               "tag-aaaaaaaa",
		"tags.2":               "tag-bbbbbbbb",
		"description":          "",
		"placement_group_id":   "pg-00000000",
		"gpu":                  "0",
		"os_disk_encryption":   "0",
		"hypervisor":           "kvm",
		"graphics_protocol":    "vnc",
		"graphics_passwd":      "",
		"userdata_path":        "/etc/qingcloud/userdata",
		"userdata_file":        "/etc/rc.local",
		"instance_group":       "ig-aaaaaaaa",
		"dedicated_host_group": "",
	}
}

package signer_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// vector is a fully specified signing case with expected outputs that come from outside this package:
// the official vectors of qingcloud-protocol.md §2.6, and hand-written vectors whose HMAC was computed
// with `openssl dgst -binary -hmac` over a string-to-sign encoded with Python's urllib.parse.quote.
type vector struct {
	name         string
	method, path string
	accessKey    string
	secret       string
	algorithm    string
	// params are all signed parameters (including access_key_id, signature_method, signature_version).
	params map[string]string
	// now is the clock used when params has no time_stamp.
	now time.Time

	wantStringToSign string
	wantSignature    string // standard base64
	wantURLSignature string // base64, URL-encoded, as it appears after "signature="
	// viaSign reports whether Signer.Sign can reproduce the vector (it always adds time_stamp).
	viaSign bool
}

// runInstancesV1 returns the RunInstances parameters of official vectors V1/V2 with the given zone.
func runInstancesV1(zone string) map[string]string {
	return map[string]string{
		"count":             "1",
		"vxnets.1":          "vxnet-0",
		"zone":              zone,
		"instance_type":     "small_b",
		"signature_version": "1",
		"signature_method":  "HmacSHA256",
		"instance_name":     "demo",
		"image_id":          "centos64x86a",
		"login_mode":        "passwd",
		"login_passwd":      "QingCloud20130712",
		"version":           "1",
		"access_key_id":     "QYACCESSKEYIDEXAMPLE",
		"action":            "RunInstances",
		"time_stamp":        "2013-08-27T14:30:10Z",
	}
}

const v1Query = "access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone="

var vectors = []vector{
	{
		name:   "V1 official RunInstances pek3a",
		method: "GET", path: "/iaas/",
		accessKey: "QYACCESSKEYIDEXAMPLE", secret: "SECRETACCESSKEY",
		params:           runInstancesV1("pek3a"),
		wantStringToSign: "GET\n/iaas/\n" + v1Query + "pek3a",
		wantSignature:    "byjccvWIvAftaq+oublemagH3bYAlDWxxLFAzAsyslw=",
		wantURLSignature: "byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D",
		viaSign:          true,
	},
	{
		name:   "V2 sdk-go TestSigner1 pek1",
		method: "GET", path: "/iaas/",
		accessKey: "QYACCESSKEYIDEXAMPLE", secret: "SECRETACCESSKEY",
		params:           runInstancesV1("pek1"),
		wantStringToSign: "GET\n/iaas/\n" + v1Query + "pek1",
		wantSignature:    "32bseYy39DOlatuewpeuW5vpmW51sD1A/JdGynqSpP8=",
		wantURLSignature: "32bseYy39DOlatuewpeuW5vpmW51sD1A%2FJdGynqSpP8%3D",
		viaSign:          true,
	},
	{
		name:   "V3 sdk-go TestSigner0 path without slash",
		method: "GET", path: "/iaas",
		accessKey: "ENV_ACCESS_KEY_ID", secret: "ENV_SECRET_ACCESS_KEY",
		params: map[string]string{
			"access_key_id":     "ENV_ACCESS_KEY_ID",
			"action":            "DescribeInstance",
			"instance.0":        "i-xxxxxxxx",
			"signature_method":  "HmacSHA256",
			"signature_version": "1",
			"verbose":           "1",
		},
		now:              time.Time{}, // 0001-01-01T00:00:00Z
		wantStringToSign: "GET\n/iaas\naccess_key_id=ENV_ACCESS_KEY_ID&action=DescribeInstance&instance.0=i-xxxxxxxx&signature_method=HmacSHA256&signature_version=1&time_stamp=0001-01-01T00%3A00%3A00Z&verbose=1",
		wantSignature:    "ZHa2iQ8PeyP1ktMF9C+DjOQBl537ti9RnYZ1Qqr6KRg=",
		wantURLSignature: "ZHa2iQ8PeyP1ktMF9C%2BDjOQBl537ti9RnYZ1Qqr6KRg%3D",
		viaSign:          true,
	},
	{
		name:   "V4 minimal auth params only",
		method: "GET", path: "/iaas/",
		accessKey: "QYACCESSKEYIDEXAMPLE", secret: "SECRETACCESSKEY",
		params: map[string]string{
			"access_key_id":     "QYACCESSKEYIDEXAMPLE",
			"signature_method":  "HmacSHA256",
			"signature_version": "1",
		},
		wantStringToSign: "GET\n/iaas/\naccess_key_id=QYACCESSKEYIDEXAMPLE&signature_method=HmacSHA256&signature_version=1",
		wantSignature:    "O5EhQeUqTF00g59t5Pb46QPfnPMhUOAcxTWvzlnraeE=",
		wantURLSignature: "O5EhQeUqTF00g59t5Pb46QPfnPMhUOAcxTWvzlnraeE%3D",
		viaSign:          false, // has no time_stamp
	},
	{
		name:   "E1 POST HmacSHA1 UTF-8 space * ~ | reserved empty numeric sort",
		method: "POST", path: "/iaas/",
		accessKey: "QYACCESSKEYIDEXAMPLE", secret: "SECRETACCESSKEY", algorithm: signer.HmacSHA1,
		params: map[string]string{
			"access_key_id":     "QYACCESSKEYIDEXAMPLE",
			"action":            "RunInstances",
			"instance_name":     "云 主机*~|",
			"description":       "",
			"signature_method":  "HmacSHA1",
			"signature_version": "1",
			"time_stamp":        "2013-08-27T14:30:10Z",
			"vxnets.1":          "vxnet-abcd123|192.168.1.2",
			"vxnets.10":         "a+b=c&d",
			"vxnets.2":          "x/y?z#",
		},
		wantStringToSign: "POST\n/iaas/\naccess_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&description=" +
			"&instance_name=%E4%BA%91%20%E4%B8%BB%E6%9C%BA%2A~%7C&signature_method=HmacSHA1&signature_version=1" +
			"&time_stamp=2013-08-27T14%3A30%3A10Z&vxnets.1=vxnet-abcd123%7C192.168.1.2&vxnets.10=a%2Bb%3Dc%26d" +
			"&vxnets.2=x%2Fy%3Fz%23",
		wantSignature:    "d8YfghLVHB//Mo1XUGnAjHpLi+o=",
		wantURLSignature: "d8YfghLVHB%2F%2FMo1XUGnAjHpLi%2Bo%3D",
		viaSign:          true,
	},
	{
		name:   "E2 GET /iaas upper-case name sorts first, sub-delims, newline, percent",
		method: "GET", path: "/iaas",
		accessKey: "QYACCESSKEYIDEXAMPLE", secret: "sec ret/+=",
		params: map[string]string{
			"access_key_id":     "QYACCESSKEYIDEXAMPLE",
			"action":            "DescribeInstances",
			"search_word":       "web server ~*!'()",
			"limit":             "20",
			"status.1":          "running",
			"Zeta":              "UP",
			"signature_method":  "HmacSHA256",
			"signature_version": "1",
			"tag":               "ü\n%",
		},
		now: time.Date(2024, 3, 1, 7, 59, 59, 999_999_999, time.FixedZone("CST", 8*3600)), // 2024-02-29T23:59:59Z
		wantStringToSign: "GET\n/iaas\nZeta=UP&access_key_id=QYACCESSKEYIDEXAMPLE&action=DescribeInstances&limit=20" +
			"&search_word=web%20server%20~%2A%21%27%28%29&signature_method=HmacSHA256&signature_version=1" +
			"&status.1=running&tag=%C3%BC%0A%25&time_stamp=2024-02-29T23%3A59%3A59Z",
		wantSignature:    "I6BjEM8DKreyZmagTJ1wD4BAPLB6mL02tR/Soa046A4=",
		wantURLSignature: "I6BjEM8DKreyZmagTJ1wD4BAPLB6mL02tR%2FSoa046A4%3D",
		viaSign:          true,
	},
}

// signedParams returns a copy of v.params with a time_stamp taken from v.now when absent and Sign applies.
func (v vector) signedParams() map[string]string {
	p := make(map[string]string, len(v.params)+1)
	for k, val := range v.params {
		p[k] = val
	}
	if _, ok := p["time_stamp"]; !ok && v.viaSign {
		p["time_stamp"] = v.now.UTC().Format(signer.TimeLayout)
	}
	return p
}

func (v vector) alg() string {
	if v.algorithm == "" {
		return signer.HmacSHA256
	}
	return v.algorithm
}

func TestVectorsStringToSign(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			got := signer.StringToSign(v.method, v.path, v.signedParams())
			if got != v.wantStringToSign {
				t.Errorf("StringToSign:\n got %q\nwant %q", got, v.wantStringToSign)
			}
			// An extra "signature" entry must not change it.
			p := v.signedParams()
			p["signature"] = "ignored"
			if got := signer.StringToSign(v.method, v.path, p); got != v.wantStringToSign {
				t.Errorf("StringToSign with signature param:\n got %q\nwant %q", got, v.wantStringToSign)
			}
		})
	}
}

func TestVectorsSignature(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			got, err := signer.Signature(v.secret, v.alg(), v.wantStringToSign)
			if err != nil {
				t.Fatalf("Signature: %v", err)
			}
			if got != v.wantSignature {
				t.Errorf("Signature = %q, want %q", got, v.wantSignature)
			}
			if enc := signer.Escape(got); enc != v.wantURLSignature {
				t.Errorf("Escape(signature) = %q, want %q", enc, v.wantURLSignature)
			}
			if enc := url.QueryEscape(got); enc != v.wantURLSignature {
				t.Errorf("url.QueryEscape(signature) = %q, want %q", enc, v.wantURLSignature)
			}
		})
	}
}

func TestVectorsSign(t *testing.T) {
	for _, v := range vectors {
		if !v.viaSign {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			// The caller does not pass the auth parameters; Sign adds them.
			in := map[string]string{}
			for k, val := range v.params {
				switch k {
				case "access_key_id", "signature_method", "signature_version":
					continue
				}
				in[k] = val
			}
			now := v.now
			s := &signer.Signer{
				Credentials: signer.Credentials{AccessKeyID: v.accessKey, SecretAccessKey: v.secret},
				Algorithm:   v.algorithm,
				Now:         func() time.Time { return now },
			}
			got, err := s.Sign(v.method, v.path, in)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			query := strings.SplitN(v.wantStringToSign, "\n", 3)[2]
			want := query + "&signature=" + v.wantURLSignature
			if got != want {
				t.Errorf("Sign:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestVectorsVerify(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			p := v.signedParams()
			p["signature"] = v.wantSignature
			if err := signer.Verify(v.method, v.path, p, v.secret); err != nil {
				t.Errorf("Verify: %v", err)
			}
			wrongPath := "/iaas/"
			if v.path == wrongPath {
				wrongPath = "/iaas"
			}
			if err := signer.Verify(v.method, wrongPath, p, v.secret); !errors.Is(err, signer.ErrSignatureMismatch) {
				t.Errorf("Verify with path %q = %v, want ErrSignatureMismatch", wrongPath, err)
			}
		})
	}
}

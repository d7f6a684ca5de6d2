package signer_test

import (
	"fmt"
	"net/url"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// Signing the official RunInstances example (vector V1 of the protocol reference).
func ExampleSigner_Sign() {
	s := &signer.Signer{
		Credentials: signer.Credentials{AccessKeyID: "QYACCESSKEYIDEXAMPLE", SecretAccessKey: "SECRETACCESSKEY"},
		Now:         func() time.Time { return time.Date(2013, 8, 27, 14, 30, 10, 0, time.UTC) },
	}
	query, err := s.Sign("GET", "/iaas/", map[string]string{
		"action":        "RunInstances",
		"zone":          "pek3a",
		"image_id":      "centos64x86a",
		"instance_type": "small_b",
		"instance_name": "demo",
		"count":         "1",
		"vxnets.1":      "vxnet-0",
		"login_mode":    "passwd",
		"login_passwd":  "QingCloud20130712",
		"version":       "1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("https://api.qingcloud.com/iaas/?" + query)
	// Output:
	// https://api.qingcloud.com/iaas/?access_key_id=QYACCESSKEYIDEXAMPLE&action=RunInstances&count=1&image_id=centos64x86a&instance_name=demo&instance_type=small_b&login_mode=passwd&login_passwd=QingCloud20130712&signature_method=HmacSHA256&signature_version=1&time_stamp=2013-08-27T14%3A30%3A10Z&version=1&vxnets.1=vxnet-0&zone=pek3a&signature=byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D
}

// A server decodes the query (or form body) and verifies it with the secret of access_key_id.
func ExampleVerify() {
	u, _ := url.Parse("https://api.qingcloud.com/iaas/?access_key_id=QYACCESSKEYIDEXAMPLE&signature_method=HmacSHA256&signature_version=1&signature=O5EhQeUqTF00g59t5Pb46QPfnPMhUOAcxTWvzlnraeE%3D")
	params := map[string]string{}
	for k, v := range u.Query() {
		params[k] = v[0]
	}
	fmt.Println(signer.Verify("GET", u.Path, params, "SECRETACCESSKEY"))
	fmt.Println(signer.Verify("GET", u.Path, params, "WRONG"))
	// Output:
	// <nil>
	// signer: verify GET "/iaas/": access_key_id "QYACCESSKEYIDEXAMPLE", signature_method HmacSHA256: signature mismatch
}

func ExampleEscape() {
	fmt.Println(signer.Escape("web server 云*~|"))
	// Output: web%20server%20%E4%BA%91%2A~%7C
}

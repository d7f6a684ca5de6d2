package signer_test

import (
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{signer.HmacSHA256, signer.HmacSHA1} {
		b.Run(alg, func(b *testing.B) {
			s := testSigner(alg)
			params := runInstancesParams()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign("GET", "/iaas/", params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	params := runInstancesParams()
	params["access_key_id"] = "QYACCESSKEYIDEXAMPLE"
	params["signature_method"] = signer.HmacSHA256
	params["signature_version"] = signer.Version
	sig, err := signer.Signature(testSecret, signer.HmacSHA256, signer.StringToSign("GET", "/iaas/", params))
	if err != nil {
		b.Fatal(err)
	}
	params["signature"] = sig
	b.ReportAllocs()
	for b.Loop() {
		if err := signer.Verify("GET", "/iaas/", params, testSecret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEscape(b *testing.B) {
	for _, in := range []string{"vxnet-abcd123", "web server 云主机|2013-08-27T14:30:10Z"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = signer.Escape(in)
			}
		})
	}
}

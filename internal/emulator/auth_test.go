package emulator

import (
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// FuzzSignatureAgreesWithSigner: the emulator's own signature code and the facade's signer, written
// independently, agree on every parameter set (names and values of any bytes), for both algorithms.
func FuzzSignatureAgreesWithSigner(f *testing.F) {
	f.Add("GET", "/iaas/", "instances.1", "i-abc", "search_word", "a b+c/~*é", "secret")
	f.Add("POST", "/iaas", "rules.1.val2", "", "name", "%20\x00\xff", "s")
	f.Fuzz(func(t *testing.T, method, path, k1, v1, k2, v2, secret string) {
		params := map[string]string{"access_key_id": "AK", "time_stamp": "2024-05-01T08:00:00Z", k1: v1, k2: v2}
		delete(params, "signature")
		for _, algo := range []string{"HmacSHA256", "HmacSHA1"} {
			want, err := signer.Signature(secret, algo, signer.StringToSign(method, path, params))
			if err != nil {
				t.Fatal(err)
			}
			if got := signature(signatureHashes[algo], secret, method, path, params); got != want {
				t.Fatalf("%s %v: emulator %s, signer %s", algo, params, got, want)
			}
		}
	})
}

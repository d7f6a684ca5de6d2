package auth

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FuzzAuthenticate feeds arbitrary authorization metadata to the bearer-token parser: it never panics,
// never echoes what the caller sent, and only the configured token (in any accepted spelling) passes.
func FuzzAuthenticate(f *testing.F) {
	const good = "s3cret-token-value"
	a, err := New(Config{Tokens: []Token{{Name: "ci", Hash: sha256.Sum256([]byte(good)), Profile: "team-a"}}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"Bearer " + good, "bearer  " + good + " ", "Basic " + good, "Bearer", "", good, "Bearer x", "Bearer " + good + "\x00"} {
		f.Add(s, "")
		f.Add(s, s)
	}
	f.Add("Bearer "+good, "Bearer other")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		md := metadata.MD{}
		md.Append("authorization", v1)
		if v2 != "" {
			md.Append("authorization", v2)
		}
		id, err := a.Authenticate(metadata.NewIncomingContext(context.Background(), md))
		if err == nil {
			scheme, tok, _ := strings.Cut(strings.TrimSpace(v1), " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) != good || id.Profile != "team-a" {
				t.Fatalf("authorization %q accepted as %+v", v1, id)
			}
			return
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("authorization %q: %v, want UNAUTHENTICATED", v1, err)
		}
		msg := status.Convert(err).Message()
		for _, v := range []string{v1, v2} {
			if len(v) >= 8 && strings.Contains(msg, v) {
				t.Fatalf("error %q echoes the caller's value %q", msg, v)
			}
		}
	})
}

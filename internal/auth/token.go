// Package auth authenticates the facade's callers and maps each one to a credential profile.
//
// Callers present a bearer token ("authorization: Bearer <token>" as gRPC metadata, or the
// Authorization header over REST, which the gateway forwards). The server stores only the SHA-256 of
// each token ([HashToken]); a presented token is hashed and compared in constant time with every stored
// hash. Each token names a profile: a set of QingCloud keys with its own default zone and quota
// budget. The interceptors put the caller's [Identity] in the call's context; package tenant then
// picks the profile's upstream from it ([Profile]), so no caller can act with another's keys.
//
// The token is checked first from the headers alone, before any request body or message is read
// ([Authenticator.CheckHTTP] for REST, [Authenticator.TapHandle] for gRPC), so that a caller without a
// valid token costs the server its headers only; the interceptors then check it again.
//
// Health checking and server reflection are reachable without a token ([Exempt]): load balancers and
// kubelet probe health without credentials, and reflection only describes the public API schema.
//
// Tokens and secrets never appear in errors or logs written by this package.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MinTokenLength is the shortest token [CheckToken] accepts. Tokens are stored as unsalted SHA-256
// hashes, so they must be long and random for the hash not to be guessable.
const MinTokenLength = 32

// HashToken returns the lower-case hex SHA-256 of token: the form tokens are stored in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseHash decodes a stored token hash (64 hex digits, either case). Its error never quotes the
// input, which may be a token pasted by mistake.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	s = strings.TrimSpace(s)
	if len(s) != 2*sha256.Size {
		return h, fmt.Errorf("must be %d hex digits (the SHA-256 of the token, as printed by `server hash-token`), not %d characters", 2*sha256.Size, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errors.New("must be hex digits only (the SHA-256 of the token, as printed by `server hash-token`)")
	}
	return h, nil
}

// CheckToken reports whether token is fit to be issued: at least [MinTokenLength] characters of the
// RFC 6750 token alphabet (letters, digits and -._~+/ with trailing =), so that it travels unchanged
// in an HTTP header and its hash cannot be guessed. The error never quotes the token.
func CheckToken(token string) error {
	if len(token) < MinTokenLength {
		return fmt.Errorf("the token has %d characters; use at least %d random ones (`server hash-token -generate` makes one)", len(token), MinTokenLength)
	}
	body := strings.TrimRight(token, "=")
	for i := 0; i < len(body); i++ {
		if !tokenChar(body[i]) {
			return fmt.Errorf("the token has a character at position %d that is not a letter, digit or one of -._~+/", i+1)
		}
	}
	return nil
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// GenerateToken returns a new random token: 32 bytes from crypto/rand, base64url without padding
// (43 characters).
func GenerateToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Package signer implements QingCloud API signature version 1, as used by the IaaS API at
// https://api.qingcloud.com/iaas/.
//
// A request is signed by sorting all its parameters byte-wise by raw name, percent-encoding names and
// values (RFC 3986 unreserved characters stay literal, everything else becomes upper-case %XX, space is
// %20), joining them as name=value pairs with '&', and computing an HMAC-SHA256 (or HMAC-SHA1) over
//
//	METHOD + "\n" + PATH + "\n" + canonical query
//
// keyed by the secret access key. The standard base64 of the digest is URL-encoded and appended as the
// last parameter, "signature".
//
// Clients use [Signer.Sign]; a server (the built-in emulator) uses [Verify] on decoded request
// parameters. The lower-level functions [Escape], [CanonicalQuery], [StringToSign] and [Signature]
// expose the individual steps.
package signer

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

const (
	// HmacSHA256 is the signature_method value for HMAC-SHA256, the default.
	HmacSHA256 = "HmacSHA256"
	// HmacSHA1 is the signature_method value for HMAC-SHA1.
	HmacSHA1 = "HmacSHA1"
	// Version is the signature_version this package implements.
	Version = "1"
	// TimeLayout is the time_stamp format; times are formatted in UTC.
	TimeLayout = "2006-01-02T15:04:05Z"
)

// Names of the parameters the signer sets: they take part in authentication, so a caller may never
// supply them (package api keeps the one list of reserved parameter names, built on these).
const (
	// ParamAccessKeyID carries the access key id.
	ParamAccessKeyID = "access_key_id"
	// ParamSignatureMethod names the HMAC, HmacSHA256 or HmacSHA1.
	ParamSignatureMethod = "signature_method"
	// ParamSignatureVersion is always Version.
	ParamSignatureVersion = "signature_version"
	// ParamTimeStamp is the signing time; QingCloud refuses a request whose time_stamp is too far off.
	ParamTimeStamp = "time_stamp"
	// ParamSignature is the signature itself, appended last.
	ParamSignature = "signature"
)

// Sentinel errors, usable with [errors.Is]. Errors returned by this package wrap one of them and add
// context.
var (
	// ErrMissingCredentials reports an empty access key id or secret access key.
	ErrMissingCredentials = errors.New("missing credentials")
	// ErrUnknownAlgorithm reports a signature method other than HmacSHA256 and HmacSHA1.
	ErrUnknownAlgorithm = errors.New("unknown signature method")
	// ErrMissingSignature reports a request without a (non-empty) signature parameter.
	ErrMissingSignature = errors.New("missing signature")
	// ErrSignatureMismatch reports a signature that does not match the request.
	ErrSignatureMismatch = errors.New("signature mismatch")
)

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is an RFC 3986 unreserved byte: A-Z a-z 0-9 - _ . ~
func unreserved(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == '~':
		return true
	}
	return false
}

// Escape percent-encodes s as the signature requires: RFC 3986 unreserved bytes (A-Z a-z 0-9 - _ . ~)
// stay, every other byte of the UTF-8 encoding becomes %XX with upper-case hex (space is %20, never '+').
// Bytes that are not valid UTF-8 are escaped one by one as well.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	writeEscaped(&b, s)
	return b.String()
}

// writeEscaped writes Escape(s) to b.
func writeEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	}
}

// escapedLen returns len(Escape(s)) without building it.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n += 2
		}
	}
	return n
}

// CanonicalQuery returns name=value pairs sorted byte-wise by raw name, names and values escaped, joined
// by '&'; the "signature" parameter is skipped. An empty value yields "name=".
func CanonicalQuery(params map[string]string) string {
	keys := make([]string, 0, len(params))
	size := 0
	for k, v := range params {
		if k == ParamSignature {
			continue
		}
		keys = append(keys, k)
		size += escapedLen(k) + escapedLen(v) + 2 // '=' and '&'
	}
	slices.Sort(keys)

	var b strings.Builder
	b.Grow(size)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		writeEscaped(&b, k)
		b.WriteByte('=')
		writeEscaped(&b, params[k])
	}
	return b.String()
}

// StringToSign returns method + "\n" + path + "\n" + CanonicalQuery(params).
// method and path are used exactly as given (for example "GET" and "/iaas/").
func StringToSign(method, path string, params map[string]string) string {
	return method + "\n" + path + "\n" + CanonicalQuery(params)
}

// hashFor returns the hash constructor for a signature_method value.
func hashFor(algorithm string) (func() hash.Hash, error) {
	switch algorithm {
	case HmacSHA256:
		return sha256.New, nil
	case HmacSHA1:
		return sha1.New, nil
	}
	return nil, fmt.Errorf("signer: signature method %q: %w", clip(algorithm), ErrUnknownAlgorithm)
}

// clip shortens untrusted text that goes into an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// mac returns the raw HMAC digest, keyed by secret, of the concatenation of parts.
func mac(h func() hash.Hash, secret string, parts ...string) []byte {
	m := hmac.New(h, []byte(secret))
	for _, p := range parts {
		io.WriteString(m, p)
	}
	return m.Sum(nil)
}

// Signature returns the standard base64 HMAC of stringToSign keyed by secret; algorithm is HmacSHA256
// or HmacSHA1, anything else is an error naming the algorithm.
func Signature(secret, algorithm, stringToSign string) (string, error) {
	h, err := hashFor(algorithm)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(mac(h, secret, stringToSign)), nil
}

// Signer signs requests with one key pair. A Signer is safe for concurrent use as long as its fields
// are not modified.
type Signer struct {
	// Credentials is the key pair used for signing.
	Credentials Credentials
	// Algorithm is the signature_method, HmacSHA256 or HmacSHA1; "" means HmacSHA256.
	Algorithm string
	// Now returns the current time for time_stamp; nil means time.Now.
	Now func() time.Time
}

// Sign copies params, sets access_key_id, signature_method, signature_version=1 and time_stamp
// (time_stamp only if absent), and returns the encoded string "<canonical query>&signature=<url-encoded
// base64>" that is sent as the GET query or the POST form body (application/x-www-form-urlencoded).
// method is "GET" or "POST"; path is signed exactly as sent ("/iaas/" or "/iaas"). A "signature" entry
// in params is ignored. It never mutates params. Errors: empty access key or secret, unknown algorithm.
func (s *Signer) Sign(method, path string, params map[string]string) (string, error) {
	if s == nil {
		return "", fmt.Errorf("signer: nil Signer: %w", ErrMissingCredentials)
	}
	if s.Credentials.AccessKeyID == "" {
		return "", fmt.Errorf("signer: empty access key id: %w", ErrMissingCredentials)
	}
	if s.Credentials.SecretAccessKey == "" {
		return "", fmt.Errorf("signer: empty secret access key for access key id %q: %w",
			clip(s.Credentials.AccessKeyID), ErrMissingCredentials)
	}
	algorithm := s.Algorithm
	if algorithm == "" {
		algorithm = HmacSHA256
	}
	h, err := hashFor(algorithm)
	if err != nil {
		return "", err
	}

	p := make(map[string]string, len(params)+4)
	maps.Copy(p, params)
	delete(p, ParamSignature)
	p[ParamAccessKeyID] = s.Credentials.AccessKeyID
	p[ParamSignatureMethod] = algorithm
	p[ParamSignatureVersion] = Version
	if _, ok := p[ParamTimeStamp]; !ok {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		p[ParamTimeStamp] = now().UTC().Format(TimeLayout)
	}

	query := CanonicalQuery(p)
	sig := base64.StdEncoding.EncodeToString(mac(h, s.Credentials.SecretAccessKey, method, "\n", path, "\n", query))

	var b strings.Builder
	b.Grow(len(query) + len("&signature=") + escapedLen(sig))
	b.WriteString(query)
	b.WriteString("&" + ParamSignature + "=")
	writeEscaped(&b, sig)
	return b.String(), nil
}

// Verify checks the "signature" entry of decoded request params against secret, for a server (our
// emulator): it recomputes over the other params with the algorithm named by params["signature_method"],
// compares in constant time, and tolerates a '+' in the signature that form-decoding turned into ' '.
// It returns a descriptive error (missing signature, unknown method, mismatch) that never contains the
// secret or the expected signature. It does not check signature_version or time_stamp.
func Verify(method, path string, params map[string]string, secret string) error {
	got, ok := params[ParamSignature]
	if !ok || got == "" {
		return fmt.Errorf("signer: verify %s %q: no signature parameter: %w", method, clip(path), ErrMissingSignature)
	}
	algorithm, ok := params[ParamSignatureMethod]
	if !ok {
		return fmt.Errorf("signer: verify %s %q: no signature_method parameter: %w", method, clip(path), ErrUnknownAlgorithm)
	}
	h, err := hashFor(algorithm)
	if err != nil {
		return fmt.Errorf("signer: verify %s %q: signature_method %q: %w", method, clip(path), clip(algorithm), ErrUnknownAlgorithm)
	}
	if secret == "" {
		return fmt.Errorf("signer: verify %s %q: empty secret access key: %w", method, clip(path), ErrMissingCredentials)
	}

	want := base64.StdEncoding.EncodeToString(mac(h, secret, method, "\n", path, "\n", CanonicalQuery(params)))
	// Form decoding turns an unescaped '+' into ' '; base64 never contains a space.
	got = strings.ReplaceAll(got, " ", "+")
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("signer: verify %s %q: access_key_id %q, signature_method %s: %w",
			method, clip(path), clip(params[ParamAccessKeyID]), algorithm, ErrSignatureMismatch)
	}
	return nil
}

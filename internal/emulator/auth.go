package emulator

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sort"
	"strings"
	"sync"
	"time"
)

// authParams are the parameters every API request must carry.
var authParams = []string{"access_key_id", "signature_method", "signature_version", "time_stamp", "signature"}

// authenticate checks the auth parameters, the signature and the request time of params sent with
// method to path. It returns the access key id.
func (e *Emulator) authenticate(method, path string, params map[string]string) (string, *apiError) {
	for _, name := range authParams {
		if params[name] == "" {
			return "", errMissing(name)
		}
	}
	if v := params["signature_version"]; v != "1" {
		return "", errInvalid("signature_version [%s] is not supported, use 1", clip(v))
	}
	keyID := params["access_key_id"]
	secret, ok := e.keys[keyID]
	if !ok {
		return "", newError(1200, "AuthFailure", "access_key_id [%s] does not exist", clip(keyID))
	}
	newHash, ok := signatureHashes[params["signature_method"]]
	if !ok {
		return "", newError(1200, "AuthFailure", "signature_method [%s] is not supported, use HmacSHA256 or HmacSHA1",
			clip(params["signature_method"]))
	}
	// Form decoding turned an unescaped '+' of the signature into a space; base64 has no spaces.
	got := strings.ReplaceAll(params["signature"], " ", "+")
	if !hmac.Equal([]byte(got), []byte(signature(newHash, secret, method, path, params))) {
		return "", newError(1200, "AuthFailure", "signature does not match")
	}
	ts, err := parseTime(params["time_stamp"])
	if err != nil {
		return "", errInvalid("time_stamp [%s] should be like 2013-08-27T14:30:10Z", clip(params["time_stamp"]))
	}
	var expires time.Time
	if v := params["expires"]; v != "" {
		if expires, err = parseTime(v); err != nil {
			return "", errInvalid("expires [%s] should be like 2013-08-27T14:30:10Z", clip(v))
		}
	}
	if e.timeWindow < 0 {
		return keyID, nil
	}
	now := e.now()
	if !expires.IsZero() {
		if now.After(expires) {
			return "", newError(1300, "RequestExpired", "request expired at [%s]", expires.UTC().Format(timeLayout))
		}
		return keyID, nil
	}
	if d := now.Sub(ts); d > e.timeWindow || d < -e.timeWindow {
		return "", newError(1300, "RequestExpired", "time_stamp [%s] is more than %s away from server time [%s]",
			ts.UTC().Format(timeLayout), e.timeWindow, now.UTC().Format(timeLayout))
	}
	return keyID, nil
}

// The emulator verifies signatures with its own code (qingcloud-protocol.md §2.1), not the facade's
// internal/signer, so that it checks the facade's signer against a second implementation.

// signatureHashes are the signature_method values QingCloud accepts.
var signatureHashes = map[string]func() hash.Hash{"HmacSHA256": sha256.New, "HmacSHA1": sha1.New}

// signature is base64(HMAC(secret, method + "\n" + path + "\n" + canonical query)), where the
// canonical query is every parameter but signature, sorted by name byte-wise, as name=value with
// both percent-encoded (RFC 3986 unreserved bytes stay, others become upper-case %XX), joined by &.
func signature(newHash func() hash.Hash, secret, method, path string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		if name != "signature" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n"))
	for i, name := range names {
		if i > 0 {
			m.Write([]byte{'&'})
		}
		m.Write([]byte(percentEncode(name) + "=" + percentEncode(params[name])))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// percentEncode keeps the RFC 3986 unreserved bytes and writes every other byte as upper-case %XX
// (a space is %20, never +).
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}

// parseTime parses a time_stamp or expires value: 2006-01-02T15:04:05Z, or any RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(timeLayout, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// quotaTracker enforces a sliding-window request quota per access key.
type quotaTracker struct {
	limit  int // <0: unlimited
	window time.Duration
	mu     sync.Mutex
	logs   map[string]*ring
}

func newQuotaTracker(limit int, window time.Duration) *quotaTracker {
	return &quotaTracker{limit: limit, window: window, logs: make(map[string]*ring)}
}

func (q *quotaTracker) reset() {
	q.mu.Lock()
	q.logs = make(map[string]*ring)
	q.mu.Unlock()
}

// allow records a request of key at now and reports whether it is within the quota. Rejected
// requests are not recorded, so a client that backs off recovers as the window slides.
func (q *quotaTracker) allow(key string, now time.Time) bool {
	if q.limit < 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.logs[key]
	if l == nil {
		l = &ring{}
		q.logs[key] = l
	}
	cutoff := now.Add(-q.window)
	for l.n > 0 && !l.oldest().After(cutoff) {
		l.pop()
	}
	if l.n >= q.limit {
		return false
	}
	l.push(now)
	return true
}

// ring is a growable FIFO of times.
type ring struct {
	buf     []time.Time
	head, n int
}

func (r *ring) oldest() time.Time { return r.buf[r.head] }

func (r *ring) pop() {
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

func (r *ring) push(t time.Time) {
	if r.n == len(r.buf) {
		nb := make([]time.Time, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = t
	r.n++
}

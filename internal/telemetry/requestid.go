package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/grpc/metadata"
)

// RequestIDHeader is the HTTP header and gRPC metadata key of request ids, both ways: a caller may
// send one (it is kept when it is sane, see ValidRequestID), and every answer carries the one used.
const RequestIDHeader = "x-request-id"

// maxRequestIDLen bounds a caller-supplied request id.
const maxRequestIDLen = 128

// Call is what the telemetry knows about the call a context belongs to.
type Call struct {
	// RequestID identifies the call in logs, spans and the x-request-id answer header.
	RequestID string
	// Action is the QingCloud action the call runs ("" for calls that are not actions).
	Action string
}

type callKey struct{}

// WithCall returns a context carrying c.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the Call of ctx, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// RequestID returns the request id of the call of ctx, or "".
func RequestID(ctx context.Context) string {
	if c := CallFrom(ctx); c != nil {
		return c.RequestID
	}
	return ""
}

// NewRequestID returns a fresh random request id: 32 lowercase hex digits.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// ValidRequestID reports whether a caller-supplied id is kept: 1 to 128 characters of ASCII letters,
// digits and "-_.:/+=@". Anything else (spaces, control characters, quotes, longer ids) is replaced
// by a fresh id, so ids are safe in logs, headers and span attributes.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// pickRequestID returns the first valid id of ids, or a new one.
func pickRequestID(ids ...string) string {
	for _, id := range ids {
		if ValidRequestID(id) {
			return id
		}
	}
	return NewRequestID()
}

// incomingRequestID returns the request id of the incoming gRPC metadata of ctx, or a new one.
func incomingRequestID(ctx context.Context) string {
	// Not FromIncomingContext, which copies the whole metadata.
	return pickRequestID(metadata.ValueFromIncomingContext(ctx, RequestIDHeader)...)
}

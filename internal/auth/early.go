package auth

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// MaxUnauthenticatedStreams bounds the gRPC calls without a valid token that may be open at once on a
// server with tokens: calls of the [Exempt] methods (health, reflection). Their request messages are
// tiny, but grpc-go reads a message of up to its 4 MiB limit before any handler runs, so without a
// bound anyone could make the server hold that much per call. Callers with a valid token are not
// counted. A call over the bound is refused with RESOURCE_EXHAUSTED before its message is read.
const MaxUnauthenticatedStreams = 32

// These checks run before a request's body or message is read, so that a caller without a valid
// token costs the server its headers only: the interceptors run too late for that, since grpc-go
// reads a unary call's message (up to 4 MiB) and grpc-gateway decodes a REST body (up to 8 MiB)
// before any interceptor sees the call.

// CheckHTTP authenticates a REST request from its Authorization header alone, before its body is
// read, and returns the same UNAUTHENTICATED status as [Authenticator.Authenticate] when it carries
// no valid token. The auth interceptors check the call again when it reaches gRPC. Without tokens
// (anonymous use, or mutual TLS alone, which the TLS handshake checks) it accepts every request.
func (a *Authenticator) CheckHTTP(r *http.Request) error {
	if a.Anonymous() {
		return nil
	}
	md := metadata.MD{"authorization": r.Header.Values("Authorization")}
	_, err := a.Authenticate(metadata.NewIncomingContext(r.Context(), md))
	return err
}

// TapHandle returns a grpc.InTapHandle that refuses, from the headers alone and before any message
// is read, every call without a valid token but those of the [Exempt] methods, and holds those to
// [MaxUnauthenticatedStreams] at a time. Without tokens it accepts every call.
func (a *Authenticator) TapHandle() tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if a.Anonymous() {
			return ctx, nil
		}
		_, err := a.Authenticate(metadata.NewIncomingContext(ctx, info.Header))
		if err == nil {
			return ctx, nil
		}
		if !Exempt(info.FullMethodName) {
			return nil, err
		}
		select {
		case a.exempt <- struct{}{}:
		default:
			return nil, tooManyUnauthenticated()
		}
		// The stream's context ends when the call ends, however it ends.
		context.AfterFunc(ctx, func() { <-a.exempt })
		return ctx, nil
	}
}

func tooManyUnauthenticated() error {
	msg := "too many calls without a token are in progress; retry shortly, or send a bearer token"
	return qcerr.New(codes.ResourceExhausted, "UNAUTHENTICATED_CALLS_EXHAUSTED", msg, nil)
}

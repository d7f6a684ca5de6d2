package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// Token is one accepted bearer token, stored as its SHA-256.
type Token struct {
	// Name labels the token in logs (never the token or its hash); e.g. "team-a-ci".
	Name string
	// Hash is the SHA-256 of the token ([HashToken], [ParseHash]).
	Hash [sha256.Size]byte
	// Profile is the credential profile callers with this token act as.
	Profile string
}

// Identity is the authenticated caller of a call.
type Identity struct {
	// Profile is the credential profile the caller acts as.
	Profile string
	// Token is the Name of the token the caller presented; empty when no token was needed.
	Token string
}

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the caller's identity put in ctx by the interceptors.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Config configures an Authenticator. Exactly one of Tokens and Anonymous is set.
type Config struct {
	// Tokens are the accepted bearer tokens; when set, every call but the [Exempt] ones needs one.
	Tokens []Token
	// Anonymous is the profile of every caller when no tokens are configured (local use on loopback,
	// or mutual TLS as the only caller check).
	Anonymous string
}

// Authenticator checks callers and puts their Identity in the call context.
type Authenticator struct {
	tokens    []Token
	anonymous string
	exempt    chan struct{} // a slot per open unauthenticated call of an Exempt method (TapHandle)
}

// New validates cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	switch {
	case len(cfg.Tokens) == 0 && cfg.Anonymous == "":
		return nil, errors.New("auth: configure bearer tokens or an anonymous profile")
	case len(cfg.Tokens) > 0 && cfg.Anonymous != "":
		return nil, errors.New("auth: bearer tokens and an anonymous profile exclude each other")
	}
	seen := map[[sha256.Size]byte]string{}
	for i, t := range cfg.Tokens {
		if t.Profile == "" {
			return nil, fmt.Errorf("auth: token %d (%s) names no profile", i+1, t.Name)
		}
		if other, dup := seen[t.Hash]; dup {
			return nil, fmt.Errorf("auth: tokens %s and %s have the same hash", other, t.Name)
		}
		seen[t.Hash] = t.Name
	}
	return &Authenticator{tokens: append([]Token(nil), cfg.Tokens...), anonymous: cfg.Anonymous,
		exempt: make(chan struct{}, MaxUnauthenticatedStreams)}, nil
}

// Anonymous reports whether callers need no token.
func (a *Authenticator) Anonymous() bool { return len(a.tokens) == 0 }

// Authenticate returns the identity of the caller of the incoming call in ctx, or an UNAUTHENTICATED
// status that says how to authenticate. It never echoes what the caller sent.
func (a *Authenticator) Authenticate(ctx context.Context) (Identity, error) {
	if len(a.tokens) == 0 {
		return Identity{Profile: a.anonymous}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return Identity{}, unauthenticated("MISSING_CREDENTIALS", "this server requires a bearer token: send the metadata \"authorization: Bearer <token>\" (over REST, the header \"Authorization: Bearer <token>\")")
	}
	// The REST gateway may pass the Authorization header on more than once; repeats of one value are
	// one credential, but different values are ambiguous and refused (a caller must not be able to
	// smuggle a second credential next to the first, e.g. as Grpc-Metadata-Authorization).
	for _, v := range vals[1:] {
		if strings.TrimSpace(v) != strings.TrimSpace(vals[0]) {
			return Identity{}, unauthenticated("INVALID_CREDENTIALS", "send exactly one authorization value (\"Bearer <token>\")")
		}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, unauthenticated("INVALID_CREDENTIALS", "the authorization value must be \"Bearer <token>\"")
	}
	t, ok := a.match(token)
	if !ok {
		return Identity{}, unauthenticated("INVALID_CREDENTIALS", "the bearer token is not valid for this server")
	}
	return Identity{Profile: t.Profile, Token: t.Name}, nil
}

// match compares the token's hash with every stored hash in constant time, without stopping at the
// first match, so the time taken says nothing about which (or whether a) token matched.
func (a *Authenticator) match(token string) (Token, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], a.tokens[i].Hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Token{}, false
	}
	return a.tokens[found], true
}

// Exempt reports whether fullMethod ("/package.Service/Method") is reachable without a token: gRPC
// health checking (probes of load balancers and kubelet carry no credentials) and server reflection
// (it describes the public API schema only and lets grpcurl work without proto files).
func Exempt(fullMethod string) bool {
	svc, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch svc {
	case "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
		return true
	}
	return false
}

// UnaryInterceptor authenticates every unary call but the Exempt ones.
func (a *Authenticator) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if Exempt(info.FullMethod) {
			return handler(ctx, req)
		}
		id, err := a.Authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return handler(NewContext(ctx, id), req)
	}
}

// StreamInterceptor authenticates every streaming call but the Exempt ones.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if Exempt(info.FullMethod) {
			return handler(srv, ss)
		}
		id, err := a.Authenticate(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &identityStream{ServerStream: ss, ctx: NewContext(ss.Context(), id)})
	}
}

// identityStream is a ServerStream whose context carries the caller's Identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// unauthenticated is UNAUTHENTICATED with the ErrorInfo every error of this service carries.
func unauthenticated(reason, msg string) error {
	return qcerr.New(codes.Unauthenticated, reason, msg, nil)
}

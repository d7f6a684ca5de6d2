// Package idempotency makes mutations safe to retry for callers: a call that carries an idempotency
// key (gRPC metadata "idempotency-key", REST header Idempotency-Key, as in the IETF
// Idempotency-Key draft and AIP-155's request_id) runs once; its outcome is recorded with a
// fingerprint of the request, and a repeat with the same key gets the recorded outcome without a
// second upstream call.
//
// The rules, per tenant (keys of different tenants never meet):
//
//   - The first call with a key runs. It runs to its end even when its caller goes away (a dropped
//     connection, a canceled client), so that a retry learns what happened.
//   - Its outcome is recorded when it may have changed something: the answer, or an error whose
//     ErrorInfo says may_have_applied=true. An error that proves nothing was applied (an invalid
//     request, a spent quota budget, a request that never left) frees the key, so a retry runs again.
//   - A repeat with the same key and the same request gets the recorded outcome (header
//     "idempotent-replayed: true"); a repeat while the first still runs waits for it, bounded by the
//     repeat's own deadline (then DEADLINE_EXCEEDED saying so).
//   - The same key with a different request (another method or other parameters) is refused with
//     FAILED_PRECONDITION, reason IDEMPOTENCY_KEY_REUSED (HTTP 422 over REST).
//   - Read-only calls ignore the key.
//
// Outcomes are kept for a retention period (24 h by default) in process memory ([Memory]) or in a
// shared store, so that a retry that lands on another replica gets the same answer.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

const (
	// MetadataKey is the gRPC metadata key of an idempotency key; REST callers send the
	// Idempotency-Key header, which the gateway forwards under this key.
	MetadataKey = "idempotency-key"
	// ReplayedHeader is set to "true" on the response header of an answer that was replayed.
	ReplayedHeader = "idempotent-replayed"
	// ReasonKeyReused is the ErrorInfo reason of a key reused for another request.
	ReasonKeyReused = "IDEMPOTENCY_KEY_REUSED"
	// ReasonStillRunning is the ErrorInfo reason of a repeat whose deadline passed while the first
	// call with its key was still running.
	ReasonStillRunning = "IDEMPOTENT_CALL_RUNNING"
	// MaxKeyLen bounds a key's length.
	MaxKeyLen = 255
	// DefaultRunTimeout bounds the first call of a key once it runs detached from its caller.
	DefaultRunTimeout = 2 * time.Minute
)

// Options configure a Guard.
type Options struct {
	// Store keeps the outcomes. Required.
	Store Store
	// Tenant names the caller's tenant (its credential profile); keys are scoped by it. Required.
	Tenant func(ctx context.Context) (string, error)
	// Mutation reports whether a call changes something (only those honour keys). Required.
	Mutation func(fullMethod string, req any) bool
	// RunTimeout bounds a keyed call after its caller went away; default DefaultRunTimeout. It should
	// be at least the upstream call timeout.
	RunTimeout time.Duration
	// Detach returns the context a keyed call runs with: free of its caller's cancellation, but still
	// canceled by the server's shutdown (whose drain then waits for it). nil means
	// context.WithoutCancel.
	Detach func(ctx context.Context) (context.Context, context.CancelFunc)
}

// Guard applies idempotency keys to unary calls.
type Guard struct {
	opts Options
}

// New returns a Guard.
func New(o Options) (*Guard, error) {
	if o.Store == nil || o.Tenant == nil || o.Mutation == nil {
		return nil, errors.New("idempotency: Options.Store, Tenant and Mutation are required")
	}
	if o.RunTimeout <= 0 {
		o.RunTimeout = DefaultRunTimeout
	}
	return &Guard{opts: o}, nil
}

// UnaryServerInterceptor applies the key of each keyed mutation. It must run after authentication
// (it reads the caller's tenant).
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		key, err := keyFrom(ctx)
		if err != nil || key == "" {
			return nilOr(err, handler, ctx, req)
		}
		if !g.opts.Mutation(info.FullMethod, req) {
			return handler(ctx, req)
		}
		msg, ok := req.(proto.Message)
		if !ok {
			return handler(ctx, req)
		}
		tenant, err := g.opts.Tenant(ctx)
		if err != nil {
			return nil, err
		}
		fp, err := Fingerprint(info.FullMethod, msg)
		if err != nil {
			return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("idempotency: fingerprint the request: %v", err), nil)
		}
		skey := scopedKey(tenant, key)
		claimTTL := g.opts.RunTimeout + time.Minute
		o, err := g.opts.Store.Begin(ctx, skey, fp, claimTTL)
		switch {
		case errors.Is(err, ErrConflict):
			return nil, qcerr.New(codes.FailedPrecondition, ReasonKeyReused,
				fmt.Sprintf("idempotency key %q was first used for another request (another method or other parameters); use a new key for a new request", qcerr.Clip(key, qcerr.MaxEcho)),
				map[string]string{"idempotency_key": qcerr.Clip(key, qcerr.MaxEcho), "method": info.FullMethod})
		case errors.Is(err, ErrFull):
			return nil, qcerr.New(codes.ResourceExhausted, "IDEMPOTENCY_STORE_FULL",
				"the server holds as many idempotency keys as it may; retry later or without a key", nil)
		case ctx.Err() != nil:
			c := codes.DeadlineExceeded
			if errors.Is(ctx.Err(), context.Canceled) {
				c = codes.Canceled
			}
			return nil, qcerr.New(c, ReasonStillRunning,
				fmt.Sprintf("the first call with idempotency key %q is still running; repeat the call with the same key to get its outcome", qcerr.Clip(key, qcerr.MaxEcho)),
				map[string]string{"idempotency_key": qcerr.Clip(key, qcerr.MaxEcho)})
		case err != nil:
			return nil, qcerr.New(codes.Unavailable, "IDEMPOTENCY_STORE_UNAVAILABLE", fmt.Sprintf("idempotency store: %v", err), nil)
		case o != nil:
			_ = grpc.SetHeader(ctx, metadata.Pairs(ReplayedHeader, "true"))
			return replay(o)
		}
		return g.run(ctx, skey, req, handler)
	}
}

// run runs the first call of a key detached from its caller's cancellation, and records or frees
// the key by its outcome.
func (g *Guard) run(ctx context.Context, skey string, req any, handler grpc.UnaryHandler) (any, error) {
	dctx, release := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if g.opts.Detach != nil {
		dctx, release = g.opts.Detach(ctx)
	}
	defer release()
	rctx, cancel := context.WithTimeout(dctx, g.opts.RunTimeout)
	defer cancel()
	resp, herr := handler(rctx, req)
	// The store's own calls must not depend on the caller either.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	if herr != nil && !qcerr.MayHaveApplied(herr) {
		_ = g.opts.Store.Abandon(sctx, skey)
		return resp, herr
	}
	o, err := record(resp, herr)
	if err != nil {
		_ = g.opts.Store.Abandon(sctx, skey)
		return resp, herr
	}
	_ = g.opts.Store.Finish(sctx, skey, o)
	return resp, herr
}

// nilOr returns err when set, else runs the handler.
func nilOr(err error, handler grpc.UnaryHandler, ctx context.Context, req any) (any, error) {
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// keyFrom reads the idempotency key of the call: "" when it has none, INVALID_ARGUMENT when it is
// malformed.
func keyFrom(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vs := md.Get(MetadataKey)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", badKey("send the idempotency key once")
	}
	k := vs[0]
	if k == "" || len(k) > MaxKeyLen {
		return "", badKey(fmt.Sprintf("the idempotency key must be 1 to %d characters long", MaxKeyLen))
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", badKey("the idempotency key must be printable ASCII without spaces (a UUID is a good key)")
		}
	}
	return k, nil
}

func badKey(msg string) error {
	return qcerr.BadRequest(qcerr.Violation(MetadataKey, msg))
}

// Fingerprint identifies a request: its method and its parameters (deterministic binary form).
func Fingerprint(fullMethod string, req proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(fullMethod))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// scopedKey is the store key of a caller's key: tenant and key hashed, so that the store never holds
// a caller's key text and keys of different tenants never meet.
func scopedKey(tenant, key string) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// record turns a call's result into an Outcome.
func record(resp any, err error) (*Outcome, error) {
	if err != nil {
		b, merr := proto.Marshal(status.Convert(err).Proto())
		if merr != nil {
			return nil, merr
		}
		return &Outcome{Status: b}, nil
	}
	m, ok := resp.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("response %T is not a proto message", resp)
	}
	m = withoutSecrets(m)
	a, err := anypb.New(m)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(a)
	if err != nil {
		return nil, err
	}
	return &Outcome{Response: b}, nil
}

// ReasonInterrupted is the ErrorInfo reason of the outcome of a key whose first call never reported
// back (its server stopped while it ran).
const ReasonInterrupted = "IDEMPOTENT_CALL_INTERRUPTED"

// interrupted is the recorded outcome of a claim that outlived its TTL: the call that held it never
// reported (its server stopped while it ran), so it may have been applied. A repeat must not run it
// again blindly.
func interrupted() *Outcome {
	st := qcerr.Status(codes.Aborted, ReasonInterrupted,
		"the first call with this idempotency key was interrupted (its server stopped) after it may have reached QingCloud; check the resources before repeating the change with a new key",
		map[string]string{"may_have_applied": "true"})
	b, err := proto.Marshal(st.Proto())
	if err != nil {
		panic("idempotency: marshal a status: " + err.Error())
	}
	return &Outcome{Status: b}
}

// secretFields are the names of answer fields that carry one-time secrets (CreateKeyPair's
// private_key): they are never recorded, so no store (Redis included) ever holds them. A replay has
// the field empty: the resource exists, and its secret was delivered to the first call only.
var secretFields = map[protoreflect.Name]bool{
	"private_key": true, "priv_key": true, "secret_access_key": true,
}

// withoutSecrets returns m, or a copy of it with every secret field cleared (nested messages too).
func withoutSecrets(m proto.Message) proto.Message {
	if !hasSecret(m.ProtoReflect()) {
		return m
	}
	c := proto.Clone(m)
	clearSecrets(c.ProtoReflect())
	return c
}

// hasSecret reports whether m or a message inside it has a secret field set.
func hasSecret(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case secretFields[fd.Name()]:
			found = true
		case fd.Message() != nil && fd.IsList():
			for i := 0; i < v.List().Len() && !found; i++ {
				found = hasSecret(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			found = hasSecret(v.Message())
		}
		return !found
	})
	return found
}

// clearSecrets clears every secret field of m and the messages inside it.
func clearSecrets(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case secretFields[fd.Name()]:
			m.Clear(fd)
		case fd.Message() != nil && fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				clearSecrets(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			clearSecrets(v.Message())
		}
		return true
	})
}

// replay returns a recorded outcome as the call's result.
func replay(o *Outcome) (any, error) {
	if o.Status != nil {
		var st spb.Status
		if err := proto.Unmarshal(o.Status, &st); err != nil {
			return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("idempotency: recorded error unreadable: %v", err), nil)
		}
		return nil, status.ErrorProto(&st)
	}
	var a anypb.Any
	if err := proto.Unmarshal(o.Response, &a); err != nil {
		return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("idempotency: recorded answer unreadable: %v", err), nil)
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, qcerr.New(codes.Internal, "INTERNAL", fmt.Sprintf("idempotency: recorded answer unreadable: %v", err), nil)
	}
	return m, nil
}

// Package tenant decides which upstream serves a call. A [Tenant] is one credential profile as the
// server uses it: the upstream client that calls QingCloud with the profile's keys and quota budget,
// and the profile's default zone. A [Resolver] picks the tenant of the caller in a call's context
// (the [auth.Identity] the auth interceptors put there), so that no caller can act with another's keys.
//
// [Build] makes the tenants of a configuration: one upstream client per profile, one quota budget per
// access key (profiles sharing a key share its budget), all sending through one HTTP transport
// ([backend.NewTransport]); and, when no QingCloud keys are configured, it starts the built-in emulator
// with one isolated account per profile.
package tenant

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
)

// Caller sends one QingCloud action with flattened parameters and returns the raw JSON of a
// ret_code 0 answer, or a gRPC status error. It is the part of [Upstream] the watch pollers use.
type Caller interface {
	Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error)
}

// Upstream calls QingCloud with one profile's keys; *backend.Client implements it.
type Upstream interface {
	Caller
	// InvokeMethod calls the action of m (resolved by package api) with a typed request and returns
	// the typed response.
	InvokeMethod(ctx context.Context, m *api.Method, req proto.Message) (proto.Message, error)
}

// Tenant is one credential profile as the server uses it.
type Tenant struct {
	// Profile names the profile; it also keys the watch pollers, so watchers of different profiles
	// never share a poller.
	Profile string
	// Upstream calls QingCloud with the profile's keys and quota budget.
	Upstream Upstream
	// Zone is the profile's default zone, for requests that leave zone unset.
	Zone string
}

// Resolver picks the tenant of the caller in ctx. It returns a gRPC status error when the caller has
// none (UNAUTHENTICATED for a call that was not authenticated).
type Resolver interface {
	Lookup(ctx context.Context) (Tenant, error)
}

// Single is a Resolver that serves every caller with one tenant (a server with one set of keys and
// no caller authentication, and tests).
type Single Tenant

// Lookup returns the tenant.
func (s Single) Lookup(context.Context) (Tenant, error) { return Tenant(s), nil }

// Directory maps profile names to tenants and resolves callers by the profile of their
// [auth.Identity]. It is read-only once built.
type Directory struct {
	tenants map[string]Tenant
}

// NewDirectory returns a Directory of tenants; names must be unique and every Upstream set.
func NewDirectory(tenants ...Tenant) (*Directory, error) {
	d := &Directory{tenants: make(map[string]Tenant, len(tenants))}
	for _, t := range tenants {
		if t.Profile == "" || t.Upstream == nil {
			return nil, fmt.Errorf("tenant: tenant %q needs a profile name and an upstream", t.Profile)
		}
		if _, dup := d.tenants[t.Profile]; dup {
			return nil, fmt.Errorf("tenant: profile %q is listed twice", t.Profile)
		}
		d.tenants[t.Profile] = t
	}
	return d, nil
}

// Profiles lists the profile names, sorted.
func (d *Directory) Profiles() []string {
	names := make([]string, 0, len(d.tenants))
	for n := range d.tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether profile is in the directory.
func (d *Directory) Has(profile string) bool {
	_, ok := d.tenants[profile]
	return ok
}

// Lookup returns the tenant of the caller in ctx. A context without an Identity (a call that skipped
// the interceptors) is UNAUTHENTICATED: there is no fallback to some default profile.
func (d *Directory) Lookup(ctx context.Context) (Tenant, error) {
	profile, err := auth.Profile(ctx)
	if err != nil {
		return Tenant{}, err
	}
	t, ok := d.tenants[profile]
	if !ok {
		// Configuration is validated at start, so this is a bug, not the caller's fault.
		return Tenant{}, status.Errorf(codes.Internal, "no upstream is configured for profile %q", profile)
	}
	return t, nil
}

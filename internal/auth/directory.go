package auth

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Upstream calls QingCloud with one profile's keys; *backend.Client implements it (and so satisfies
// both server.Backend and watch.Upstream).
type Upstream interface {
	InvokeMethod(ctx context.Context, md protoreflect.MethodDescriptor, req proto.Message) (proto.Message, error)
	Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error)
}

// Tenant is one credential profile as the server uses it.
type Tenant struct {
	// Profile names the profile; it also keys the watch pollers, so watchers of different profiles
	// never share a poller.
	Profile string
	// Upstream calls QingCloud with the profile's keys and quota budget.
	Upstream Upstream
	// Zone is the profile's default zone.
	Zone string
}

// Directory maps profile names to tenants. It is read-only once built.
type Directory struct {
	tenants map[string]Tenant
}

// NewDirectory returns a Directory of tenants; names must be unique and every Upstream set.
func NewDirectory(tenants ...Tenant) (*Directory, error) {
	d := &Directory{tenants: make(map[string]Tenant, len(tenants))}
	for _, t := range tenants {
		if t.Profile == "" || t.Upstream == nil {
			return nil, fmt.Errorf("auth: tenant %q needs a profile name and an upstream", t.Profile)
		}
		if _, dup := d.tenants[t.Profile]; dup {
			return nil, fmt.Errorf("auth: profile %q is listed twice", t.Profile)
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
	id, ok := FromContext(ctx)
	if !ok {
		return Tenant{}, unauthenticated("MISSING_CREDENTIALS", "the call was not authenticated")
	}
	t, ok := d.tenants[id.Profile]
	if !ok {
		// Configuration is validated at start, so this is a bug, not the caller's fault.
		return Tenant{}, status.Errorf(codes.Internal, "no upstream is configured for profile %q", id.Profile)
	}
	return t, nil
}

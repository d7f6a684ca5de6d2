// Package callclass tags a context with the kind of upstream call it carries, so that shared limits
// (the quota budget) can keep a reserved share for each kind and neither starves the other.
package callclass

import "context"

// Class is the kind of an upstream call.
type Class int

const (
	// User is a call a client asked for (the default).
	User Class = iota
	// Poll is a call the server makes on its own to follow jobs and resources for watchers.
	Poll
)

// String returns "user" or "poll".
func (c Class) String() string {
	if c == Poll {
		return "poll"
	}
	return "user"
}

type key struct{}

// With returns a context whose upstream calls are of class c.
func With(ctx context.Context, c Class) context.Context { return context.WithValue(ctx, key{}, c) }

// From returns the class of ctx's calls; User when unset.
func From(ctx context.Context) Class {
	c, _ := ctx.Value(key{}).(Class)
	return c
}

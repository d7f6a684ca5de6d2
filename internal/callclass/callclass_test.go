package callclass

import (
	"context"
	"testing"
)

func TestWithFrom(t *testing.T) {
	ctx := context.Background()
	if got := From(ctx); got != User {
		t.Fatalf("From(background) = %v, want user", got)
	}
	if got := From(With(ctx, Poll)); got != Poll || got.String() != "poll" {
		t.Fatalf("From(With(Poll)) = %v, want poll", got)
	}
	if got := From(With(With(ctx, Poll), User)); got != User || got.String() != "user" {
		t.Fatalf("inner With(User) = %v, want user", got)
	}
}
